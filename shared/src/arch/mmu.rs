//! Turning on the EL2 Stage-1 MMU and configuring Stage-2 (DDI0487 D8).

use crate::mm::{self, El2Map};

/// ID_AA64MMFR0_EL1.PARange, capped at 48 bits (we use no 52-bit addresses).
pub fn pa_range() -> u64 {
    (crate::read_sysreg!(id_aa64mmfr0_el1) & 0xf).min(5)
}

/// SCTLR_EL2 RES1 bits (non-VHE layout) plus M, A=0, C, SA, I.
const SCTLR_EL2_RES1: u64 = 0x30c5_0830;
const SCTLR_M: u64 = 1 << 0;
const SCTLR_C: u64 = 1 << 2;
const SCTLR_SA: u64 = 1 << 3;
const SCTLR_I: u64 = 1 << 12;

/// Installs `table` as the EL2 Stage-1 table and turns the MMU and caches on.
///
/// # Safety
/// `table` must map (at least) the running image, its stacks and everything
/// the image touches afterwards, with identity addresses, and must live forever.
pub unsafe fn enable_el2(table: &El2Map) {
    // SAFETY: MAIR/TCR/TTBR writes take effect only once SCTLR.M is set below;
    // the caller guarantees the table maps everything we run and touch.
    unsafe {
        crate::write_sysreg!(mair_el2, mm::MAIR_EL2);
        crate::write_sysreg!(tcr_el2, mm::tcr_el2(pa_range()));
        table.activate();
        core::arch::asm!("dsb ish", "tlbi alle2", "dsb ish", "isb", options(nostack));
        crate::write_sysreg!(sctlr_el2, SCTLR_EL2_RES1 | SCTLR_M | SCTLR_C | SCTLR_SA | SCTLR_I);
    }
    super::regs::isb();
}

/// VTCR_EL2 value for our Stage-2 convention (also used for VSTCR_EL2's
/// T0SZ/SL0/TG0 fields, which have the same positions).
pub fn vtcr() -> u64 {
    mm::vtcr_el2(pa_range())
}
