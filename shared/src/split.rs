//! Where a round trip's time goes (issue P, item 2): a Secure or Realm
//! firmware image counts the counter ticks it spends itself between being
//! entered from EL3 and returning to it, apart from the ticks its SP or
//! Realm runs in between.  Under QEMU's `-icount shift=0` the counter
//! advances one tick per instruction, so the counts are instructions.
//!
//! Compiled in only with the `bench-split` feature, which `cargo xtask
//! bench` builds into separate spmc and rmm images (never the product ones):
//! without it every function here is empty.  The bench client asks for the
//! counts with a marker call the product images answer as any unknown query
//! ([`FFA_MARKER`], [`RMI_MARKER`]); the split images also print
//! `split <image> calls <n> own <ticks> inner <ticks>` and start again.
//! Only the bench's CPU (core 0) uses them; the counts are plain atomics.

#[cfg(feature = "bench-split")]
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// FFA_FEATURES with this as the queried function ID (an ID in the FF-A
/// range that no version defines): NOT_SUPPORTED from any SPMC.
pub const FFA_MARKER: u64 = 0x8400_00ff;
/// RMI_FEATURES with this index (no such feature register): 0 from any RMM.
pub const RMI_MARKER: u64 = 0x5153_504c; // "QSPL"

#[cfg(feature = "bench-split")]
static ENTERED: AtomicU64 = AtomicU64::new(0);
#[cfg(feature = "bench-split")]
static OWN: AtomicU64 = AtomicU64::new(0);
#[cfg(feature = "bench-split")]
static INNER_START: AtomicU64 = AtomicU64::new(0);
#[cfg(feature = "bench-split")]
static INNER: AtomicU64 = AtomicU64::new(0);
#[cfg(feature = "bench-split")]
static CALLS: AtomicU64 = AtomicU64::new(0);

#[cfg(feature = "bench-split")]
#[inline(always)]
fn now() -> u64 {
    crate::arch::timer::cntpct()
}

/// EL3 handed us a call.
#[inline(always)]
pub fn enter() {
    #[cfg(feature = "bench-split")]
    ENTERED.store(now(), Relaxed);
}

/// We hand the answer back to EL3.
#[inline(always)]
pub fn leave() {
    #[cfg(feature = "bench-split")]
    {
        let t = now();
        OWN.fetch_add(t.wrapping_sub(ENTERED.load(Relaxed)), Relaxed);
        CALLS.fetch_add(1, Relaxed);
    }
}

/// We run the SP or Realm (the time until [`inner_end`] is not ours).
#[inline(always)]
pub fn inner_begin() {
    #[cfg(feature = "bench-split")]
    INNER_START.store(now(), Relaxed);
}

#[inline(always)]
pub fn inner_end() {
    #[cfg(feature = "bench-split")]
    INNER.fetch_add(now().wrapping_sub(INNER_START.load(Relaxed)), Relaxed);
}

/// The counts since the last marker: (calls, own ticks, inner ticks), then
/// zero.  Own excludes inner.  Always (0, 0, 0) without `bench-split`.
pub fn take() -> (u64, u64, u64) {
    #[cfg(feature = "bench-split")]
    {
        let (c, o, i) = (CALLS.swap(0, Relaxed), OWN.swap(0, Relaxed), INNER.swap(0, Relaxed));
        (c, o.saturating_sub(i), i)
    }
    #[cfg(not(feature = "bench-split"))]
    (0, 0, 0)
}

/// Whether this image was built with the counts.
pub const ENABLED: bool = cfg!(feature = "bench-split");
