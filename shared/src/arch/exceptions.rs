//! EL2 exception vectors (DDI0487 D1.10.2) and the lower-EL enter/exit path.
//!
//! - Exceptions taken from EL2 itself (vectors 0..7) save an [`ExceptionFrame`]
//!   on the current stack and call the image's
//!   `quadrant_el2_exception(frame: &mut ExceptionFrame, kind: u64)`, then resume
//!   from the (possibly edited) frame.
//! - Exceptions from a lower EL (vectors 8..15) end the current [`enter_guest`]
//!   call: the guest's registers go to the [`GuestRegs`] it was entered with
//!   (pointer kept in TPIDR_EL2) and `enter_guest` returns the vector number.
//!
//! The assembly is mechanical and regular; it was generated once and is kept
//! here as text.

use super::context::{self, GuestRegs};

/// Saved state of EL2 code interrupted by an exception taken to EL2.
#[repr(C, align(16))]
pub struct ExceptionFrame {
    pub x: [u64; 31],
    pub elr: u64,
    pub spsr: u64,
    _pad: u64,
    pub q: [u128; 32],
    pub fpsr: u64,
    pub fpcr: u64,
}

const FRAME_Q: usize = 272;
const FRAME_SIZE: usize = 800;
const _: () = {
    assert!(core::mem::offset_of!(ExceptionFrame, q) == FRAME_Q);
    assert!(core::mem::size_of::<ExceptionFrame>() == FRAME_SIZE);
};

/// Which vector was taken (the index of the 0x80-byte slot in VBAR_EL2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExceptionKind {
    Sync,
    Irq,
    Fiq,
    SError,
}

impl ExceptionKind {
    /// Kind of vector `n` (0..16) and whether it came from a lower EL.
    pub fn from_vector(n: u64) -> (Self, bool) {
        let kind = match n & 3 {
            0 => Self::Sync,
            1 => Self::Irq,
            2 => Self::Fiq,
            _ => Self::SError,
        };
        (kind, n >= 8)
    }
}

/// How an image ends on an exception at EL2 it does not expect: one line with
/// the syndrome, then the panic path (which prints even if the console lock is
/// held by the interrupted code) parks the CPU.
pub fn unexpected_el2_exception(frame: &ExceptionFrame, vector: u64) -> ! {
    let esr = crate::read_sysreg!(esr_el2);
    let far = crate::read_sysreg!(far_el2);
    let mpidr = crate::read_sysreg!(mpidr_el1);
    // x30 usually says where a jump to a bad address came from.
    panic!("unexpected EL2 exception: vector {vector} esr {esr:#x} elr {:#x} far {far:#x} lr {:#x} spsr {:#x} mpidr {:#x}", frame.elr, frame.x[30], frame.spsr, mpidr)
}

unsafe extern "C" {
    fn quadrant_enter_guest(regs: *mut GuestRegs) -> u64;
}

/// Runs the lower-EL context `regs` (EL1 state, Stage-2 and HCR_EL2 already set
/// up by the caller) until it takes an exception to EL2.  Returns which vector
/// ended the run: see [`ExceptionKind::from_vector`].  ESR_EL2, FAR_EL2 and
/// HPFAR_EL2 still describe that exception when this returns.
///
/// # Safety
/// The EL1 state, VTTBR/VSTTBR and HCR_EL2 must confine the context to memory it
/// may use; interrupts must be masked at EL2.
pub unsafe fn enter_guest(regs: &mut GuestRegs) -> u64 {
    // SAFETY: per the contract above; the assembly saves and restores all
    // callee-saved state of this function.
    unsafe { quadrant_enter_guest(regs) }
}

