//! Making tokens leaves nothing allocated: rmm's heap (a freeing allocator
//! over a fixed region) then serves any number of tokens.  Its own binary,
//! so the counting allocator sees this test alone.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let now = LIVE.fetch_add(l.size() as isize, Ordering::Relaxed) + l.size() as isize;
        PEAK.fetch_max(now, Ordering::Relaxed);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static A: Counting = Counting;

#[test]
fn tokens_leave_nothing_allocated() {
    let rak = cca_token::RealmAttestationKey::from_el3(&[0x11; 48]).unwrap();
    let platform = vec![0xa0u8; 4096];
    let rpv = [0u8; 64];
    let m = [[3u8; 64]; 5];
    let make = |i: u8| {
        let ch = [i; 64];
        let c = cca_token::RealmClaims { challenge: &ch, personalization_value: &rpv, hash_algo: cca_token::HashAlgo::Sha512, rim: &m[0], rems: [&m[1], &m[2], &m[3], &m[4]] };
        let realm = cca_token::realm_token(&c, &rak).unwrap();
        cca_token::collection(&platform, &realm).unwrap().len()
    };
    make(0);
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    for i in 0..20 {
        assert!(make(i) > 1500);
    }
    assert_eq!(LIVE.load(Ordering::Relaxed), before, "bytes still allocated after 20 tokens");
    // rmm's heap (rmm/src/heap.rs, 256 KiB) counts on under 24 KiB per token
    // in flight with the largest platform token it takes (4 KiB): about
    // 18.5 KiB measured.
    let peak = PEAK.load(Ordering::Relaxed) - before;
    assert!(peak < 24 * 1024, "peak {peak} bytes for one token");
}
