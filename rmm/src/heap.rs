//! The firmware's heap: the attestation token is built with `coset` and
//! `ciborium`, which need `alloc`.  A first-fit free-list allocator
//! (`linked_list_allocator`) over a static region: freed blocks are reused
//! and merged, so making many tokens does not grow it.  Nothing is kept on
//! the heap between RSI calls except the attestation material cached once
//! (crate::attest), so its use is bounded: a token in flight peaks under
//! 24 KiB with a 4 KiB platform token (cca-token/tests/no_leak.rs, which
//! also shows that making tokens leaves nothing allocated), at most one per
//! CPU.  Running out would end in the panic handler; 256 KiB covers 8 CPUs
//! at once with room to spare.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, Ordering};
use linked_list_allocator::LockedHeap;

const HEAP_SIZE: usize = 256 * 1024;

#[repr(C, align(4096))]
struct Region(UnsafeCell<[u8; HEAP_SIZE]>);

// SAFETY: the bytes are touched only by the allocator, after `init` hands
// them over once; the allocator serialises its users with its own lock.
unsafe impl Sync for Region {}

static REGION: Region = Region(UnsafeCell::new([0; HEAP_SIZE]));
static HANDED_OVER: AtomicBool = AtomicBool::new(false);

#[global_allocator]
static HEAP: LockedHeap = LockedHeap::empty();

/// Gives the region to the allocator (once; later calls do nothing).  Until
/// then every allocation fails.
pub fn init() {
    if HANDED_OVER.swap(true, Ordering::AcqRel) {
        return;
    }
    // SAFETY: REGION is a static (valid for the program's life, in .bss,
    // mapped read-write with the image), used by nothing else, and handed
    // over only once (the flag above).
    unsafe { HEAP.lock().init(REGION.0.get().cast::<u8>(), HEAP_SIZE) };
}
