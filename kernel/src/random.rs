//! Random bytes for `getrandom` and `AT_RANDOM`: a xoshiro256** generator seeded at boot
//! from the device tree's `/chosen/rng-seed` (QEMU fills it from the host) and the time.
//!
//! Not a cryptographic generator: good enough for stack-protector canaries and hash
//! seeds of test programs, which is what static start-up code uses it for.

use spin::Mutex;

static STATE: Mutex<[u64; 4]> = Mutex::new([0x9e37_79b9_7f4a_7c15, 1, 2, 3]);

/// SplitMix64, to spread one seed word over the generator's state.
fn splitmix(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Seeds the generator.
pub fn init(seed: u64) {
    let mut x = seed ^ crate::arch::read_time();
    let mut s = STATE.lock();
    for w in s.iter_mut() {
        *w = splitmix(&mut x);
    }
}

fn next(s: &mut [u64; 4]) -> u64 {
    let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
    let t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = s[3].rotate_left(45);
    result
}

/// Fills `buf` with random bytes.
pub fn fill(buf: &mut [u8]) {
    let mut s = STATE.lock();
    for chunk in buf.chunks_mut(8) {
        let word = next(&mut s).to_le_bytes();
        chunk.copy_from_slice(&word[..chunk.len()]);
    }
}
