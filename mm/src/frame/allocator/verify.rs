//! [`FrameAllocator::verify`]: the allocator's structural invariants (listed in the
//! `frame` module's documentation), checked under every lock. O(span); for tests and
//! debugging.

use core::sync::atomic::Ordering;

use super::super::cache::{CACHE_CAPACITY, HartCache, LOCAL_BUSY};
use super::super::error::Corruption;
use super::super::meta::{
    FrameMeta, FrameUse, MAX_ORDER, STATE_CACHED, STATE_TAIL, State, head_state,
};
use super::FrameAllocator;
use crate::addr::Pfn;
use crate::layout::MAX_HARTS;

impl FrameAllocator {
    /// Checks every structural invariant, holding every lock: the lists are consistent
    /// with the metadata; every frame of the span is a free head, a cached frame, an
    /// allocated head, a tail inside one of those blocks, or reserved; blocks are
    /// naturally aligned and inside the span; no two free buddies are left unmerged;
    /// the caches hold exactly the cached frames; the counts agree. O(span); meant for
    /// tests and debugging.
    ///
    /// Pinned caches that nobody holds are held for the check; one that its hart holds
    /// cannot be, so the result is exact only if no pinned operation
    /// ([`FrameAllocator::alloc_local`] and friends) runs meanwhile.
    pub fn verify(&self) -> Result<(), Corruption> {
        let caches: [_; MAX_HARTS] = core::array::from_fn(|i| self.harts[i].cache.lock());
        let taken: [bool; MAX_HARTS] = core::array::from_fn(|i| self.local[i].try_take(LOCAL_BUSY));
        let res = self.verify_held(&caches);
        for (slot, _) in self.local.iter().zip(taken).filter(|(_, t)| *t) {
            slot.release();
        }
        res
    }

    fn verify_held(&self, caches: &[spin::MutexGuard<'_, HartCache>]) -> Result<(), Corruption> {
        let b = self.lock_buddy();
        b.verify_lists()?;
        let meta = b.meta;
        let err = |i: usize, what| {
            Err(Corruption {
                pfn: Pfn(b.base + i),
                what,
            })
        };
        let (mut i, mut free, mut cached, mut used, mut reserved) = (0, 0, 0, 0, 0);
        while i < meta.len() {
            let (order, is_free) = match meta[i].state() {
                State::FreeHead(k) => (k, true),
                State::Allocated(_, k) => (k, false),
                State::Cached => {
                    cached += 1;
                    i += 1;
                    continue;
                }
                State::Reserved => {
                    reserved += 1;
                    i += 1;
                    continue;
                }
                State::Tail => return err(i, "tail frame outside any block"),
            };
            let size = 1usize << order;
            if !(b.base + i).is_multiple_of(size) {
                return err(i, "block not naturally aligned");
            }
            if i + size > meta.len() {
                return err(i, "block runs past the span");
            }
            if let Some(t) = (i + 1..i + size).find(|&t| meta[t].state_word() != STATE_TAIL) {
                return err(t, "frame inside a block is not a tail");
            }
            if is_free {
                free += size;
                let buddy = (b.base + i) ^ size;
                if order < MAX_ORDER
                    && buddy
                        .checked_sub(b.base)
                        .filter(|&j| j < meta.len())
                        .is_some_and(|j| meta[j].state_word() == head_state(FrameUse::Free, order))
                {
                    return err(i, "free buddies left unmerged");
                }
            } else {
                used += size;
            }
            i += size;
        }
        if free != b.free_frames {
            return err(0, "free heads disagree with the free-frame count");
        }
        let mut in_caches = 0;
        for c in caches {
            for &idx in &c.frames[..c.len] {
                if meta.get(idx as usize).map(FrameMeta::state_word) != Some(STATE_CACHED) {
                    return err(idx as usize, "hart cache holds a frame that is not cached");
                }
            }
            in_caches += c.len;
        }
        for slot in &self.local {
            let len = slot.len().min(CACHE_CAPACITY);
            for idx in slot.frames[..len].iter().map(|f| f.load(Ordering::Relaxed)) {
                if meta.get(idx as usize).map(FrameMeta::state_word) != Some(STATE_CACHED) {
                    return err(
                        idx as usize,
                        "pinned cache holds a frame that is not cached",
                    );
                }
            }
            in_caches += len;
        }
        if in_caches != cached {
            return err(
                0,
                "cached frames disagree with the hart caches (duplicate?)",
            );
        }
        if free + cached + used != b.total || reserved + b.total != meta.len() {
            return err(0, "frame counts do not add up");
        }
        Ok(())
    }
}
