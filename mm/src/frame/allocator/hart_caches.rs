//! The per-hart caches of [`FrameAllocator`]: the `_on(hart, ..)` operations through a
//! hart's locked cache, the pinned `_local` operations through the cache whose caller
//! holds a [`CpuLocal`] pin, and giving cached frames back (reclaim on exhaustion,
//! service and park requests, drains). The caches themselves are in `super::super::cache`.

use core::sync::atomic::Ordering;

use super::super::cache::{
    BATCH, CACHE_CAPACITY, HartCache, HartSlot, LOCAL_BUSY, LOCAL_OWNED, LocalSlot,
};
use super::super::error::{AllocError, FrameError};
use super::super::meta::{FrameMeta, FrameUse, STATE_CACHED, head_state};
use super::{FrameAllocator, Span};
use crate::addr::Pfn;
use crate::cpu::CpuLocal;

/// How many spin-loop iterations an allocation that ran out of memory waits for other
/// harts to give back their pinned caches before it reports
/// [`AllocError::OutOfMemory`] (bounded, so a hart that never answers, such as one
/// spinning with interrupts off on a lock the waiter holds, cannot deadlock it).
const RECLAIM_SPINS: usize = 1 << 12;

impl FrameAllocator {
    /// As [`FrameAllocator::alloc`], on behalf of hart `hart`: an order-0 block comes
    /// from that hart's cache (refilled from the buddy lists in batches), taking only
    /// the hart's own lock in the common case. Larger orders go to the buddy lists.
    ///
    /// Errors: as `alloc`, plus [`AllocError::InvalidHart`] if `hart` is not below
    /// [`MAX_HARTS`].
    pub fn alloc_on(&self, hart: usize, order: usize, u: FrameUse) -> Result<Pfn, AllocError> {
        let span = self.check_alloc(order, u)?;
        let slot = self.harts.get(hart).ok_or(AllocError::InvalidHart)?;
        if order != 0 {
            return self.alloc_global(span, order, u, None);
        }
        {
            let mut c = slot.cache.lock();
            if c.len == 0 {
                self.refill(&mut c);
            }
            if let Some(idx) = c.pop() {
                c.used[u.index()] = c.used[u.index()].wrapping_add(1);
                span.meta[idx as usize].prepare(head_state(u, 0));
                return Ok(Pfn(span.base + idx as usize));
            }
        }
        self.alloc_global(span, 0, u, None)
    }

    /// Moves up to [`BATCH`] frames from the buddy lists into an empty cache.
    #[cold]
    fn refill(&self, c: &mut HartCache) {
        let mut b = self.lock_buddy();
        while c.len < BATCH {
            match b.take(0, STATE_CACHED) {
                Some(idx) => c.push(idx),
                None => break,
            }
        }
    }

    /// As [`FrameAllocator::alloc`], from the pinned cache of the calling hart: the
    /// fast path for a kernel that can pin itself to a hart ([`CpuLocal`], interrupts
    /// masked).
    ///
    /// An order-0 block comes from hart h's pinned cache with no atomic read-modify-write
    /// and no lock: two plain loads check that h still holds its cache and that nobody
    /// asked for it back, then a pop and the metadata stores. Refills ([`BATCH`] frames
    /// from the buddy lists) and the first use on a hart take locks; larger orders go to
    /// the buddy lists. A hart id of [`MAX_HARTS`] or more (for example
    /// [`crate::cpu::Unpinned`]) takes the buddy lists for every order.
    ///
    /// When memory runs out the allocation gives its own cache back, drains every
    /// `_on` cache and every pinned cache that is not held, asks the harts that hold
    /// theirs to give them back, and waits a bounded time for them (they answer at their
    /// next pinned operation or [`FrameAllocator::service_local`]) before it retries once
    /// and reports [`AllocError::OutOfMemory`].
    ///
    /// Errors: as [`FrameAllocator::alloc`].
    #[inline]
    pub fn alloc_local<C: CpuLocal>(&self, order: usize, u: FrameUse) -> Result<Pfn, AllocError> {
        self.alloc_local_owned::<C>(order, u, 0)
    }

