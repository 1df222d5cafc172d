//! Generic timer counters (DDI0487 D11).

/// The virtual count (CNTVCT_EL0), after an `isb` so it is not read early.
pub fn cntvct() -> u64 {
    crate::arch::regs::isb();
    crate::read_sysreg!(cntvct_el0)
}

/// The physical count (CNTPCT_EL0).
pub fn cntpct() -> u64 {
    crate::arch::regs::isb();
    crate::read_sysreg!(cntpct_el0)
}

/// Counter frequency in Hz.
pub fn cntfrq() -> u64 {
    crate::read_sysreg!(cntfrq_el0)
}

/// Busy-waits `us` microseconds on the physical counter.
pub fn delay_us(us: u64) {
    let end = cntpct() + cntfrq() * us / 1_000_000;
    while cntpct() < end {
        core::hint::spin_loop();
    }
}
