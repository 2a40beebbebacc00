//! The buddy core: free lists threaded through the metadata array, one list per order,
//! and a bitmap of the non-empty orders. Always used under the allocator's buddy lock.
//!
//! A block of order k starts at a frame number that is a multiple of 2^k (natural
//! alignment in physical memory, not relative to the span base). Its buddy is the block
//! whose frame number differs only in bit k. Freeing merges a block with its buddy while
//! the buddy is a free head of the same order; merging stops at [`MAX_ORDER`], at the
//! edge of the span, and at reserved frames (which are never free heads), so blocks
//! never straddle a gap between RAM regions.
//!
//! Costs: `take` finds the smallest non-empty order >= the request with one
//! count-trailing-zeros on the bitmap and splits at most [`MAX_ORDER`] times; `give`
//! merges at most [`MAX_ORDER`] times; list insertion and removal are O(1) because the
//! lists are doubly linked. Neither reads or writes the frames themselves.

use super::error::Corruption;
use super::meta::{FrameMeta, FrameUse, MAX_ORDER, NO_FRAME, ORDERS, STATE_TAIL, head_state};
use crate::addr::Pfn;

const PREV: usize = 0;
const NEXT: usize = 1;

/// The lock-protected part of the allocator.
pub(super) struct Buddy {
    /// The metadata array (empty until init).
    pub(super) meta: &'static [FrameMeta],
    /// Frame number of `meta[0]`.
    pub(super) base: usize,
    /// First free block of each order, or [`NO_FRAME`].
    heads: [u32; ORDERS],
    /// Bit k set iff list k is non-empty.
    nonempty: u32,
    /// Blocks on each list.
    pub(super) free_blocks: [usize; ORDERS],
    /// Frames on all lists.
    pub(super) free_frames: usize,
    /// Managed frames.
    pub(super) total: usize,
    /// Frames allocated (+) and freed (-) through this path, by use; wrapping deltas.
    pub(super) used: [usize; FrameUse::COUNT],
    /// Highest value of `total - free_frames` seen.
    pub(super) peak_out: usize,
}

impl Buddy {
    pub(super) const fn new() -> Buddy {
        Buddy {
            meta: &[],
            base: 0,
            heads: [NO_FRAME; ORDERS],
            nonempty: 0,
            free_blocks: [0; ORDERS],
            free_frames: 0,
            total: 0,
            used: [0; FrameUse::COUNT],
            peak_out: 0,
        }
    }

    #[inline]
    fn m(&self, idx: u32) -> &'static FrameMeta {
        // Indices come from this module's lists and from callers that checked them
        // against the span, so the bounds check never fails; it stays as a guard.
        &self.meta[idx as usize]
    }

    /// Pushes the block at `idx` on list `order` and marks it a free head.
    #[inline]
    fn push(&mut self, idx: u32, order: usize) {
        let m = self.m(idx);
        let first = self.heads[order];
        m.set_link(PREV, NO_FRAME);
        m.set_link(NEXT, first);
        m.set_state(head_state(FrameUse::Free, order));
        if first != NO_FRAME {
            self.m(first).set_link(PREV, idx);
        }
        self.heads[order] = idx;
        self.nonempty |= 1 << order;
        self.free_blocks[order] += 1;
        self.free_frames += 1 << order;
    }

    /// Removes the block at `idx` (a free head on list `order`) from its list. Its state
    /// is left for the caller to overwrite.
    #[inline]
    fn unlink(&mut self, idx: u32, order: usize) {
        let m = self.m(idx);
        let prev = m.link(PREV);
        let next = m.link(NEXT);
        if prev == NO_FRAME {
            self.heads[order] = next;
            if next == NO_FRAME {
                self.nonempty &= !(1 << order);
            }
        } else {
            self.m(prev).set_link(NEXT, next);
        }
        if next != NO_FRAME {
            self.m(next).set_link(PREV, prev);
        }
        self.free_blocks[order] -= 1;
        self.free_frames -= 1 << order;
    }

    /// Takes a block of `order` (naturally aligned), splitting a larger one if needed,
    /// and writes `state` into its head. `None` when no block of `order` or above is free.
    #[inline]
    pub(super) fn take(&mut self, order: usize, state: u32) -> Option<u32> {
        let avail = self.nonempty & (u32::MAX << order);
        if avail == 0 {
            return None;
        }
        let mut k = avail.trailing_zeros() as usize;
        let idx = self.heads[k];
        self.unlink(idx, k);
        self.m(idx).set_state(state);
        while k > order {
            k -= 1;
            self.push(idx + (1 << k), k);
        }
        let out = self.total - self.free_frames;
        if out > self.peak_out {
            self.peak_out = out;
        }
        Some(idx)
    }

    /// Returns the block at `idx` of `order` (its head not on any list, its other frames
    /// tails) and merges it with free buddies as far as possible.
    #[inline]
    pub(super) fn give(&mut self, mut idx: u32, mut order: usize) {
        while order < MAX_ORDER {
            let pfn = self.base + idx as usize;
            let buddy_pfn = pfn ^ (1 << order);
            let Some(b) = buddy_pfn.checked_sub(self.base) else {
                break;
            };
            if b >= self.meta.len()
                || self.meta[b].state_word() != head_state(FrameUse::Free, order)
            {
                break;
            }
            let b = b as u32;
            self.unlink(b, order);
            let (low, high) = if b < idx { (b, idx) } else { (idx, b) };
            self.m(high).set_state(STATE_TAIL);
            idx = low;
            order += 1;
        }
        self.push(idx, order);
    }

    /// Checks the lists against the metadata: links consistent, every listed block a
    /// free head of its list's order, counts and the non-empty bitmap right.
    pub(super) fn verify_lists(&self) -> Result<(), Corruption> {
        let err = |idx: u32, what| {
            Err(Corruption {
                pfn: Pfn(self.base + idx as usize),
                what,
            })
        };
        let mut frames = 0;
        for k in 0..ORDERS {
            let mut n = 0;
            let mut prev = NO_FRAME;
            let mut idx = self.heads[k];
            while idx != NO_FRAME {
                if idx as usize >= self.meta.len() {
                    return err(prev, "free-list link outside the span");
                }
                let m = self.m(idx);
                if m.state_word() != head_state(FrameUse::Free, k) {
                    return err(idx, "listed block is not a free head of the list's order");
                }
                if m.link(PREV) != prev {
                    return err(idx, "free-list back link is wrong");
                }
                n += 1;
                if n > self.free_blocks[k] {
                    return err(idx, "free list longer than its count (or cyclic)");
                }
                prev = idx;
                idx = m.link(NEXT);
            }
            if n != self.free_blocks[k] {
                return err(0, "free list shorter than its count");
            }
            if (self.nonempty >> k) & 1 != (n != 0) as u32 {
                return err(0, "non-empty-order bitmap disagrees with a list");
            }
            frames += n << k;
        }
        if frames != self.free_frames {
            return err(0, "free-frame count disagrees with the lists");
        }
        Ok(())
    }
}
