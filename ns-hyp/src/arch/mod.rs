//! Entry (with an arm64 Linux Image header so QEMU's `-kernel` and bootloaders
//! load us like a kernel), panic handler, and the EL2 exception hook.

pub mod mailbox;

use core::sync::atomic::{AtomicU64, Ordering};
use shared::arch::{ExceptionFrame, ExceptionKind};

core::arch::global_asm!(
    ".section .text.entry, \"ax\"",
    ".global _start",
    "_start:",
    // text_offset: RAM base 0x40000000 + this = 0x60000000; flags 0x2:
    // little endian, 4 KiB pages, 2 MiB aligned base.
    shared::arm64_image_header!("0x20000000", "0x2"),
    // x0 = DTB (boot CPU) or the CPU_ON context (secondaries).
    "b quadrant_entry_mpidr",
);

#[unsafe(no_mangle)]
extern "C" fn quadrant_main(x0: u64, _x1: u64, _x2: u64, _x3: u64, _x4: u64, cpu: u64) -> ! {
    crate::hyp::hyp_main(x0, cpu)
}

/// How many `smc`s the trap completed as NOT_SUPPORTED (`--no-tfa`).
static SMC_TRAPS: AtomicU64 = AtomicU64::new(0);

pub fn smc_traps() -> u64 {
    SMC_TRAPS.load(Ordering::Relaxed)
}

/// Whether `addr` is a 4-byte aligned address inside our own code.
fn in_text(addr: u64) -> bool {
    let (start, text_end, _, _) = shared::arch::image::layout();
    addr.is_multiple_of(4) && addr >= start as u64 && addr + 4 <= text_end as u64
}

#[unsafe(no_mangle)]
extern "C" fn quadrant_el2_exception(frame: &mut ExceptionFrame, vector: u64) {
    let esr = shared::read_sysreg!(esr_el2);
    if ExceptionKind::from_vector(vector).0 == ExceptionKind::Sync {
        let insn = if in_text(frame.elr) {
            // SAFETY: ELR is 4-byte aligned and inside our text, which is mapped
            // (and readable) both with the MMU off and on.
            Some(unsafe { core::ptr::read_volatile(frame.elr as *const u32) })
        } else {
            None
        };
        if crate::trap::classify_sync(esr, insn) == crate::trap::TrapAction::CompleteSmcNotSupported {
            frame.x[0] = shared::abi::smccc_id::NOT_SUPPORTED;
            frame.elr += 4;
            SMC_TRAPS.fetch_add(1, Ordering::Relaxed);
            return;
        }
        // Only the realm isolation test touches a delegated granule on purpose.
        #[cfg(feature = "test-modes")]
        if crate::realm::target::on_el2_sync(frame, esr, shared::read_sysreg!(far_el2)) {
            return;
        }
        if crate::trap::is_gpf(esr) {
            // A bug, never skipped: ns-hyp touched memory that is not in the
            // Non-secure PAS (a granule delegated to a Realm, or Secure).
            log::error!(
                "granule protection fault at EL2: {} {:#x} at pc {:#x} (esr {:#x}): that page is not Non-secure (delegated to a Realm?); halting",
                if esr & (1 << 6) != 0 { "write to" } else { "read of" },
                shared::read_sysreg!(far_el2),
                frame.elr,
                esr
            );
        }
    }
    shared::arch::unexpected_el2_exception(frame, vector)
}

shared::quadrant_panic_handler!();