// Register blocks the trap path and the world switch share (GNU as macros):
// x2..x30 at [base + 16 ..] as in `GuestRegs`/`ExceptionFrame`, and q0..q31,
// FPSR, FPCR at [base + 0 .. 528) as at `OFF_Q`/`FRAME_Q`.
core::arch::global_asm!(
    ".macro quadrant_gprs_store base",
    "stp x2, x3, [\\base, #16]",
    "stp x4, x5, [\\base, #32]",
    "stp x6, x7, [\\base, #48]",
    "stp x8, x9, [\\base, #64]",
    "stp x10, x11, [\\base, #80]",
    "stp x12, x13, [\\base, #96]",
    "stp x14, x15, [\\base, #112]",
    "stp x16, x17, [\\base, #128]",
    "stp x18, x19, [\\base, #144]",
    "stp x20, x21, [\\base, #160]",
    "stp x22, x23, [\\base, #176]",
    "stp x24, x25, [\\base, #192]",
    "stp x26, x27, [\\base, #208]",
    "stp x28, x29, [\\base, #224]",
    "str x30, [\\base, #240]",
    ".endm",
    ".macro quadrant_gprs_load base",
    "ldp x2, x3, [\\base, #16]",
    "ldp x4, x5, [\\base, #32]",
    "ldp x6, x7, [\\base, #48]",
    "ldp x8, x9, [\\base, #64]",
    "ldp x10, x11, [\\base, #80]",
    "ldp x12, x13, [\\base, #96]",
    "ldp x14, x15, [\\base, #112]",
    "ldp x16, x17, [\\base, #128]",
    "ldp x18, x19, [\\base, #144]",
    "ldp x20, x21, [\\base, #160]",
    "ldp x22, x23, [\\base, #176]",
    "ldp x24, x25, [\\base, #192]",
    "ldp x26, x27, [\\base, #208]",
    "ldp x28, x29, [\\base, #224]",
    "ldr x30, [\\base, #240]",
    ".endm",
    ".macro quadrant_fp_store base, tmp",
    "stp q0, q1, [\\base, #0]",
    "stp q2, q3, [\\base, #32]",
    "stp q4, q5, [\\base, #64]",
    "stp q6, q7, [\\base, #96]",
    "stp q8, q9, [\\base, #128]",
    "stp q10, q11, [\\base, #160]",
    "stp q12, q13, [\\base, #192]",
    "stp q14, q15, [\\base, #224]",
    "stp q16, q17, [\\base, #256]",
    "stp q18, q19, [\\base, #288]",
    "stp q20, q21, [\\base, #320]",
    "stp q22, q23, [\\base, #352]",
    "stp q24, q25, [\\base, #384]",
    "stp q26, q27, [\\base, #416]",
    "stp q28, q29, [\\base, #448]",
    "stp q30, q31, [\\base, #480]",
    "mrs \\tmp, fpsr",
    "str \\tmp, [\\base, #512]",
    "mrs \\tmp, fpcr",
    "str \\tmp, [\\base, #520]",
    ".endm",
    ".macro quadrant_fp_load base, tmp",
    "ldp q0, q1, [\\base, #0]",
    "ldp q2, q3, [\\base, #32]",
    "ldp q4, q5, [\\base, #64]",
    "ldp q6, q7, [\\base, #96]",
    "ldp q8, q9, [\\base, #128]",
    "ldp q10, q11, [\\base, #160]",
    "ldp q12, q13, [\\base, #192]",
    "ldp q14, q15, [\\base, #224]",
    "ldp q16, q17, [\\base, #256]",
    "ldp q18, q19, [\\base, #288]",
    "ldp q20, q21, [\\base, #320]",
    "ldp q22, q23, [\\base, #352]",
    "ldp q24, q25, [\\base, #384]",
    "ldp q26, q27, [\\base, #416]",
    "ldp q28, q29, [\\base, #448]",
    "ldp q30, q31, [\\base, #480]",
    "ldr \\tmp, [\\base, #512]",
    "msr fpsr, \\tmp",
    "ldr \\tmp, [\\base, #520]",
    "msr fpcr, \\tmp",
    ".endm",
    // The SVE register file at [base] (`SveRegs::file`); \\tmp ends past the
    // z registers.  Stores p0 before FFR goes through it, and loads FFR
    // through p0 before p0 itself.
    // Assembled for every CPU, executed only where a context has SVE state.
    ".arch_extension sve",
    ".macro quadrant_sve_store base, tmp",
    ".irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31",
    "str z\\n, [\\base, #\\n, mul vl]",
    ".endr",
    "addvl \\tmp, \\base, #16",
    "addvl \\tmp, \\tmp, #16",
    ".irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15",
    "str p\\n, [\\tmp, #\\n, mul vl]",
    ".endr",
    "rdffr p0.b",
    "str p0, [\\tmp, #16, mul vl]",
    ".endm",
    ".macro quadrant_sve_load base, tmp",
    "addvl \\tmp, \\base, #16",
    "addvl \\tmp, \\tmp, #16",
    "ldr p0, [\\tmp, #16, mul vl]",
    "wrffr p0.b",
    ".irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15",
    "ldr p\\n, [\\tmp, #\\n, mul vl]",
    ".endr",
    ".irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31",
    "ldr z\\n, [\\base, #\\n, mul vl]",
    ".endr",
    ".endm",
    ".section .text.quadrant_vectors, \"ax\"",
    ".balign 0x800",
    ".global quadrant_el2_vectors",
    "quadrant_el2_vectors:",
    // vector 0
    ".balign 0x80",
    "sub sp, sp, #{frame_size}",
    "stp x0, x1, [sp]",
    "mov x1, #0",
    "b quadrant_el2_trap_common",
    // vector 1
    ".balign 0x80",
    "sub sp, sp, #{frame_size}",
    "stp x0, x1, [sp]",
    "mov x1, #1",
    "b quadrant_el2_trap_common",
    // vector 2
    ".balign 0x80",
    "sub sp, sp, #{frame_size}",
    "stp x0, x1, [sp]",
    "mov x1, #2",
    "b quadrant_el2_trap_common",
    // vector 3
    ".balign 0x80",
    "sub sp, sp, #{frame_size}",
    "stp x0, x1, [sp]",
    "mov x1, #3",
    "b quadrant_el2_trap_common",
    // vector 4
    ".balign 0x80",
    "sub sp, sp, #{frame_size}",
    "stp x0, x1, [sp]",
    "mov x1, #4",
    "b quadrant_el2_trap_common",
    // vector 5
    ".balign 0x80",
    "sub sp, sp, #{frame_size}",
    "stp x0, x1, [sp]",
    "mov x1, #5",
    "b quadrant_el2_trap_common",
    // vector 6
    ".balign 0x80",
    "sub sp, sp, #{frame_size}",
    "stp x0, x1, [sp]",
    "mov x1, #6",
    "b quadrant_el2_trap_common",
    // vector 7
    ".balign 0x80",
    "sub sp, sp, #{frame_size}",
    "stp x0, x1, [sp]",
    "mov x1, #7",
    "b quadrant_el2_trap_common",
    // vector 8
    ".balign 0x80",
    "stp x0, x1, [sp, #-16]!",
    "mov x1, #8",
    "b quadrant_guest_exit_common",
    // vector 9
    ".balign 0x80",
    "stp x0, x1, [sp, #-16]!",
    "mov x1, #9",
    "b quadrant_guest_exit_common",
    // vector 10
    ".balign 0x80",
    "stp x0, x1, [sp, #-16]!",
    "mov x1, #10",
    "b quadrant_guest_exit_common",
    // vector 11
    ".balign 0x80",
    "stp x0, x1, [sp, #-16]!",
    "mov x1, #11",
    "b quadrant_guest_exit_common",
    // vector 12
    ".balign 0x80",
    "stp x0, x1, [sp, #-16]!",
    "mov x1, #12",
    "b quadrant_guest_exit_common",
    // vector 13
    ".balign 0x80",
    "stp x0, x1, [sp, #-16]!",
    "mov x1, #13",
    "b quadrant_guest_exit_common",
    // vector 14
    ".balign 0x80",
    "stp x0, x1, [sp, #-16]!",
    "mov x1, #14",
    "b quadrant_guest_exit_common",
    // vector 15
    ".balign 0x80",
    "stp x0, x1, [sp, #-16]!",
    "mov x1, #15",
    "b quadrant_guest_exit_common",
    "quadrant_el2_trap_common:",
    "quadrant_gprs_store sp",
    "mrs x2, elr_el2",
    "mrs x3, spsr_el2",
    "stp x2, x3, [sp, #248]",
    "add x2, sp, #{frame_q}",
    "quadrant_fp_store x2, x3",
    "mov x0, sp",
    "bl quadrant_el2_exception",
    "add x2, sp, #{frame_q}",
    "quadrant_fp_load x2, x3",
    "ldp x2, x3, [sp, #248]",
    "msr elr_el2, x2",
    "msr spsr_el2, x3",
    "quadrant_gprs_load sp",
    "ldp x0, x1, [sp]",
    "add sp, sp, #{frame_size}",
    "eret",
    ".global quadrant_enter_guest",
    "quadrant_enter_guest:",
    "sub sp, sp, #176",
    "stp x19, x20, [sp, #0]",
    "stp x21, x22, [sp, #16]",
    "stp x23, x24, [sp, #32]",
    "stp x25, x26, [sp, #48]",
    "stp x27, x28, [sp, #64]",
    "stp x29, x30, [sp, #80]",
    "stp d8, d9, [sp, #96]",
    "stp d10, d11, [sp, #112]",
    "stp d12, d13, [sp, #128]",
    "stp d14, d15, [sp, #144]",
    "mrs x1, fpcr",
    "str x1, [sp, #160]",
    "mov x1, sp",
    "str x1, [x0, #{off_host_sp}]",
    "msr tpidr_el2, x0",
    "add x1, x0, #{off_q}",
    "quadrant_fp_load x1, x2",
    "ldr x1, [x0, #{off_sve}]",
    "cbz x1, 1f",
    "quadrant_sve_load x1, x2",
    "1:",
    "ldp x1, x2, [x0, #{off_elr}]",
    "msr elr_el2, x1",
    "msr spsr_el2, x2",
    "quadrant_gprs_load x0",
    "ldp x0, x1, [x0]",
    "eret",
    "quadrant_guest_exit_common:",
    "mrs x0, tpidr_el2",
    "quadrant_gprs_store x0",
    "ldp x2, x3, [sp], #16",
    "stp x2, x3, [x0]",
    "mrs x2, elr_el2",
    "mrs x3, spsr_el2",
    "stp x2, x3, [x0, #{off_elr}]",
    "add x2, x0, #{off_q}",
    "quadrant_fp_store x2, x3",
    "ldr x2, [x0, #{off_sve}]",
    "cbz x2, 1f",
    "quadrant_sve_store x2, x3",
    "1:",
    "ldr x2, [x0, #{off_host_sp}]",
    "mov sp, x2",
    "ldp x19, x20, [sp, #0]",
    "ldp x21, x22, [sp, #16]",
    "ldp x23, x24, [sp, #32]",
    "ldp x25, x26, [sp, #48]",
    "ldp x27, x28, [sp, #64]",
    "ldp x29, x30, [sp, #80]",
    "ldp d8, d9, [sp, #96]",
    "ldp d10, d11, [sp, #112]",
    "ldp d12, d13, [sp, #128]",
    "ldp d14, d15, [sp, #144]",
    "ldr x2, [sp, #160]",
    "msr fpcr, x2",
    "add sp, sp, #176",
    "mov x0, x1",
    "ret",
    frame_size = const FRAME_SIZE,
    frame_q = const FRAME_Q,
    off_host_sp = const context::OFF_HOST_SP,
    off_q = const context::OFF_Q,
    off_sve = const context::OFF_SVE,
    off_elr = const context::OFF_ELR,
);
