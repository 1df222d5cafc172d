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
    panic!("unexpected EL2 exception: vector {vector} esr {esr:#x} elr {:#x} far {far:#x}", frame.elr)
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

core::arch::global_asm!(
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
    "stp x2, x3, [sp, #16]",
    "stp x4, x5, [sp, #32]",
    "stp x6, x7, [sp, #48]",
    "stp x8, x9, [sp, #64]",
    "stp x10, x11, [sp, #80]",
    "stp x12, x13, [sp, #96]",
    "stp x14, x15, [sp, #112]",
    "stp x16, x17, [sp, #128]",
    "stp x18, x19, [sp, #144]",
    "stp x20, x21, [sp, #160]",
    "stp x22, x23, [sp, #176]",
    "stp x24, x25, [sp, #192]",
    "stp x26, x27, [sp, #208]",
    "stp x28, x29, [sp, #224]",
    "str x30, [sp, #240]",
    "mrs x2, elr_el2",
    "mrs x3, spsr_el2",
    "stp x2, x3, [sp, #248]",
    "add x2, sp, #{frame_q}",
    "stp q0, q1, [x2, #0]",
    "stp q2, q3, [x2, #32]",
    "stp q4, q5, [x2, #64]",
    "stp q6, q7, [x2, #96]",
    "stp q8, q9, [x2, #128]",
    "stp q10, q11, [x2, #160]",
    "stp q12, q13, [x2, #192]",
    "stp q14, q15, [x2, #224]",
    "stp q16, q17, [x2, #256]",
    "stp q18, q19, [x2, #288]",
    "stp q20, q21, [x2, #320]",
    "stp q22, q23, [x2, #352]",
    "stp q24, q25, [x2, #384]",
    "stp q26, q27, [x2, #416]",
    "stp q28, q29, [x2, #448]",
    "stp q30, q31, [x2, #480]",
    "mrs x3, fpsr",
    "str x3, [x2, #512]",
    "mrs x3, fpcr",
    "str x3, [x2, #520]",
    "mov x0, sp",
    "bl quadrant_el2_exception",
    "add x2, sp, #{frame_q}",
    "ldp q0, q1, [x2, #0]",
    "ldp q2, q3, [x2, #32]",
    "ldp q4, q5, [x2, #64]",
    "ldp q6, q7, [x2, #96]",
    "ldp q8, q9, [x2, #128]",
    "ldp q10, q11, [x2, #160]",
    "ldp q12, q13, [x2, #192]",
    "ldp q14, q15, [x2, #224]",
    "ldp q16, q17, [x2, #256]",
    "ldp q18, q19, [x2, #288]",
    "ldp q20, q21, [x2, #320]",
    "ldp q22, q23, [x2, #352]",
    "ldp q24, q25, [x2, #384]",
    "ldp q26, q27, [x2, #416]",
    "ldp q28, q29, [x2, #448]",
    "ldp q30, q31, [x2, #480]",
    "ldr x3, [x2, #512]",
    "msr fpsr, x3",
    "ldr x3, [x2, #520]",
    "msr fpcr, x3",
    "ldp x2, x3, [sp, #248]",
    "msr elr_el2, x2",
    "msr spsr_el2, x3",
    "ldp x2, x3, [sp, #16]",
    "ldp x4, x5, [sp, #32]",
    "ldp x6, x7, [sp, #48]",
    "ldp x8, x9, [sp, #64]",
    "ldp x10, x11, [sp, #80]",
    "ldp x12, x13, [sp, #96]",
    "ldp x14, x15, [sp, #112]",
    "ldp x16, x17, [sp, #128]",
    "ldp x18, x19, [sp, #144]",
    "ldp x20, x21, [sp, #160]",
    "ldp x22, x23, [sp, #176]",
    "ldp x24, x25, [sp, #192]",
    "ldp x26, x27, [sp, #208]",
    "ldp x28, x29, [sp, #224]",
    "ldr x30, [sp, #240]",
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
    "ldp q0, q1, [x1, #0]",
    "ldp q2, q3, [x1, #32]",
    "ldp q4, q5, [x1, #64]",
    "ldp q6, q7, [x1, #96]",
    "ldp q8, q9, [x1, #128]",
    "ldp q10, q11, [x1, #160]",
    "ldp q12, q13, [x1, #192]",
    "ldp q14, q15, [x1, #224]",
    "ldp q16, q17, [x1, #256]",
    "ldp q18, q19, [x1, #288]",
    "ldp q20, q21, [x1, #320]",
    "ldp q22, q23, [x1, #352]",
    "ldp q24, q25, [x1, #384]",
    "ldp q26, q27, [x1, #416]",
    "ldp q28, q29, [x1, #448]",
    "ldp q30, q31, [x1, #480]",
    "ldr x2, [x1, #512]",
    "msr fpsr, x2",
    "ldr x2, [x1, #520]",
    "msr fpcr, x2",
    "ldp x1, x2, [x0, #{off_elr}]",
    "msr elr_el2, x1",
    "msr spsr_el2, x2",
    "ldp x2, x3, [x0, #16]",
    "ldp x4, x5, [x0, #32]",
    "ldp x6, x7, [x0, #48]",
    "ldp x8, x9, [x0, #64]",
    "ldp x10, x11, [x0, #80]",
    "ldp x12, x13, [x0, #96]",
    "ldp x14, x15, [x0, #112]",
    "ldp x16, x17, [x0, #128]",
    "ldp x18, x19, [x0, #144]",
    "ldp x20, x21, [x0, #160]",
    "ldp x22, x23, [x0, #176]",
    "ldp x24, x25, [x0, #192]",
    "ldp x26, x27, [x0, #208]",
    "ldp x28, x29, [x0, #224]",
    "ldr x30, [x0, #240]",
    "ldp x0, x1, [x0]",
    "eret",
    "quadrant_guest_exit_common:",
    "mrs x0, tpidr_el2",
    "stp x2, x3, [x0, #16]",
    "stp x4, x5, [x0, #32]",
    "stp x6, x7, [x0, #48]",
    "stp x8, x9, [x0, #64]",
    "stp x10, x11, [x0, #80]",
    "stp x12, x13, [x0, #96]",
    "stp x14, x15, [x0, #112]",
    "stp x16, x17, [x0, #128]",
    "stp x18, x19, [x0, #144]",
    "stp x20, x21, [x0, #160]",
    "stp x22, x23, [x0, #176]",
    "stp x24, x25, [x0, #192]",
    "stp x26, x27, [x0, #208]",
    "stp x28, x29, [x0, #224]",
    "str x30, [x0, #240]",
    "ldp x2, x3, [sp], #16",
    "stp x2, x3, [x0]",
    "mrs x2, elr_el2",
    "mrs x3, spsr_el2",
    "stp x2, x3, [x0, #{off_elr}]",
    "add x2, x0, #{off_q}",
    "stp q0, q1, [x2, #0]",
    "stp q2, q3, [x2, #32]",
    "stp q4, q5, [x2, #64]",
    "stp q6, q7, [x2, #96]",
    "stp q8, q9, [x2, #128]",
    "stp q10, q11, [x2, #160]",
    "stp q12, q13, [x2, #192]",
    "stp q14, q15, [x2, #224]",
    "stp q16, q17, [x2, #256]",
    "stp q18, q19, [x2, #288]",
    "stp q20, q21, [x2, #320]",
    "stp q22, q23, [x2, #352]",
    "stp q24, q25, [x2, #384]",
    "stp q26, q27, [x2, #416]",
    "stp q28, q29, [x2, #448]",
    "stp q30, q31, [x2, #480]",
    "mrs x3, fpsr",
    "str x3, [x2, #512]",
    "mrs x3, fpcr",
    "str x3, [x2, #520]",
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
    off_elr = const context::OFF_ELR,
);