    /// As [`FrameAllocator::alloc_local`], giving the block's head the owner word
    /// `owner` ([`FrameMeta::owner`](crate::frame::FrameMeta::owner); the reverse map's)
    /// as it is prepared: no second visit to its metadata on the fast path.
    #[inline]
    pub fn alloc_local_owned<C: CpuLocal>(
        &self,
        order: usize,
        u: FrameUse,
        owner: u64,
    ) -> Result<Pfn, AllocError> {
        let span = self.check_alloc(order, u)?;
        let (hart, _pin) = C::pin();
        let Some(slot) = self.local.get(hart) else {
            return self.give_owner(self.alloc_global(span, order, u, None), owner);
        };
        // Only hart `hart` moves its slot out of LOCAL_OWNED, and the pin says we are that
        // hart and alone on it: reading LOCAL_OWNED proves we hold the cache.
        if order == 0
            && slot.owner.load(Ordering::Relaxed) == LOCAL_OWNED
            && !slot.request.load(Ordering::Relaxed)
            && let Some(idx) = slot.pop()
        {
            slot.add_used(u.index(), 1);
            span.meta[idx as usize].prepare_owned(head_state(u, 0), owner);
            return Ok(Pfn(span.base + idx as usize));
        }
        self.give_owner(self.alloc_local_slow(span, slot, order, u), owner)
    }

    /// Sets the owner word of a block a slow path allocated.
    #[cold]
    fn give_owner(&self, r: Result<Pfn, AllocError>, owner: u64) -> Result<Pfn, AllocError> {
        if let Ok(pfn) = r
            && owner != 0
            && let Ok((span, idx)) = self.locate(pfn)
        {
            span.meta[idx as usize].set_owner(owner);
        }
        r
    }

    #[cold]
    fn alloc_local_slow(
        &self,
        span: &Span,
        slot: &LocalSlot,
        order: usize,
        u: FrameUse,
    ) -> Result<Pfn, AllocError> {
        // Answering a request means memory is short: take only the one frame needed, do
        // not refill the cache.
        if self.own(slot) || order != 0 {
            return self.alloc_global(span, order, u, Some(slot));
        }
        if slot.len() == 0 {
            self.refill_local(slot);
        }
        if slot.len() == 0 {
            self.reclaim(Some(slot));
            self.refill_local(slot);
        }
        let idx = slot.pop().ok_or(AllocError::OutOfMemory)?;
        slot.add_used(u.index(), 1);
        span.meta[idx as usize].prepare(head_state(u, 0));
        Ok(Pfn(span.base + idx as usize))
    }

    /// Makes the pinned caller the holder of its slot and answers a pending request to
    /// give the frames back; true if there was one.
    #[cold]
    fn own(&self, slot: &LocalSlot) -> bool {
        if slot.owner.load(Ordering::Relaxed) != LOCAL_OWNED {
            // A drainer or `verify` holds it for a bounded time; nobody else can own it.
            while !slot.try_take(LOCAL_OWNED) {
                core::hint::spin_loop();
            }
        }
        if slot.request.load(Ordering::Relaxed) {
            self.drain_local(slot);
            return true;
        }
        false
    }

    /// Gives every frame of a slot the caller holds back to the buddy lists and clears
    /// its request; returns how many.
    fn drain_local(&self, slot: &LocalSlot) -> usize {
        let n = slot.len();
        if n != 0 {
            let mut b = self.lock_buddy();
            slot.drain_oldest(n, |i| b.give(i, 0));
        }
        slot.request.store(false, Ordering::Release);
        n
    }

    /// Moves up to [`BATCH`] frames from the buddy lists into a held, empty slot.
    #[cold]
    fn refill_local(&self, slot: &LocalSlot) {
        let mut b = self.lock_buddy();
        while slot.len() < BATCH {
            match b.take(0, STATE_CACHED) {
                Some(idx) => slot.push(idx),
                None => break,
            }
        }
    }

    /// As [`FrameAllocator::put`], giving a freed single frame to the calling hart's
    /// pinned cache (see [`FrameAllocator::alloc_local`]). The reference count is still
    /// dropped with an atomic read-modify-write (the block may be shared); the cache push
    /// is plain loads and stores. When the cache is full its oldest [`BATCH`] frames go
    /// back to the buddy lists.
    ///
    /// Errors: as [`FrameAllocator::put`].
    #[inline]
    pub fn put_local<C: CpuLocal>(&self, pfn: Pfn) -> Result<bool, FrameError> {
        self.put_local_with::<C>(pfn, |_, _| {})
    }

    /// As [`FrameAllocator::put_local`], calling `last(meta, index)` after the last
    /// reference is dropped and before the block is freed: the moment to take it off
    /// lists linked through its metadata (the replacement lists), whose link words the
    /// allocator reuses once the block is free.
    #[inline]
    pub fn put_local_with<C: CpuLocal>(
        &self,
        pfn: Pfn,
        last: impl FnOnce(&FrameMeta, u32),
    ) -> Result<bool, FrameError> {
        let Some((span, idx, u, order)) = self.drop_ref(pfn)? else {
            return Ok(false);
        };
        self.release_last::<C>(span, idx, u, order, last);
        Ok(true)
    }

