//! How the RMM reaches granule contents.  Realm-PAS granules (RD, REC, RTT,
//! DATA) and Non-secure granules the Host names (parameters, RmiRecRun, DATA
//! sources) live in the NS DRAM banks; the firmware maps those banks twice
//! (identity with NS = 0 for the Realm PAS, and at [`NS_ALIAS_OFFSET`] with
//! NS = 1), host tests back them with a heap buffer.  Callers hold the
//! granule's lock, which is what makes the references below exclusive.

use crate::granule::GRANULE_SIZE;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Where the firmware's Stage-1 maps the NS DRAM banks a second time with the
/// NS bit set (inside the 39-bit EL2 VA space, above all of QEMU's RAM).
pub const NS_ALIAS_OFFSET: u64 = 0x40_0000_0000;

pub type Page = [u8; GRANULE_SIZE as usize];

pub trait Memory: Sync {
    /// Address of the Realm-PAS granule `pa` in our address space.
    fn realm_va(&self, pa: u64) -> usize;
    /// Address of the Non-secure granule `pa` in our address space.
    fn ns_va(&self, pa: u64) -> usize;
}

/// The Realm-PAS granule `pa` as a `T`.
///
/// # Safety
/// The caller holds the lock of granule `pa` (tracked, so mapped) and no other
/// reference into it is alive.
#[allow(clippy::mut_from_ref, reason = "exclusivity comes from the granule lock the caller holds (# Safety), not from `mem`")]
pub unsafe fn realm<'m, T: FromBytes + IntoBytes + KnownLayout + Immutable>(mem: &'m dyn Memory, pa: u64) -> &'m mut T {
    const { assert!(core::mem::size_of::<T>() <= GRANULE_SIZE as usize) };
    const { assert!(core::mem::align_of::<T>() <= 16) };
    // SAFETY: per the contract the granule is mapped, ours, 4 KiB aligned and unaliased.
    unsafe { &mut *(mem.realm_va(pa) as *mut T) }
}

/// Copies the Non-secure granule `pa` (the Host's memory) into a `T`.
///
/// # Safety
/// The caller holds the lock of granule `pa` and saw it Undelegated, so it is
/// in the Non-secure PAS for the whole copy.
pub unsafe fn read_ns<T: FromBytes + IntoBytes + KnownLayout + Immutable>(mem: &dyn Memory, pa: u64, out: &mut T) {
    let dst = out.as_mut_bytes();
    let src = mem.ns_va(pa) as *const u8;
    // A word at a time where both sides allow it: a REC_ENTER copies 2 KiB
    // in and out, and byte by byte that was ~16,000 instructions of its
    // round trip (issue P, docs/performance.md).  Each word is read once:
    // the Host may change the memory meanwhile, and the copy is what counts.
    if (src as usize).is_multiple_of(8) && dst.len().is_multiple_of(8) {
        let d = dst.as_mut_ptr();
        for i in 0..dst.len() / 8 {
            // SAFETY: per the contract; 8-byte aligned, inside the granule;
            // volatile because the Host may change it concurrently.  The
            // destination is `out`'s own bytes (any alignment: unaligned store).
            unsafe {
                let w = core::ptr::read_volatile(src.add(8 * i) as *const u64);
                core::ptr::write_unaligned(d.add(8 * i) as *mut u64, w);
            }
        }
        return;
    }
    for (i, b) in dst.iter_mut().enumerate() {
        // SAFETY: per the contract; volatile because the Host may change it concurrently.
        *b = unsafe { core::ptr::read_volatile(src.add(i)) };
    }
}

/// Copies `val` into the Non-secure memory at `pa` (within one granule).
///
/// # Safety
/// As [`read_ns`].
pub unsafe fn write_ns<T: IntoBytes + Immutable + ?Sized>(mem: &dyn Memory, pa: u64, val: &T) {
    let src = val.as_bytes();
    let dst = mem.ns_va(pa) as *mut u8;
    // A word at a time where both sides allow it (see `read_ns`).
    if (dst as usize).is_multiple_of(8) && src.len().is_multiple_of(8) {
        let s = src.as_ptr();
        for i in 0..src.len() / 8 {
            // SAFETY: per the contract; 8-byte aligned, inside the granule;
            // the source is `val`'s own bytes (any alignment: unaligned load).
            unsafe {
                let w = core::ptr::read_unaligned(s.add(8 * i) as *const u64);
                core::ptr::write_volatile(dst.add(8 * i) as *mut u64, w);
            }
        }
        return;
    }
    for (i, b) in src.iter().enumerate() {
        // SAFETY: per the contract.
        unsafe { core::ptr::write_volatile(dst.add(i), *b) };
    }
}

/// The firmware's view: identity for the Realm PAS, the NS alias for the Host's memory.
pub struct IdentityMemory;

impl Memory for IdentityMemory {
    fn realm_va(&self, pa: u64) -> usize {
        pa as usize
    }
    fn ns_va(&self, pa: u64) -> usize {
        (pa + NS_ALIAS_OFFSET) as usize
    }
}

#[cfg(any(test, feature = "fuzzing"))]
pub mod test_support {
    use super::*;

    /// Host-test memory: one buffer standing for `[base, base + size)`, both PASes.
    pub struct FakeMemory {
        pub base: u64,
        pub buf: usize,
        pub size: u64,
    }

    impl FakeMemory {
        pub fn new(base: u64, size: u64) -> &'static Self {
            let layout = std::alloc::Layout::from_size_align(size as usize, 4096).unwrap();
            // SAFETY: non-zero size.
            let buf = unsafe { std::alloc::alloc_zeroed(layout) } as usize;
            Box::leak(Box::new(Self { base, buf, size }))
        }

        fn va(&self, pa: u64) -> usize {
            assert!(pa >= self.base && pa < self.base + self.size, "{pa:#x} outside fake memory");
            self.buf + (pa - self.base) as usize
        }

        /// All zero again (a fuzz input's fresh machine).
        pub fn reset(&self) {
            // SAFETY: the leaked buffer of `size` bytes; no reference into it
            // outlives a call (single-threaded harness).
            unsafe { core::ptr::write_bytes(self.buf as *mut u8, 0, self.size as usize) };
        }

        /// The bytes of granule `pa` (test inspection).
        pub fn page(&self, pa: u64) -> &'static mut Page {
            // SAFETY: the buffer is leaked; tests are single-threaded per memory.
            unsafe { &mut *(self.va(pa) as *mut Page) }
        }
    }

    impl Memory for FakeMemory {
        fn realm_va(&self, pa: u64) -> usize {
            self.va(pa)
        }
        fn ns_va(&self, pa: u64) -> usize {
            self.va(pa)
        }
    }
}
