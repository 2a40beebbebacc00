//! Helpers shared by the host test and benchmark crates (each includes this module with
//! `mod support;` or `#[path = "../tests/support/mod.rs"] mod support;`).

/// xorshift64: a tiny deterministic generator, so every test and benchmark replays the
/// same sequence from its fixed seed. The seed must not be zero.
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n` (`n > 0`; the slight modulo bias does not matter here).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}
