//! Copies of an FF-A register block (x0..x17, [`Regs`]) with inline LDP/STP.
//!
//! A plain array copy is a `memcpy` call and its loop (~46 instructions),
//! and copy-then-zero adds a `memset`; an SP-to-SP round trip makes several
//! of these, so they were a large part of spmc's share (issue P item 3,
//! docs/performance.md).  One macro writes both shapes, so the two copies
//! differ only in how many words they take.  On the host the same functions
//! are plain array code, so `cargo test` runs their callers unchanged.

use super::Regs;

/// Copies the first `N` word pairs from `$s` to `$d` and zeroes the
/// following pairs, given by their byte offsets, in one `asm!` block.
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
macro_rules! ldp_stp {
    ($s:expr, $d:expr, copy [$($c:literal),*], zero [$($z:literal),*]) => {
        core::arch::asm!(
            $(concat!("ldp {x}, {y}, [{s}, #", $c, "]"), concat!("stp {x}, {y}, [{d}, #", $c, "]"),)*
            $(concat!("stp xzr, xzr, [{d}, #", $z, "]"),)*
            s = in(reg) $s,
            d = in(reg) $d,
            x = out(reg) _,
            y = out(reg) _,
            options(nostack, preserves_flags),
        )
    };
}

/// Copies all 18 words (x0..x17) from `s` to `d`: nine LDP/STP pairs.
///
/// # Safety
/// `s` must be valid for reading and `d` for writing 18 u64s, both 8-byte
/// aligned, and the two ranges must not overlap.
#[inline(always)]
pub unsafe fn copy_regs(s: *const u64, d: *mut u64) {
    #[cfg(all(target_arch = "aarch64", target_os = "none"))]
    // SAFETY: the caller's contract; no other memory is touched.
    unsafe {
        ldp_stp!(s, d, copy [0, 16, 32, 48, 64, 80, 96, 112, 128], zero []);
    }
    #[cfg(not(all(target_arch = "aarch64", target_os = "none")))]
    // SAFETY: the caller's contract.
    unsafe {
        core::ptr::copy_nonoverlapping(s, d, 18);
    }
}

/// x0..x7 of `r` with x8..x17 zero: a direct response's registers
/// (DEN0077 v1.2, FFA_MSG_SEND_DIRECT_RESP_{32,64}: x0..x7 are the
/// response, x8..x17 are not part of it and are passed on as zero).  Four
/// LDP/STP pairs and five STP of zero straight into the caller's block; an
/// array built of the eight words went through the vector registers and the
/// stack.
#[inline(always)]
pub fn first_eight(r: &Regs) -> Regs {
    #[cfg(all(target_arch = "aarch64", target_os = "none"))]
    {
        let mut out = core::mem::MaybeUninit::<Regs>::uninit();
        // SAFETY: reads the first 8 of the 18 words of `r` (borrowed) and
        // writes all 18 words of `out`, a local of its own, so it is
        // initialised afterwards; both 8-byte aligned.  No other memory.
        unsafe {
            ldp_stp!(r.as_ptr(), out.as_mut_ptr().cast::<u64>(), copy [0, 16, 32, 48], zero [64, 80, 96, 112, 128]);
            out.assume_init()
        }
    }
    #[cfg(not(all(target_arch = "aarch64", target_os = "none")))]
    {
        let mut out = [0; 18];
        out[..8].copy_from_slice(&r[..8]);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_eight_keeps_x0_to_x7_and_zeroes_the_rest() {
        let r: Regs = core::array::from_fn(|i| i as u64 + 1);
        let out = first_eight(&r);
        assert_eq!(out[..8], r[..8]);
        assert!(out[8..].iter().all(|&w| w == 0));
    }

    #[test]
    fn copy_regs_copies_all_eighteen() {
        let s: Regs = core::array::from_fn(|i| 100 + i as u64);
        let mut d: Regs = [0; 18];
        // SAFETY: two distinct locals of 18 words each.
        unsafe { copy_regs(s.as_ptr(), d.as_mut_ptr()) };
        assert_eq!(d, s);
    }
}
