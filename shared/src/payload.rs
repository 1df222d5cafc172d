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

/// Defines a payload's stack `$name` of `$size` bytes in `.data` (so the
/// loaded image holds it: a Host that measures the image measures the stack
/// too), under its own symbol name for the entry code's `sym` operand.
#[macro_export]
macro_rules! payload_stack {
    ($name:ident, $size:expr) => {
        #[unsafe(link_section = ".data.stack")]
        #[unsafe(no_mangle)]
        static $name: $crate::payload::PayloadStack<{ $size }> = $crate::payload::PayloadStack::new();
    };
}

/// The arm64 Linux Image header (Linux Documentation/arch/arm64/booting.rst)
/// as assembler lines for an image's `_start`: `b 1f` over the header, then
/// `text_offset`, `image_size` (`__image_end - _start`) and `flags`; the code
/// continues at the local label `1:`.
#[macro_export]
macro_rules! arm64_image_header {
    ($text_offset:literal, $flags:literal) => {
        concat!(
            "b 1f\n",
            ".long 0\n",
            ".quad ", $text_offset, "\n",
            ".quad __image_end - _start\n",
            ".quad ", $flags, "\n",
            ".quad 0, 0, 0\n",
            ".ascii \"ARM\\x64\"\n",
            ".long 0\n",
            "1:\n"
        )
    };
}
