//! Pieces of the small flat EL1 payloads Quadrant boots for its tests and
//! benches (realm-guest under rmm, ci/hvc-bench-guest under ns-hyp): they run
//! on one CPU with the MMU off and bring their own stack.

use core::cell::UnsafeCell;

/// A payload's stack: set up by its entry code and written only by the code
/// running on it, never through Rust references.  Place it in `.data` (with
/// `#[link_section]`) when the loaded image must hold it.
#[repr(C, align(16))]
pub struct PayloadStack<const N: usize>(UnsafeCell<[u8; N]>);

// SAFETY: the one CPU a payload runs on uses it, as its stack; Rust code never
// reads or writes it through the static.
unsafe impl<const N: usize> Sync for PayloadStack<N> {}

impl<const N: usize> PayloadStack<N> {
    pub const SIZE: usize = N;

    pub const fn new() -> Self {
        PayloadStack(UnsafeCell::new([0; N]))
    }
}

impl<const N: usize> Default for PayloadStack<N> {
    fn default() -> Self {
        Self::new()
    }
}
