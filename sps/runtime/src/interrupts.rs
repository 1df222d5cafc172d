//! Interrupts of an SP under spmc (or Hafnium): virtual interrupts arrive as
//! a virtual IRQ (the SPMC sets HCR_EL2.VI); the SP sees it pending in
//! ISR_EL1.I and reads its id with Hafnium's paravirtualised
//! HF_INTERRUPT_GET (which also clears it).  Ids: 4 = managed exit (an NS
//! interrupt wants the CPU back: answer the current request now), 3 = the
//! SP's EL1 physical timer (emulated by the SPMC), others = the physical
//! interrupt ids of the SP's device regions (end them with
//! HF_INTERRUPT_DEACTIVATE).
//!
//! The SP keeps PSTATE.I masked and polls (long-running work checks
//! [`virq_pending`]), which needs no exception frame juggling; a waiting SP
//! is resumed with FFA_INTERRUPT instead (see [`crate::ffa::run_with_interrupts`]).

pub use shared::abi::hafnium::{HF_INTERRUPT_DEACTIVATE, HF_INTERRUPT_GET, HF_INVALID_INTID, MANAGED_EXIT_INTID, NOTIFICATION_PENDING_INTID, VIRTUAL_TIMER_INTID};

/// How many Notification Pending Interrupts this SP took (all contexts).
static NPI_TAKEN: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);

/// Counts one NPI taken (see [`crate::ffa::run_with_hooks`]).
pub fn note_npi() {
    NPI_TAKEN.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
}

/// How many NPIs this SP took so far.
pub fn npi_taken() -> u32 {
    NPI_TAKEN.load(core::sync::atomic::Ordering::Relaxed)
}

/// The next pending virtual interrupt's id, no longer pending; None if none.
pub fn interrupt_get() -> Option<u32> {
    let mut r = [0u64; 18];
    r[0] = HF_INTERRUPT_GET as u64;
    let a = crate::ffa::call(&r);
    (a[0] != HF_INVALID_INTID && a[0] < 1024).then_some(a[0] as u32)
}

/// Ends interrupt `id` (for a device interrupt: deactivates it in the GIC).
pub fn interrupt_deactivate(id: u32) {
    let mut r = [0u64; 18];
    r[0] = HF_INTERRUPT_DEACTIVATE as u64;
    r[1] = id as u64;
    r[2] = id as u64;
    let _ = crate::ffa::call(&r);
}

/// Whether a virtual IRQ is pending (ISR_EL1.I, bit 7; with HCR_EL2.IMO set
/// it shows the virtual interrupt).
#[cfg(target_arch = "aarch64")]
pub fn virq_pending() -> bool {
    let v: u64;
    // SAFETY: reading ISR_EL1 has no side effects.
    unsafe { core::arch::asm!("mrs {}, isr_el1", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v & (1 << 7) != 0
}

#[cfg(not(target_arch = "aarch64"))]
pub fn virq_pending() -> bool {
    false
}

/// The physical counter (CNTPCT_EL0; the SPMC lets EL1 read it).
#[cfg(target_arch = "aarch64")]
pub fn counter() -> u64 {
    let v: u64;
    // SAFETY: reading the counter has no side effects.
    unsafe { core::arch::asm!("isb", "mrs {}, cntpct_el0", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

#[cfg(not(target_arch = "aarch64"))]
pub fn counter() -> u64 {
    0
}

/// Arms the EL1 physical timer `ticks` from now (the SPMC traps and
/// emulates these registers and delivers VIRTUAL_TIMER_INTID at expiry).
#[cfg(target_arch = "aarch64")]
pub fn timer_arm(ticks: u64) {
    // SAFETY: CNTP_TVAL_EL0 / CNTP_CTL_EL0 of this context (emulated by the SPMC).
    unsafe { core::arch::asm!("msr cntp_tval_el0, {}", "msr cntp_ctl_el0, {}", "isb", in(reg) ticks, in(reg) 1u64, options(nostack)) };
}

#[cfg(not(target_arch = "aarch64"))]
pub fn timer_arm(_ticks: u64) {}

/// Stops the EL1 physical timer.
#[cfg(target_arch = "aarch64")]
pub fn timer_stop() {
    // SAFETY: as above.
    unsafe { core::arch::asm!("msr cntp_ctl_el0, xzr", "isb", options(nostack)) };
}

#[cfg(not(target_arch = "aarch64"))]
pub fn timer_stop() {}

/// How a [`spin`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpinEnd {
    /// The time was up.
    Done,
    /// `stop` said so for this virtual interrupt id.
    Interrupted(u32),
}

/// Busy work for `ticks` counter ticks; each pending virtual interrupt is
/// taken (HF_INTERRUPT_GET) and given to `stop`, which says whether to end
/// early.  Returns the ticks spent and why it ended.
pub fn spin(ticks: u64, mut stop: impl FnMut(u32) -> bool) -> (u64, SpinEnd) {
    let start = counter();
    loop {
        let now = counter();
        if now.wrapping_sub(start) >= ticks {
            return (now.wrapping_sub(start), SpinEnd::Done);
        }
        if virq_pending() {
            while let Some(id) = interrupt_get() {
                if stop(id) {
                    return (counter().wrapping_sub(start), SpinEnd::Interrupted(id));
                }
            }
        }
        core::hint::spin_loop();
    }
}
