//! A tiny deterministic generator (xorshift64*) for seeded test campaigns:
//! the fuzz harnesses of spmc, rmm and ns-hyp (issue J) and anything else
//! that needs reproducible randomness without a dependency.

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
