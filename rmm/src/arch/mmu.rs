//! Turning the MMU on for CPUs after the first.
//!
//! The cold-boot CPU builds the EL2 table and enables it with
//! `shared::arch::mmu::enable_el2`, then records the four registers that
//! define it in a [`WarmBootMmu`] kept in `.data` and cleaned to the Point of
//! Coherency.  A warm-booting CPU runs with the MMU and caches off, so it must
//! not take locks or read cacheable data another CPU may still hold dirty in
//! its cache; it only reads that record, loads the same registers and turns its
//! MMU on, and only then touches shared state.

use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Boot progress, the value a warm boot checks before trusting anything in
/// `.bss` (which only a cold boot clears).
pub const STATE_LOADED: u64 = 0x524d_4d00_0000_0001;
pub const STATE_COLD_DONE: u64 = 0x524d_4d00_0000_0002;

#[repr(C, align(64))]
pub struct WarmBootMmu {
    pub state: AtomicU64,
    mair: AtomicU64,
    tcr: AtomicU64,
    ttbr0: AtomicU64,
    sctlr: AtomicU64,
}

/// Non-zero initial value and an explicit section: this must be loaded from
/// the image (`.data`), never cleared as `.bss`.
#[unsafe(link_section = ".data.rmm_warm_boot")]
pub static WARM_BOOT: WarmBootMmu = WarmBootMmu {
    state: AtomicU64::new(STATE_LOADED),
    mair: AtomicU64::new(0),
    tcr: AtomicU64::new(0),
    ttbr0: AtomicU64::new(0),
    sctlr: AtomicU64::new(0),
};

/// Cleans `[start, start + len)` from the data caches to the Point of Coherency.
fn clean_to_poc(start: usize, len: usize) {
    // CTR_EL0.DminLine: log2 of the smallest data cache line, in words.
    let line = 4usize << ((shared::read_sysreg!(ctr_el0) >> 16) & 0xf);
    let mut addr = start & !(line - 1);
    while addr < start + len {
        // SAFETY: a cache clean by VA of mapped memory changes no data.
        unsafe { core::arch::asm!("dc cvac, {}", in(reg) addr, options(nostack, preserves_flags)) };
        addr += line;
    }
    // SAFETY: a barrier has no memory effects.
    unsafe { core::arch::asm!("dsb sy", options(nostack, preserves_flags)) };
}

/// On the cold-boot CPU, with its MMU on: publish the MMU setup for the others.
pub fn publish_for_warm_boot() {
    let w = &WARM_BOOT;
    w.mair.store(shared::read_sysreg!(mair_el2), Relaxed);
    w.tcr.store(shared::read_sysreg!(tcr_el2), Relaxed);
    w.ttbr0.store(shared::read_sysreg!(ttbr0_el2), Relaxed);
    w.sctlr.store(shared::read_sysreg!(sctlr_el2), Relaxed);
    w.state.store(STATE_COLD_DONE, Relaxed);
    clean_to_poc(w as *const WarmBootMmu as usize, core::mem::size_of::<WarmBootMmu>());
}

/// On a warm-booting CPU: whether a cold boot completed, read without caches.
pub fn cold_boot_done() -> bool {
    WARM_BOOT.state.load(Relaxed) == STATE_COLD_DONE
}

/// On a warm-booting CPU: the cold-boot CPU's MMU setup, caches and MMU on.
///
/// # Safety
/// Only after [`cold_boot_done`] returned true: the table maps this image,
/// its stacks and everything else we touch, identity-mapped, and lives forever.
pub unsafe fn enable_like_cold_boot() {
    let w = &WARM_BOOT;
    // SAFETY: the same registers and values the cold-boot CPU runs with (see
    // `shared::arch::mmu::enable_el2`); the SCTLR write comes last.
    unsafe {
        shared::write_sysreg!(mair_el2, w.mair.load(Relaxed));
        shared::write_sysreg!(tcr_el2, w.tcr.load(Relaxed));
        shared::write_sysreg!(ttbr0_el2, w.ttbr0.load(Relaxed));
        core::arch::asm!("isb", "tlbi alle2", "dsb ish", "isb", options(nostack));
        shared::write_sysreg!(sctlr_el2, w.sctlr.load(Relaxed));
        core::arch::asm!("isb", options(nostack));
    }
}
