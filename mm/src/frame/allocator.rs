//! [`FrameAllocator`]: the buddy core, the hart caches and the metadata array together.

use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicUsize, Ordering};

use super::buddy::Buddy;
use super::cache::{
    BATCH, CACHE_CAPACITY, HartCache, HartSlot, LOCAL_BUSY, LOCAL_OWNED, LocalSlot,
};
use super::error::{AllocError, Corruption, FrameError, InitError};
use super::meta::{
    FrameMeta, FrameUse, MAX_ORDER, NO_FRAME, STATE_CACHED, STATE_RESERVED, STATE_TAIL, State,
    head_state,
};
use super::stats::Stats;
use crate::addr::{PAGE_SHIFT, PAGE_SIZE, Pfn, PhysRange, align_down, align_up};
use crate::heap::CpuLocal;
use crate::layout::MAX_HARTS;

/// How many spin-loop iterations an allocation that ran out of memory waits for other
/// harts to give back their pinned caches before it reports
/// [`AllocError::OutOfMemory`] (bounded, so a hart that never answers, such as one
/// spinning with interrupts off on a lock the waiter holds, cannot deadlock it).
const RECLAIM_SPINS: usize = 1 << 12;

/// The buddy lock held; publishes the list count when it lets go.
struct BuddyGuard<'a> {
    guard: spin::MutexGuard<'a, Buddy>,
    on_lists: &'a AtomicUsize,
}

impl core::ops::Deref for BuddyGuard<'_> {
    type Target = Buddy;
    #[inline]
    fn deref(&self) -> &Buddy {
        &self.guard
    }
}

impl core::ops::DerefMut for BuddyGuard<'_> {
    #[inline]
    fn deref_mut(&mut self) -> &mut Buddy {
        &mut self.guard
    }
}

impl Drop for BuddyGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        // Still under the lock (the guard field drops after this): the stores of
        // successive holders are ordered by it.
        self.on_lists
            .store(self.guard.free_frames, Ordering::Relaxed);
    }
}

/// The managed span, fixed by `init`.
struct Span {
    /// One entry per frame from `base` up.
    meta: &'static [FrameMeta],
    /// Frame number of `meta[0]`.
    base: usize,
}

/// The physical frame allocator: a buddy allocator of blocks of 2^0 ..= 2^[`MAX_ORDER`]
/// frames over any set of free physical ranges, with per-frame metadata and per-hart
/// caches of single frames. All methods take `&self`; it is meant to be a `static`.
///
/// Lifecycle: [`FrameAllocator::new`] (const), then [`FrameAllocator::init`] once with the
/// free RAM ranges and memory for the metadata array, then any number of concurrent
/// allocations and frees from any hart. Before `init`, allocations fail with
/// [`AllocError::Uninitialised`] and frame operations with [`FrameError::OutOfRange`].
///
/// Allocation returns a [`Pfn`] whose block has reference count 1 and the requested
/// [`FrameUse`]; [`FrameAllocator::free`] gives back a block its caller owns alone,
/// [`FrameAllocator::get`] / [`FrameAllocator::put`] share one and give it back when the
/// last reference goes. The `_on(hart, ...)` variants use that hart's cache for order-0
/// blocks; the others go straight to the buddy lock. [`super::Frame`] wraps a reference
/// in a handle that puts it on drop.
///
/// The allocator never reads or writes the frames themselves.
pub struct FrameAllocator {
    span: spin::Once<Span>,
    buddy: spin::Mutex<Buddy>,
    /// Frames on the buddy lists, stored by every holder of the buddy lock as it lets go
    /// (see [`FrameAllocator::free_on_lists`]).
    on_lists: AtomicUsize,
    harts: [HartSlot; MAX_HARTS],
    /// Pinned per-hart caches for the `_local` operations.
    local: [LocalSlot; MAX_HARTS],
    /// Frames moved between uses by `set_use`, by use; wrapping deltas.
    retyped: [AtomicUsize; FrameUse::COUNT],
}

impl Default for FrameAllocator {
    fn default() -> Self {
        Self::new()
    }
}

