//! Sets of harts: a plain [`HartMask`] value and the shared [`AtomicHartMask`] that an
//! address space uses to record every hart that has run it.
//!
//! Harts are named by their logical index `0..harts` (dense, assigned at boot in the
//! order the device tree lists them), not by `mhartid`.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::layout::MAX_HARTS;

const WORDS: usize = MAX_HARTS.div_ceil(64);

/// A set of harts (a value; copy it freely).
#[derive(Clone, Copy, PartialEq, Eq, Default, Debug)]
pub struct HartMask([u64; WORDS]);

impl HartMask {
    /// The empty set.
    pub const EMPTY: Self = Self([0; WORDS]);

    /// Harts `0..n` (`n` is clamped to [`MAX_HARTS`]).
    pub fn first(n: usize) -> Self {
        let mut mask = Self::EMPTY;
        for hart in 0..n.min(MAX_HARTS) {
            mask.insert(hart);
        }
        mask
    }

    /// Adds `hart`; a hart at or beyond [`MAX_HARTS`] is a programming error (panics).
    #[inline]
    pub fn insert(&mut self, hart: usize) {
        assert!(hart < MAX_HARTS, "hart index out of range");
        self.0[hart / 64] |= 1 << (hart % 64);
    }

    /// Removes `hart`; returns whether it was present.
    #[inline]
    pub fn remove(&mut self, hart: usize) -> bool {
        let was = self.contains(hart);
        if hart < MAX_HARTS {
            self.0[hart / 64] &= !(1 << (hart % 64));
        }
        was
    }

    /// Whether `hart` is in the set (false for any index beyond [`MAX_HARTS`]).
    #[inline]
    pub fn contains(&self, hart: usize) -> bool {
        hart < MAX_HARTS && self.0[hart / 64] & (1 << (hart % 64)) != 0
    }

    /// Whether the set is empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|w| *w == 0)
    }

    /// Number of harts in the set.
    #[inline]
    pub fn len(&self) -> usize {
        self.0.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// The harts in the set, ascending.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.0.iter().enumerate().flat_map(|(i, &word)| {
            let mut bits = word;
            core::iter::from_fn(move || {
                if bits == 0 {
                    return None;
                }
                let bit = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                Some(i * 64 + bit)
            })
        })
    }
}

/// A set of harts shared between harts (every operation is `SeqCst`): an address space
/// records in such sets which harts ran it, run it now and must flush it before running
/// it again (the protocol is in [`AsidContext`](super::AsidContext)).
#[derive(Default, Debug)]
pub struct AtomicHartMask([AtomicU64; WORDS]);

impl AtomicHartMask {
    /// The empty set.
    pub const fn new() -> Self {
        Self([const { AtomicU64::new(0) }; WORDS])
    }

    /// Adds `hart` (beyond [`MAX_HARTS`]: a programming error, panics).
    #[inline]
    pub fn insert(&self, hart: usize) {
        assert!(hart < MAX_HARTS, "hart index out of range");
        self.0[hart / 64].fetch_or(1 << (hart % 64), Ordering::SeqCst);
    }

    /// Removes `hart`; returns whether it was a member.
    #[inline]
    pub fn remove(&self, hart: usize) -> bool {
        if hart >= MAX_HARTS {
            return false;
        }
        let bit = 1 << (hart % 64);
        self.0[hart / 64].fetch_and(!bit, Ordering::SeqCst) & bit != 0
    }

    /// Adds every member of `harts`.
    #[inline]
    pub fn insert_all(&self, harts: &HartMask) {
        for (dst, &src) in self.0.iter().zip(&harts.0) {
            if src != 0 {
                dst.fetch_or(src, Ordering::SeqCst);
            }
        }
    }

    /// The current members.
    #[inline]
    pub fn snapshot(&self) -> HartMask {
        let mut mask = HartMask::EMPTY;
        for (dst, src) in mask.0.iter_mut().zip(&self.0) {
            *dst = src.load(Ordering::SeqCst);
        }
        mask
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    #[test]
    fn set_operations() {
        let mut mask = HartMask::EMPTY;
        assert!(mask.is_empty());
        for hart in [0, 5, 17, MAX_HARTS - 1] {
            mask.insert(hart);
        }
        assert_eq!(mask.len(), 4);
        assert_eq!(mask.iter().collect::<Vec<_>>(), [0, 5, 17, MAX_HARTS - 1]);
        assert!(mask.remove(17));
        assert!(!mask.remove(17));
        assert!(!mask.contains(17));
        assert!(!mask.contains(MAX_HARTS));
        assert!(!mask.remove(MAX_HARTS + 3));
        assert_eq!(HartMask::first(3).iter().collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(HartMask::first(MAX_HARTS + 10).len(), MAX_HARTS);
    }

    #[test]
    fn atomic_mask() {
        let shared = AtomicHartMask::new();
        shared.insert(1);
        shared.insert(MAX_HARTS - 1);
        let snap = shared.snapshot();
        assert_eq!(snap.iter().collect::<Vec<_>>(), [1, MAX_HARTS - 1]);
    }
}
