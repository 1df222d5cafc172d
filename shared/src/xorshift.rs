//! A tiny deterministic generator (xorshift64*) for seeded test campaigns:
//! the fuzz harnesses of spmc, rmm and ns-hyp (issue J) and anything else
//! that needs reproducible randomness without a dependency; and [`Source`],
//! the choices a harness draws, from a seed or from a libFuzzer input
//! ([`Bytes`]), so one harness serves both.

/// xorshift64*: the same sequence for the same seed, on every machine.
pub struct XorShift64(u64);

impl XorShift64 {
    /// A generator from `seed` (0 is replaced: the state must not be zero).
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A value in `0..n` (0 for n = 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// Where a harness draws its choices from: a seeded generator (the
/// campaigns) or the bytes of a coverage-guided fuzzer's input ([`Bytes`]).
pub trait Source {
    fn next_u64(&mut self) -> u64;
    /// A value in `0..n` (0 for n = 0).
    fn below(&mut self, n: u64) -> u64;
}

impl Source for XorShift64 {
    fn next_u64(&mut self) -> u64 {
        XorShift64::next_u64(self)
    }
    fn below(&mut self, n: u64) -> u64 {
        XorShift64::below(self, n)
    }
}

/// A fuzz input read as a stream of choices; once exhausted, zeros.  A
/// small range takes one byte, so that one mutated byte changes one choice.
pub struct Bytes<'a>(pub &'a [u8]);

impl Bytes<'_> {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn take(&mut self, n: usize) -> u64 {
        let n = n.min(self.0.len());
        let mut b = [0u8; 8];
        b[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        u64::from_le_bytes(b)
    }
}

impl Source for Bytes<'_> {
    fn next_u64(&mut self) -> u64 {
        self.take(8)
    }
    fn below(&mut self, n: u64) -> u64 {
        let width = match n {
            0 => return 0,
            1..=0x100 => 1,
            0x101..=0x1_0000 => 2,
            0x1_0001..=0xffff_ffff => 4,
            _ => 8,
        };
        self.take(width) % n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_read_as_choices_then_zeros() {
        let mut b = Bytes(&[5, 0x34, 0x12, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
        assert_eq!(b.below(3), 2);
        assert_eq!(b.below(0x1000), 0x1234 % 0x1000);
        assert_eq!(b.next_u64(), u64::from_le_bytes([1, 2, 3, 4, 5, 6, 7, 8]));
        assert_eq!(b.below(0), 0);
        assert_eq!(b.next_u64(), 9);
        assert!(b.is_empty());
        assert_eq!((b.next_u64(), b.below(7)), (0, 0));
    }
}