/// The free ranges as frame-number ranges: each trimmed inward to whole frames; empty
/// ones dropped.
fn frame_ranges(ranges: &[PhysRange]) -> impl Iterator<Item = (usize, usize)> + '_ {
    ranges.iter().filter_map(|r| {
        let start = align_up(r.start.0, PAGE_SIZE)? >> PAGE_SHIFT;
        let end = align_down(r.end.0, PAGE_SIZE) >> PAGE_SHIFT;
        (start < end).then_some((start, end))
    })
}

/// Lowest and highest (exclusive) frame of the ranges; `(0, 0)` when there are none.
fn span_of(ranges: &[PhysRange]) -> (usize, usize) {
    frame_ranges(ranges)
        .fold(None, |acc: Option<(usize, usize)>, (s, e)| match acc {
            None => Some((s, e)),
            Some((lo, hi)) => Some((lo.min(s), hi.max(e))),
        })
        .unwrap_or((0, 0))
}

impl FrameAllocator {
    /// Bytes of alignment the metadata memory needs (32: one entry never straddles a
    /// cache line).
    pub const METADATA_ALIGN: usize = core::mem::align_of::<FrameMeta>();

    /// An uninitialised allocator (usable in a `static`).
    pub const fn new() -> FrameAllocator {
        FrameAllocator {
            span: spin::Once::new(),
            buddy: spin::Mutex::new(Buddy::new()),
            on_lists: AtomicUsize::new(0),
            harts: [const { HartSlot::new() }; MAX_HARTS],
            local: [const { LocalSlot::new() }; MAX_HARTS],
            retyped: [const { AtomicUsize::new(0) }; FrameUse::COUNT],
        }
    }

    /// Number of [`FrameMeta`] entries `init` needs for these free ranges: one per frame
    /// from the lowest free frame to the highest, gaps included. Ranges are trimmed
    /// inward to whole 4 KiB frames.
    pub fn metadata_len(ranges: &[PhysRange]) -> usize {
        let (lo, hi) = span_of(ranges);
        hi - lo
    }

    /// Bytes of metadata memory `init` needs for these free ranges
    /// ([`FrameAllocator::metadata_len`] entries of 32 bytes, aligned to
    /// [`FrameAllocator::METADATA_ALIGN`]). The kernel carves this out of RAM and passes
    /// the ranges minus the carved part; the result can only shrink by doing so.
    pub fn metadata_bytes(ranges: &[PhysRange]) -> usize {
        Self::metadata_len(ranges).saturating_mul(core::mem::size_of::<FrameMeta>())
    }

