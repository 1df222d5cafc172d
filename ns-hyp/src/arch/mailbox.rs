//! Our FF-A RX/TX buffer pair (DEN0077 v1.2 FFA_RXTX_MAP: 4 KiB aligned,
//! whole pages), in .bss, identity-mapped with the rest of the image.
//!
//! The probes (test flavour) use it on the boot CPU before any guest runs;
//! then the guests' FF-A proxy (`crate::guest::ffa`) uses it from every CPU,
//! its RX only under the proxy's lock (`vm::ffa::Proxy`, from ns-hyp's
//! FFA_PARTITION_INFO_GET to its FFA_RX_RELEASE).

use core::cell::UnsafeCell;

const PAGE: usize = 4096;

#[repr(C, align(4096))]
pub struct StaticMailbox {
    rx: UnsafeCell<[u8; PAGE]>,
    tx: UnsafeCell<[u8; PAGE]>,
}

// SAFETY: ns-hyp never writes RX: the SPMC writes it between our calls
// (while it owns the buffer), and we read it after the call that handed it
// to us returned, by one CPU at a time (the probes run before any other CPU
// is started; the proxy reads it under its lock).  TX is written only by the
// guests' memory calls, under the proxy's memory lock, and read by the SPMC
// during the SMC that follows.
unsafe impl Sync for StaticMailbox {}

static MAILBOX: StaticMailbox = StaticMailbox { rx: UnsafeCell::new([0; PAGE]), tx: UnsafeCell::new([0; PAGE]) };

impl StaticMailbox {
    pub fn get() -> &'static Self {
        &MAILBOX
    }

    /// Physical (= our identity-mapped virtual) addresses of RX and TX.
    pub fn rx_tx_pa(&self) -> (u64, u64) {
        (self.rx.get() as u64, self.tx.get() as u64)
    }

    /// Size of each buffer in 4 KiB pages.
    pub fn pages(&self) -> u32 {
        1
    }

    /// Copies `bytes` to the start of the TX buffer (see the `Sync` impl:
    /// under the proxy's memory lock, one CPU at a time).
    pub fn write_tx(&self, bytes: &[u8]) {
        let n = bytes.len().min(PAGE);
        // SAFETY: see the `Sync` impl: one writer at a time and the SPMC
        // reads TX only during our SMC; the `smc` asm is not `nomem`, so the
        // store is not moved past it.
        unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), self.tx.get() as *mut u8, n) };
    }

    /// Runs `f` over the RX buffer's current contents (see the `Sync` impl:
    /// only while ns-hyp owns it, one CPU at a time).
    pub fn with_rx<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        // SAFETY: see the `Sync` impl: nobody writes RX while we hold it (after
        // FFA_PARTITION_INFO_GET returned and before FFA_RX_RELEASE); the `smc`
        // asm is not `nomem`, so the compiler does not reuse stale contents.
        f(unsafe { &*self.rx.get() })
    }
}

#[cfg(feature = "test-modes")]
impl crate::probe::Mailbox for StaticMailbox {
    fn rx_tx_pa(&self) -> (u64, u64) {
        StaticMailbox::rx_tx_pa(self)
    }

    fn pages(&self) -> u32 {
        StaticMailbox::pages(self)
    }

    fn with_rx<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        StaticMailbox::with_rx(self, f)
    }
}