    /// The end of [`put_local_with`](Self::put_local_with) when the last reference
    /// went: out of line, so that the common put of a shared frame saves no registers
    /// for it (exit of a forked child: 20 instructions per page).
    #[inline(never)]
    fn release_last<C: CpuLocal>(
        &self,
        span: &Span,
        idx: u32,
        u: FrameUse,
        order: usize,
        last: impl FnOnce(&FrameMeta, u32),
    ) {
        last(&span.meta[idx as usize], idx);
        self.release_local::<C>(span, idx, u, order);
    }

    /// As [`put_local_with`](Self::put_local_with), but a frame inside an allocated block
    /// counts on the block ([`FrameAllocator::get_in_block`]); `last` and the free
    /// concern the block.
    pub fn put_in_block_local_with<C: CpuLocal>(
        &self,
        pfn: Pfn,
        last: impl FnOnce(&FrameMeta, u32),
    ) -> Result<bool, FrameError> {
        let Some((span, idx, u, order)) = self.drop_ref_in_block(pfn)? else {
            return Ok(false);
        };
        last(&span.meta[idx as usize], idx);
        self.release_local::<C>(span, idx, u, order);
        Ok(true)
    }

    /// As [`FrameAllocator::free`], into the calling hart's pinned cache for a single
    /// frame (see [`FrameAllocator::put_local`]).
    ///
    /// Errors: as [`FrameAllocator::free`].
    #[inline]
    pub fn free_local<C: CpuLocal>(&self, pfn: Pfn, order: usize) -> Result<(), FrameError> {
        let (span, idx, u) = self.claim(pfn, order)?;
        self.release_local::<C>(span, idx, u, order);
        Ok(())
    }

    /// Gives back the block at `idx` whose last reference the caller dropped: a single
    /// frame to the pinned cache of the calling hart, anything else to the buddy lists.
    #[inline]
    fn release_local<C: CpuLocal>(&self, span: &Span, idx: u32, u: FrameUse, order: usize) {
        let (hart, _pin) = C::pin();
        let slot = match self.local.get(hart) {
            Some(slot) if order == 0 => slot,
            _ => return self.release(None, span, idx, u, order),
        };
        if slot.owner.load(Ordering::Relaxed) != LOCAL_OWNED
            || slot.request.load(Ordering::Relaxed)
            || slot.len() == CACHE_CAPACITY
        {
            // A request for the frames means memory is short: this one goes to the
            // buddy lists too.
            if self.make_room(slot) {
                return self.release(None, span, idx, u, order);
            }
        }
        slot.add_used(u.index(), 1usize.wrapping_neg());
        span.meta[idx as usize].set_state(STATE_CACHED);
        slot.push(idx);
    }

    /// Holds the slot, answers a request, and makes room for one frame; true if there
    /// was a request (memory is short, the caller frees to the buddy lists).
    #[cold]
    fn make_room(&self, slot: &LocalSlot) -> bool {
        if self.own(slot) {
            return true;
        }
        if slot.len() == CACHE_CAPACITY {
            let mut b = self.lock_buddy();
            slot.drain_oldest(BATCH, |i| b.give(i, 0));
        }
        false
    }

    /// Answers a pending request to give back the calling hart's pinned cache (see
    /// [`FrameAllocator::alloc_local`]); returns how many frames went back. Cheap when
    /// there is none (two loads): meant for the idle loop or a periodic interrupt, so
    /// that a hart that stops allocating still answers.
    pub fn service_local<C: CpuLocal>(&self) -> usize {
        let (hart, _pin) = C::pin();
        match self.local.get(hart) {
            Some(slot)
                if slot.owner.load(Ordering::Relaxed) == LOCAL_OWNED
                    && slot.request.load(Ordering::Relaxed) =>
            {
                self.drain_local(slot)
            }
            _ => 0,
        }
    }

    /// Lets go of the calling hart's pinned cache without emptying it (before the hart
    /// idles for long or goes offline, or when a host thread acting as a hart ends): its
    /// frames stay cached, and any context that needs them (an allocation out of memory,
    /// [`FrameAllocator::drain_caches`]) may now take them at once instead of asking.
    /// The hart's next pinned operation takes the cache back (one compare-and-swap).
    pub fn park_local<C: CpuLocal>(&self) {
        let (hart, _pin) = C::pin();
        if let Some(slot) = self.local.get(hart)
            && slot.owner.load(Ordering::Relaxed) == LOCAL_OWNED
        {
            slot.release();
        }
    }