    /// Takes ownership of the free physical `ranges` (RAM minus reserved memory, minus
    /// the kernel image, minus `meta` itself) and of `meta`, at least
    /// [`FrameAllocator::metadata_len`] entries, which it initialises. Ranges may come in
    /// any order, touch, and leave gaps; they may not overlap. Partial frames at the ends
    /// of a range are not used.
    ///
    /// Runs in time linear in the span. Fails, leaving the allocator uninitialised, if
    /// called twice, if `meta` is too small, if ranges overlap, or if the span exceeds
    /// 2^32 - 1 frames.
    ///
    /// The kernel makes `meta` from the RAM it carved out ([`FrameAllocator::metadata_bytes`]
    /// bytes at a [`FrameAllocator::METADATA_ALIGN`]-aligned physical address `pa`) with
    /// `core::slice::from_raw_parts_mut(phys_to_virt(pa).as_usize() as *mut _, len)`.
    /// That `unsafe` call is sound when the carved range is RAM mapped by the direct map,
    /// aligned, excluded from `ranges`, and used by nothing else for the rest of the
    /// kernel's life; its contents may be anything (`MaybeUninit`).
    pub fn init(
        &self,
        ranges: &[PhysRange],
        meta: &'static mut [MaybeUninit<FrameMeta>],
    ) -> Result<(), InitError> {
        let mut buddy = self.lock_buddy();
        if self.span.get().is_some() {
            return Err(InitError::AlreadyInitialised);
        }
        let (lo, hi) = span_of(ranges);
        let len = hi - lo;
        if len >= NO_FRAME as usize {
            return Err(InitError::SpanTooLarge);
        }
        if meta.len() < len {
            return Err(InitError::MetadataTooSmall {
                needed: len,
                given: meta.len(),
            });
        }
        let (meta, _) = meta.split_at_mut(len);
        for slot in meta.iter_mut() {
            slot.write(FrameMeta::reserved());
        }
        // SAFETY: every element of `meta` was initialised just above, and
        // `MaybeUninit<FrameMeta>` has the layout of `FrameMeta`; the exclusive 'static
        // borrow moves into the allocator, which only ever shares it.
        let meta: &'static [FrameMeta] =
            unsafe { &*(meta as *mut [MaybeUninit<FrameMeta>] as *const [FrameMeta]) };

        let mut total = 0;
        for (s, e) in frame_ranges(ranges) {
            for p in s..e {
                let m = &meta[p - lo];
                if m.state_word() != STATE_RESERVED {
                    return Err(InitError::Overlap(Pfn(p)));
                }
                m.set_state(STATE_TAIL);
            }
            total += e - s;
        }
        buddy.meta = meta;
        buddy.base = lo;
        buddy.total = total;
        for (s, e) in frame_ranges(ranges) {
            let mut p = s;
            while p < e {
                let align = if p == 0 {
                    MAX_ORDER
                } else {
                    (p.trailing_zeros() as usize).min(MAX_ORDER)
                };
                let order = align.min((e - p).ilog2() as usize);
                buddy.give((p - lo) as u32, order);
                p += 1 << order;
            }
        }
        self.span.call_once(|| Span { meta, base: lo });
        Ok(())
    }

