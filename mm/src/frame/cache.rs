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

use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicUsize, Ordering};

use super::meta::FrameUse;

/// Frames one hart cache holds at most (1 MiB). A cache's fill level walks between empty
/// and full under mixed allocation and freeing, and every refill or drain moves frames,
/// and the cache lines of their metadata, between harts through the buddy lists; 256
/// frames make those trips rarer than 64 did (two threads churning frames on one
/// allocator: 1.02-1.90x one thread, median 1.17x, instead of 0.69-0.86x;
/// `docs/PERFORMANCE.md`).
pub const CACHE_CAPACITY: usize = 256;
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

/// `LocalSlot::owner`: nobody holds the pinned cache; whoever takes it first (its hart
/// with a pin, or a drainer) compare-and-swaps this away.
pub(super) const LOCAL_FREE: u8 = 0;
/// `LocalSlot::owner`: the cache's own hart holds it and touches it with plain loads and
/// stores while pinned; only that hart changes this value.
pub(super) const LOCAL_OWNED: u8 = 1;
/// `LocalSlot::owner`: another context is draining (or `verify` is reading) the cache.
pub(super) const LOCAL_BUSY: u8 = 2;

/// One hart's *pinned* cache, for `FrameAllocator::alloc_local` / `put_local`.
///
/// Ownership is biased: the first pinned operation on hart h takes the slot
/// (`LOCAL_FREE` -> `LOCAL_OWNED`, one compare-and-swap) and keeps it; from then on every
/// operation of hart h checks `owner` and `request` with two plain loads and works on
/// the stack with plain (relaxed, single-writer) loads and stores. Since only hart h moves
/// the slot out of `LOCAL_OWNED`, reading `LOCAL_OWNED` proves it still holds it. Other
/// contexts never touch an owned cache: they set `request`, and hart h drains the cache
/// to the buddy lists at its next pinned operation (or `service_local`). A hart that
/// parks (`park_local`) stores `LOCAL_FREE`, after which anyone may drain the cache by
/// taking it `LOCAL_FREE` -> `LOCAL_BUSY`.
///
/// Every field is an atomic written by one context at a time, so `stats` and `verify`
/// may read an owned cache from another hart without a data race (their figures for it
/// are exact only when its owner is not running an operation meanwhile).
#[repr(C, align(64))]
pub(super) struct LocalSlot {
    /// `LOCAL_FREE`, `LOCAL_OWNED` or `LOCAL_BUSY`.
    pub(super) owner: AtomicU8,
    /// Set by an allocation that ran out of memory (or `drain_caches`): the owner must
    /// give its frames back. Cleared by whoever drains the cache.
    pub(super) request: AtomicBool,
    /// Number of frames in `frames`.
    pub(super) len: AtomicUsize,
    /// Frames allocated (+) and freed (-) through this cache, by use; wrapping deltas.
    pub(super) used: [AtomicUsize; FrameUse::COUNT],
    /// Frame indices; `frames[len - 1]` is the warmest.
    pub(super) frames: [AtomicU32; CACHE_CAPACITY],
}

impl LocalSlot {
    pub(super) const fn new() -> LocalSlot {
        LocalSlot {
            owner: AtomicU8::new(LOCAL_FREE),
            request: AtomicBool::new(false),
            len: AtomicUsize::new(0),
            used: [const { AtomicUsize::new(0) }; FrameUse::COUNT],
            frames: [const { AtomicU32::new(0) }; CACHE_CAPACITY],
        }
    }

    /// Frames held (a relaxed read; exact for the holder of the slot).
    #[inline]
    pub(super) fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// Adds `d` (wrapping) to the count of use `u`. Holder only: a load and a store, not a
    /// read-modify-write.
    #[inline]
    pub(super) fn add_used(&self, u: usize, d: usize) {
        let c = &self.used[u];
        c.store(c.load(Ordering::Relaxed).wrapping_add(d), Ordering::Relaxed);
    }

    /// Pops the warmest frame. Holder only.
    #[inline]
    pub(super) fn pop(&self) -> Option<u32> {
        let len = self.len();
        if len == 0 {
            return None;
        }
        let idx = self.frames[len - 1].load(Ordering::Relaxed);
        self.len.store(len - 1, Ordering::Relaxed);
        Some(idx)
    }

    /// Pushes a frame; the holder made room first.
    #[inline]
    pub(super) fn push(&self, idx: u32) {
        let len = self.len();
        self.frames[len].store(idx, Ordering::Relaxed);
        self.len.store(len + 1, Ordering::Relaxed);
    }

    /// Removes the `n` oldest frames, calling `f` on each, and slides the rest down.
    /// Holder only.
    pub(super) fn drain_oldest(&self, n: usize, mut f: impl FnMut(u32)) {
        let len = self.len();
        let n = n.min(len);
        for slot in &self.frames[..n] {
            f(slot.load(Ordering::Relaxed));
        }
        for i in n..len {
            let v = self.frames[i].load(Ordering::Relaxed);
            self.frames[i - n].store(v, Ordering::Relaxed);
        }
        self.len.store(len - n, Ordering::Relaxed);
    }

    /// Takes a slot nobody holds (`LOCAL_FREE` -> `to`); false if it is held.
    #[inline]
    pub(super) fn try_take(&self, to: u8) -> bool {
        self.owner
            .compare_exchange(LOCAL_FREE, to, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    /// Lets go of a slot taken with `try_take` (or owned), publishing the writes made
    /// while holding it.
    #[inline]
    pub(super) fn release(&self) {
        self.owner.store(LOCAL_FREE, Ordering::Release);
    }
}
