//! Per-hart caches of single free frames.
//!
//! Each hart has a small stack of free order-0 frames behind its own lock. Allocating or
//! freeing one frame on hart h normally takes only h's lock, which no other hart touches
//! in the common case, so harts do not contend on the buddy lock. The stack is refilled
//! from the buddy [`BATCH`] frames at a time when empty, and [`BATCH`] of its oldest
//! frames are given back when it is full. An allocation that finds the buddy empty
//! drains every cache before it reports out of memory.
//!
//! Lock order: a hart's cache lock, then the buddy lock. Code holding the buddy lock
//! never takes a cache lock, and no code holds two cache locks except `verify`, which
//! takes them in hart order.

use super::meta::FrameUse;

/// Frames one hart cache holds at most.
pub const CACHE_CAPACITY: usize = 64;
/// Frames moved between a hart cache and the buddy at a time (refill and drain).
pub const BATCH: usize = CACHE_CAPACITY / 2;

/// One hart's cache (always used under its lock).
pub(super) struct HartCache {
    /// Number of frames in `frames`.
    pub(super) len: usize,
    /// Frame indices; `frames[len - 1]` is the most recently freed (warmest).
    pub(super) frames: [u32; CACHE_CAPACITY],
    /// Frames allocated (+) and freed (-) on this hart, by use; wrapping deltas (a frame
    /// allocated on one hart may be freed on another).
    pub(super) used: [usize; FrameUse::COUNT],
}

impl HartCache {
    pub(super) const fn new() -> HartCache {
        HartCache {
            len: 0,
            frames: [0; CACHE_CAPACITY],
            used: [0; FrameUse::COUNT],
        }
    }

    /// Pops the warmest frame.
    #[inline]
    pub(super) fn pop(&mut self) -> Option<u32> {
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        Some(self.frames[self.len])
    }

    /// Pushes a frame; the caller made room first.
    #[inline]
    pub(super) fn push(&mut self, idx: u32) {
        self.frames[self.len] = idx;
        self.len += 1;
    }

    /// Removes the `n` oldest frames, calling `f` on each, and slides the rest down.
    #[inline]
    pub(super) fn drain_oldest(&mut self, n: usize, mut f: impl FnMut(u32)) {
        let n = n.min(self.len);
        for &idx in &self.frames[..n] {
            f(idx);
        }
        self.frames.copy_within(n..self.len, 0);
        self.len -= n;
    }
}

/// A hart cache on its own cache line, so that harts do not false-share.
#[repr(align(64))]
pub(super) struct HartSlot {
    pub(super) cache: spin::Mutex<HartCache>,
}

impl HartSlot {
    pub(super) const fn new() -> HartSlot {
        HartSlot {
            cache: spin::Mutex::new(HartCache::new()),
        }
    }
}
