//! The one door between the RMM and the Host: an SMC to EL3 that hands our
//! answer (or `RMM_BOOT_COMPLETE`) to the RMMD and returns with the next RMI
//! request.
//!
//! EL3 switches worlds without touching FP/SIMD registers (TF-A builds without
//! CTX_INCLUDE_FPREGS), so while we handle a request the Host's q0-q31, FPSR and
//! FPCR are live in the registers, and Rust code may use them.  An SMC must
//! leave the caller's FP/SIMD registers as they were (SMCCC, DEN0028: SIMD and
//! FP registers are preserved across calls), so this door saves them the
//! moment a request arrives and puts them back just before the answer leaves,
//! with no compiled code in between.  (SVE state beyond the low 128 bits is
//! not handled yet: SVE stays trapped at R-EL2.)

use core::arch::global_asm;

/// The Host's FP/SIMD state while we serve it.  Layout used by the assembly.
#[repr(C, align(16))]
pub struct HostFpRegs {
    q: [u128; 32],
    fpsr: u64,
    fpcr: u64,
}

const _: () = {
    assert!(core::mem::offset_of!(HostFpRegs, fpsr) == 512);
    assert!(core::mem::size_of::<HostFpRegs>() == 528);
};

impl HostFpRegs {
    pub const fn new() -> Self {
        Self { q: [0; 32], fpsr: 0, fpcr: 0 }
    }

    /// SMC `fid` with `args` in x1.. (at most 7) to EL3, which switches to the
    /// Host; returns x0..x7 of the SMC's return: the next RMI request.  Only for
    /// calls after which EL3 runs the Normal world (`RMM_BOOT_COMPLETE`,
    /// `RMM_RMI_REQ_COMPLETE`); EL3 services are plain `shared::smccc::smc`.
    pub fn switch_to_host(&mut self, fid: u32, args: &[u64]) -> [u64; 8] {
        let mut out = [0u64; 8];
        out[0] = fid as u64;
        for (dst, src) in out[1..].iter_mut().zip(args) {
            *dst = *src;
        }
        let mut back = [0u64; 8];
        // SAFETY: the assembly reads `out`, writes `back` and `self`, and makes
        // an SMC from which EL3 returns to the next instruction with x0..x7 set
        // and every other general-purpose register preserved (SMCCC, and the
        // RMMD's context save/restore).  It follows the AAPCS64 for the rest.
        unsafe { rmm_switch_to_host(&out, &mut back, self) };
        back
    }
}

unsafe extern "C" {
    fn rmm_switch_to_host(out: *const [u64; 8], back: *mut [u64; 8], fp: *mut HostFpRegs);
}

global_asm!(
    ".section .text.rmm_switch_to_host, \"ax\"",
    ".global rmm_switch_to_host",
    "rmm_switch_to_host:",
    "stp x19, x20, [sp, #-16]!",
    "mov x19, x1",
    "mov x20, x2",
    // The Host's FP/SIMD state back into the registers.
    "ldp q0, q1, [x20, #0]",
    "ldp q2, q3, [x20, #32]",
    "ldp q4, q5, [x20, #64]",
    "ldp q6, q7, [x20, #96]",
    "ldp q8, q9, [x20, #128]",
    "ldp q10, q11, [x20, #160]",
    "ldp q12, q13, [x20, #192]",
    "ldp q14, q15, [x20, #224]",
    "ldp q16, q17, [x20, #256]",
    "ldp q18, q19, [x20, #288]",
    "ldp q20, q21, [x20, #320]",
    "ldp q22, q23, [x20, #352]",
    "ldp q24, q25, [x20, #384]",
    "ldp q26, q27, [x20, #416]",
    "ldp q28, q29, [x20, #448]",
    "ldp q30, q31, [x20, #480]",
    "add x11, x20, #512",
    "ldp x9, x10, [x11]",
    "msr fpsr, x9",
    "msr fpcr, x10",
    "mov x8, x0",
    "ldp x0, x1, [x8, #0]",
    "ldp x2, x3, [x8, #16]",
    "ldp x4, x5, [x8, #32]",
    "ldp x6, x7, [x8, #48]",
    "smc #0",
    // A new request: keep the Host's FP/SIMD state before any Rust runs.
    "stp q0, q1, [x20, #0]",
    "stp q2, q3, [x20, #32]",
    "stp q4, q5, [x20, #64]",
    "stp q6, q7, [x20, #96]",
    "stp q8, q9, [x20, #128]",
    "stp q10, q11, [x20, #160]",
    "stp q12, q13, [x20, #192]",
    "stp q14, q15, [x20, #224]",
    "stp q16, q17, [x20, #256]",
    "stp q18, q19, [x20, #288]",
    "stp q20, q21, [x20, #320]",
    "stp q22, q23, [x20, #352]",
    "stp q24, q25, [x20, #384]",
    "stp q26, q27, [x20, #416]",
    "stp q28, q29, [x20, #448]",
    "stp q30, q31, [x20, #480]",
    "mrs x9, fpsr",
    "mrs x10, fpcr",
    "add x11, x20, #512",
    "stp x9, x10, [x11]",
    "stp x0, x1, [x19, #0]",
    "stp x2, x3, [x19, #16]",
    "stp x4, x5, [x19, #32]",
    "stp x6, x7, [x19, #48]",
    "ldp x19, x20, [sp], #16",
    "ret",
);
