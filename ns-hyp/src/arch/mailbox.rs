//! Our FF-A RX/TX buffer pair (DEN0077 v1.2 FFA_RXTX_MAP: 4 KiB aligned,
//! whole pages), in .bss, identity-mapped with the rest of the image.

use crate::probe::Mailbox;
use core::cell::UnsafeCell;

const PAGE: usize = 4096;

#[repr(C, align(4096))]
pub struct StaticMailbox {
    rx: UnsafeCell<[u8; PAGE]>,
    tx: UnsafeCell<[u8; PAGE]>,
}

// SAFETY: only the boot CPU uses the mailbox, and ns-hyp never writes RX:
// the SPMC writes it between our calls (while it owns the buffer), and we
// read it after the call that handed it to us returned.
unsafe impl Sync for StaticMailbox {}

static MAILBOX: StaticMailbox = StaticMailbox { rx: UnsafeCell::new([0; PAGE]), tx: UnsafeCell::new([0; PAGE]) };

impl StaticMailbox {
    pub fn get() -> &'static Self {
        &MAILBOX
    }
}

impl Mailbox for StaticMailbox {
    fn rx_tx_pa(&self) -> (u64, u64) {
        // Identity mapping: the virtual address is the physical one.
        (self.rx.get() as u64, self.tx.get() as u64)
    }

    fn pages(&self) -> u32 {
        1
    }

    fn with_rx<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        // SAFETY: see the `Sync` impl: nobody writes RX while we hold it (after
        // FFA_PARTITION_INFO_GET returned and before FFA_RX_RELEASE); the `smc`
        // asm is not `nomem`, so the compiler does not reuse stale contents.
        f(unsafe { &*self.rx.get() })
    }
}