    /// Frees memory for an allocation that found the buddy lists empty: the caller's own
    /// pinned cache (`own`, held by the caller), every `_on` cache, every pinned cache
    /// nobody holds; then asks the holders of the others and waits up to
    /// [`RECLAIM_SPINS`] for them.
    #[cold]
    pub(super) fn reclaim(&self, own: Option<&LocalSlot>) {
        let own = own.filter(|s| s.owner.load(Ordering::Relaxed) == LOCAL_OWNED);
        if let Some(s) = own {
            self.drain_local(s);
        }
        self.drain_caches();
        for _ in 0..RECLAIM_SPINS {
            let mut pending = false;
            for s in &self.local {
                if own.is_some_and(|o| core::ptr::eq(o, s)) {
                    // Somebody else out of memory may ask us meanwhile.
                    if s.request.load(Ordering::Relaxed) {
                        self.drain_local(s);
                    }
                    continue;
                }
                if s.request.load(Ordering::Acquire) && s.len() != 0 && !self.drain_free_slot(s) {
                    pending = true;
                }
            }
            if !pending {
                return;
            }
            core::hint::spin_loop();
        }
    }

    /// Drains a pinned cache nobody holds (taking it for the time); false if it is held.
    fn drain_free_slot(&self, slot: &LocalSlot) -> bool {
        if !slot.try_take(LOCAL_BUSY) {
            return false;
        }
        self.drain_local(slot);
        slot.release();
        true
    }

    /// Gives the oldest [`BATCH`] frames of a full cache back to the buddy lists.
    #[cold]
    pub(super) fn drain_oldest(&self, c: &mut HartCache) {
        let mut b = self.lock_buddy();
        c.drain_oldest(BATCH, |i| b.give(i, 0));
    }

    /// As [`FrameAllocator::free`], on behalf of hart `hart`: a single frame goes to that
    /// hart's cache (whose oldest [`BATCH`] frames go back to the buddy lists when it is
    /// full). Also fails with [`FrameError::InvalidHart`].
    pub fn free_on(&self, hart: usize, pfn: Pfn, order: usize) -> Result<(), FrameError> {
        let slot = self.harts.get(hart).ok_or(FrameError::InvalidHart)?;
        let (span, idx, u) = self.claim(pfn, order)?;
        self.release(Some(slot), span, idx, u, order);
        Ok(())
    }

    /// As [`FrameAllocator::put`], freeing a single frame to hart `hart`'s cache. Also
    /// fails with [`FrameError::InvalidHart`].
    pub fn put_on(&self, hart: usize, pfn: Pfn) -> Result<bool, FrameError> {
        let slot = self.harts.get(hart).ok_or(FrameError::InvalidHart)?;
        self.put_inner(Some(slot), pfn)
    }

    /// The hart slot for a hart id that a [`super::Frame`] recorded.
    pub(in crate::frame) fn slot(&self, hart: usize) -> Option<&HartSlot> {
        self.harts.get(hart)
    }

    /// Gives every frame in hart `hart`'s caches back to the buddy lists (for example
    /// when the hart goes offline); returns how many. Its pinned cache is drained only if
    /// the hart does not hold it (see [`FrameAllocator::park_local`]); if it does, the
    /// hart is asked to give it back at its next pinned operation.
    pub fn drain_hart(&self, hart: usize) -> Result<usize, FrameError> {
        let slot = self.harts.get(hart).ok_or(FrameError::InvalidHart)?;
        Ok(self.drain_slot(slot) + self.drain_pinned(&self.local[hart]))
    }

    /// Drains a pinned cache if nobody holds it, else asks its hart to; returns how many
    /// frames went back now.
    fn drain_pinned(&self, slot: &LocalSlot) -> usize {
        if slot.len() == 0 {
            return 0;
        }
        if slot.try_take(LOCAL_BUSY) {
            let n = self.drain_local(slot);
            slot.release();
            n
        } else {
            slot.request.store(true, Ordering::Release);
            0
        }
    }

    fn drain_slot(&self, slot: &HartSlot) -> usize {
        let mut c = slot.cache.lock();
        let n = c.len;
        if n != 0 {
            let mut b = self.lock_buddy();
            c.drain_oldest(n, |i| b.give(i, 0));
        }
        n
    }

    /// Gives every hart cache back to the buddy lists (fully coalescing the free
    /// memory); returns how many frames moved. Pinned caches that their harts hold (see
    /// [`FrameAllocator::alloc_local`]) cannot be taken from outside: their harts are
    /// asked to give them back at their next pinned operation, and their frames stay
    /// counted as cached until then. Allocation does this by itself (and waits a bounded
    /// time for the answers) before it reports out of memory.
    pub fn drain_caches(&self) -> usize {
        let on: usize = self.harts.iter().map(|s| self.drain_slot(s)).sum();
        on + self
            .local
            .iter()
            .map(|s| self.drain_pinned(s))
            .sum::<usize>()
    }
}