    /// The buddy lock; letting go of it publishes the list count to
    /// [`FrameAllocator::free_on_lists`].
    #[inline]
    fn lock_buddy(&self) -> BuddyGuard<'_> {
        BuddyGuard {
            guard: self.buddy.lock(),
            on_lists: &self.on_lists,
        }
    }

    /// Frames on the buddy lists: free memory without taking any lock (one relaxed load),
    /// for a caller that only needs to know whether memory is plentiful. A lower bound of
    /// [`Stats::free`]: the frames in hart caches (at most [`super::CACHE_CAPACITY`] per
    /// cache) are free too but not counted, and the figure is as of the last release of
    /// the buddy lock.
    #[inline]
    pub fn free_on_lists(&self) -> usize {
        self.on_lists.load(Ordering::Relaxed)
    }

    #[inline]
    fn span(&self) -> Option<&Span> {
        self.span.get()
    }

    /// The span and the index of `pfn` in it.
    #[inline]
    fn locate(&self, pfn: Pfn) -> Result<(&Span, u32), FrameError> {
        let span = self.span().ok_or(FrameError::OutOfRange)?;
        match pfn.0.checked_sub(span.base) {
            Some(i) if i < span.meta.len() => Ok((span, i as u32)),
            _ => Err(FrameError::OutOfRange),
        }
    }

    #[inline]
    fn check_alloc(&self, order: usize, u: FrameUse) -> Result<&Span, AllocError> {
        if order > MAX_ORDER {
            return Err(AllocError::InvalidOrder);
        }
        if !u.is_allocatable() {
            return Err(AllocError::InvalidUse);
        }
        self.span().ok_or(AllocError::Uninitialised)
    }

    /// Takes a block from the buddy lists and counts it for `u`.
    #[inline]
    fn take_global(&self, order: usize, u: FrameUse) -> Option<u32> {
        let mut b = self.lock_buddy();
        let idx = b.take(order, head_state(u, order))?;
        b.used[u.index()] = b.used[u.index()].wrapping_add(1 << order);
        Some(idx)
    }

    /// Allocates a block of 2^`order` frames, aligned to its size, for use `u`, from the
    /// buddy lists (taking the buddy lock). If none is free, drains every hart cache
    /// and tries once more. The block has reference count 1, mapping count 0, no flags
    /// and owner word 0.
    ///
    /// Errors: [`AllocError::OutOfMemory`], `InvalidOrder` (order > [`MAX_ORDER`]),
    /// `InvalidUse` (`u` not allocatable), `Uninitialised`.
    pub fn alloc(&self, order: usize, u: FrameUse) -> Result<Pfn, AllocError> {
        let span = self.check_alloc(order, u)?;
        self.alloc_global(span, order, u, None)
    }

    /// Allocation from the buddy lists; `own` is the caller's pinned cache, if it is
    /// pinned (drained too when memory runs out).
    fn alloc_global(
        &self,
        span: &Span,
        order: usize,
        u: FrameUse,
        own: Option<&LocalSlot>,
    ) -> Result<Pfn, AllocError> {
        let idx = match self.take_global(order, u) {
            Some(idx) => idx,
            None => {
                self.reclaim(own);
                self.take_global(order, u).ok_or(AllocError::OutOfMemory)?
            }
        };
        span.meta[idx as usize].prepare(head_state(u, order));
        Ok(Pfn(span.base + idx as usize))
    }

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
    /// [`crate::heap::Unpinned`]) takes the buddy lists for every order.
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
    /// `owner` ([`FrameMeta::owner`]; the reverse map's) as it is prepared: no second
    /// visit to its metadata on the fast path.
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
        let Some((span, idx, u, order)) = self.drop_ref(pfn)? else {
            return Ok(false);
        };
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
    fn reclaim(&self, own: Option<&LocalSlot>) {
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

    /// The use and order of an allocated head, or the error for anything else.
    #[inline]
    fn allocated_head(&self, span: &Span, idx: u32) -> Result<(FrameUse, usize), FrameError> {
        match span.meta[idx as usize].state() {
            State::Allocated(u, k) => Ok((u, k)),
            other => Err(self.not_allocated(span, idx, other)),
        }
    }

    /// Why a frame in state `state` is not an allocated head.
    #[cold]
    fn not_allocated(&self, span: &Span, idx: u32, state: State) -> FrameError {
        match state {
            State::Reserved => FrameError::Reserved,
            State::Tail => {
                let head = self.block_of(Pfn(span.base + idx as usize));
                match head.and_then(|(h, _)| self.meta(h)).map(FrameMeta::state) {
                    Some(State::Allocated(..)) => FrameError::NotHead,
                    _ => FrameError::NotAllocated,
                }
            }
            State::Allocated(..) | State::FreeHead(_) | State::Cached => FrameError::NotAllocated,
        }
    }

    /// Checks `pfn` heads an allocated block of `order` and takes its only reference;
    /// returns where it is and its use.
    #[inline]
    fn claim(&self, pfn: Pfn, order: usize) -> Result<(&Span, u32, FrameUse), FrameError> {
        if order > MAX_ORDER {
            return Err(FrameError::InvalidOrder);
        }
        let (span, idx) = self.locate(pfn)?;
        let (u, k) = self.allocated_head(span, idx)?;
        if k != order {
            return Err(FrameError::WrongOrder { allocated: k });
        }
        span.meta[idx as usize]
            .claim_sole()
            .map_err(|refs| match refs {
                0 => FrameError::NotAllocated,
                refs => FrameError::Shared { refs },
            })?;
        // With the only reference taken, nobody else may change the use any more.
        Ok((span, idx, u))
    }

    /// Gives back the allocated block at `idx` (use `u`, `order`) whose last reference
    /// the caller just dropped: to `slot`'s cache for a single frame, else to the buddy
    /// lists.
    #[inline]
    fn release(&self, slot: Option<&HartSlot>, span: &Span, idx: u32, u: FrameUse, order: usize) {
        if let (0, Some(slot)) = (order, slot) {
            let mut c = slot.cache.lock();
            c.used[u.index()] = c.used[u.index()].wrapping_sub(1);
            if c.len == CACHE_CAPACITY {
                self.drain_oldest(&mut c);
            }
            span.meta[idx as usize].set_state(STATE_CACHED);
            c.push(idx);
            return;
        }
        let mut b = self.lock_buddy();
        b.used[u.index()] = b.used[u.index()].wrapping_sub(1 << order);
        b.give(idx, order);
    }

    /// Gives the oldest [`BATCH`] frames of a full cache back to the buddy lists.
    #[cold]
    fn drain_oldest(&self, c: &mut HartCache) {
        let mut b = self.lock_buddy();
        c.drain_oldest(BATCH, |i| b.give(i, 0));
    }

    /// Frees the block of 2^`order` frames at `pfn`, which the caller holds the only
    /// reference to, into the buddy lists (merging it with free buddies).
    ///
    /// Errors (nothing changes): [`FrameError::NotAllocated`] for a free block (double
    /// free), `NotHead` for a frame inside a larger block, `WrongOrder`, `Shared` when
    /// other references exist (use [`FrameAllocator::put`]), `Reserved`, `OutOfRange`,
    /// `InvalidOrder`.
    pub fn free(&self, pfn: Pfn, order: usize) -> Result<(), FrameError> {
        let (span, idx, u) = self.claim(pfn, order)?;
        self.release(None, span, idx, u, order);
        Ok(())
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

    /// Adds a reference to the allocated block headed by `pfn` (for sharing, e.g. a
    /// copy-on-write mapping); returns the new count. The caller must already hold one.
    ///
    /// Errors: `NotAllocated`, `NotHead`, `Reserved`, `OutOfRange`, `RefOverflow`.
    #[inline]
    pub fn get(&self, pfn: Pfn) -> Result<u32, FrameError> {
        let (span, idx) = self.locate(pfn)?;
        self.allocated_head(span, idx)?;
        span.meta[idx as usize].inc_ref()
    }

    /// Drops a reference to the allocated block headed by `pfn`; when it was the last,
    /// frees the block (to the buddy lists) and returns `Ok(true)`.
    ///
    /// Errors: `NotAllocated` (including a put on a block whose count is already 0),
    /// `NotHead`, `Reserved`, `OutOfRange`.
    pub fn put(&self, pfn: Pfn) -> Result<bool, FrameError> {
        self.put_inner(None, pfn)
    }

    /// As [`FrameAllocator::put`], freeing a single frame to hart `hart`'s cache. Also
    /// fails with [`FrameError::InvalidHart`].
    pub fn put_on(&self, hart: usize, pfn: Pfn) -> Result<bool, FrameError> {
        let slot = self.harts.get(hart).ok_or(FrameError::InvalidHart)?;
        self.put_inner(Some(slot), pfn)
    }

    pub(super) fn put_inner(&self, slot: Option<&HartSlot>, pfn: Pfn) -> Result<bool, FrameError> {
        let Some((span, idx, u, order)) = self.drop_ref(pfn)? else {
            return Ok(false);
        };
        self.release(slot, span, idx, u, order);
        Ok(true)
    }

    /// Drops one reference to the allocated head at `pfn`. When it was the last, returns
    /// the block (its span, index, use and order) for the caller to release.
    #[inline]
    fn drop_ref(&self, pfn: Pfn) -> Result<Option<(&Span, u32, FrameUse, usize)>, FrameError> {
        let (span, idx) = self.locate(pfn)?;
        self.allocated_head(span, idx)?;
        let m = &span.meta[idx as usize];
        if !m.dec_ref()? {
            return Ok(None);
        }
        // Read the state again: until the count reached 0 another holder could change
        // the use. Now nobody can, and it is still an allocated head.
        match m.state() {
            State::Allocated(u, order) => Ok(Some((span, idx, u, order))),
            other => Err(self.not_allocated(span, idx, other)),
        }
    }

    /// The hart slot for a hart id that a [`super::Frame`] recorded.
    pub(super) fn slot(&self, hart: usize) -> Option<&HartSlot> {
        self.harts.get(hart)
    }

    /// Changes the use of the allocated block headed by `pfn` to `u` and returns the
    /// previous use; the accounting moves with it. The caller must hold a reference.
    ///
    /// Errors: `InvalidUse` (`u` not allocatable), `NotAllocated`, `NotHead`,
    /// `Reserved`, `OutOfRange`.
    pub fn set_use(&self, pfn: Pfn, u: FrameUse) -> Result<FrameUse, FrameError> {
        if !u.is_allocatable() {
            return Err(FrameError::InvalidUse);
        }
        let (span, idx) = self.locate(pfn)?;
        let m = &span.meta[idx as usize];
        loop {
            let word = m.state_word();
            let State::Allocated(old, order) = State::decode(word) else {
                // Not an allocated head: report why (or retry if it just became one).
                self.allocated_head(span, idx)?;
                continue;
            };
            if m.refcount() == 0 {
                return Err(FrameError::NotAllocated);
            }
            if m.swap_state(word, head_state(u, order)) {
                self.retyped[old.index()].fetch_sub(1 << order, Ordering::Relaxed);
                self.retyped[u.index()].fetch_add(1 << order, Ordering::Relaxed);
                return Ok(old);
            }
        }
    }

    /// The metadata of frame `pfn`, or `None` outside the managed span.
    #[inline]
    pub fn meta(&self, pfn: Pfn) -> Option<&'static FrameMeta> {
        let (span, idx) = self.locate(pfn).ok()?;
        Some(&span.meta[idx as usize])
    }

    /// Index of `pfn` in the metadata array (the form of [`FrameMeta::lru_links`]).
    #[inline]
    pub fn index_of(&self, pfn: Pfn) -> Option<u32> {
        self.locate(pfn).ok().map(|(_, i)| i)
    }

    /// The frame at metadata index `index`, if it is inside the span.
    #[inline]
    pub fn pfn_at(&self, index: u32) -> Option<Pfn> {
        let span = self.span()?;
        ((index as usize) < span.meta.len()).then(|| Pfn(span.base + index as usize))
    }

    /// The block (free or allocated) containing `pfn`: its first frame and order. `None`
    /// for a reserved frame or outside the span. O([`MAX_ORDER`]).
    pub fn block_of(&self, pfn: Pfn) -> Option<(Pfn, usize)> {
        let (span, _) = self.locate(pfn).ok()?;
        for k in 0..=MAX_ORDER {
            let head = pfn.0 & !((1 << k) - 1);
            let h = head.checked_sub(span.base)?;
            match span.meta[h].state() {
                State::FreeHead(o) | State::Allocated(_, o) if o >= k => {
                    return Some((Pfn(head), o));
                }
                State::Cached if k == 0 => return Some((pfn, 0)),
                State::Reserved if k == 0 => return None,
                _ => {}
            }
        }
        None
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

    /// A snapshot of the counters. Takes each hart lock in turn and the buddy lock; reads
    /// the pinned caches without stopping their harts (each exact when its hart is not in
    /// a pinned operation at that moment).
    pub fn stats(&self) -> Stats {
        let mut s = Stats::default();
        let mut used = [0usize; FrameUse::COUNT];
        for slot in &self.harts {
            let c = slot.cache.lock();
            s.cached += c.len;
            for (u, d) in used.iter_mut().zip(c.used) {
                *u = u.wrapping_add(d);
            }
        }
        for slot in &self.local {
            s.cached += slot.len();
            for (u, d) in used.iter_mut().zip(&slot.used) {
                *u = u.wrapping_add(d.load(Ordering::Relaxed));
            }
        }
        for (u, d) in used.iter_mut().zip(&self.retyped) {
            *u = u.wrapping_add(d.load(Ordering::Relaxed));
        }
        let b = self.lock_buddy();
        for (u, d) in used.iter_mut().zip(b.used) {
            *u = u.wrapping_add(d);
        }
        s.total = b.total;
        s.reserved = b.meta.len() - b.total;
        s.free = b.free_frames + s.cached;
        s.used = s.total.saturating_sub(s.free);
        s.used_by_use = used;
        s.free_blocks = b.free_blocks;
        s.peak_used = b.peak_out;
        s
    }

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
