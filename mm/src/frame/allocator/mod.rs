//! [`FrameAllocator`]: the buddy core, the hart caches and the metadata array together.
//!
//! | file | what |
//! |---|---|
//! | `mod.rs` | the allocator, `init`, the buddy-lock paths (`alloc`, `free`, `get`, `put`), metadata queries, statistics |
//! | [`hart_caches`] | the per-hart caches: the `_on(hart, ..)` and pinned `_local` paths, reclaiming and draining them |
//! | [`verify`] | [`FrameAllocator::verify`]: every structural invariant, checked |

use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicUsize, Ordering};

mod hart_caches;
mod verify;

use super::buddy::Buddy;
use super::cache::{CACHE_CAPACITY, HartSlot, LocalSlot};
use super::error::{AllocError, FrameError, InitError};
use super::meta::{
    FrameMeta, FrameUse, MAX_ORDER, NO_FRAME, STATE_CACHED, STATE_RESERVED, STATE_TAIL, State,
    head_state,
};
use super::stats::Stats;
use crate::addr::{PAGE_SHIFT, PAGE_SIZE, Pfn, PhysRange, align_down, align_up};
use crate::layout::MAX_HARTS;

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

    pub(super) fn put_inner(&self, slot: Option<&HartSlot>, pfn: Pfn) -> Result<bool, FrameError> {
        let Some((span, idx, u, order)) = self.drop_ref(pfn)? else {
            return Ok(false);
        };
        self.release(slot, span, idx, u, order);
        Ok(true)
    }

    /// Drops a reference to the allocated block headed by `pfn` unless it is the last:
    /// `Ok(true)` if it did, `Ok(false)` if the caller holds the only one (nothing
    /// changed; the caller frees the block its own way when done with it).
    ///
    /// Errors: `NotAllocated`, `NotHead`, `Reserved`, `OutOfRange`.
    pub fn put_unless_last(&self, pfn: Pfn) -> Result<bool, FrameError> {
        let (span, idx) = self.locate(pfn)?;
        self.allocated_head(span, idx)?;
        Ok(span.meta[idx as usize].dec_ref_unless_last())
    }

    /// As [`get`](Self::get), but a frame inside an allocated block counts on the block:
    /// the reference is the block's (a user huge page whose 4 KiB pages are mapped one
    /// by one). The same cost as `get` for a head; the way to the head is out of line.
    #[inline(always)]
    pub fn get_in_block(&self, pfn: Pfn) -> Result<u32, FrameError> {
        let (span, idx) = self.locate(pfn)?;
        if self.allocated_head(span, idx).is_err() {
            return self.get_tail(pfn);
        }
        span.meta[idx as usize].inc_ref()
    }

    /// [`get_in_block`](Self::get_in_block) of a frame that heads no allocated block.
    #[cold]
    #[inline(never)]
    fn get_tail(&self, pfn: Pfn) -> Result<u32, FrameError> {
        let (span, idx) = self.locate(pfn)?;
        let head = self.head_of_block(span, idx)?;
        span.meta[head as usize].inc_ref()
    }

    /// The head of the allocated block that frame `idx`, which heads none, lies in.
    #[cold]
    #[inline(never)]
    fn head_of_block(&self, span: &Span, idx: u32) -> Result<u32, FrameError> {
        let state = span.meta[idx as usize].state();
        if state == State::Tail
            && let Some((head, _)) = self.block_of(Pfn(span.base + idx as usize))
            && let Some(h) = head.0.checked_sub(span.base)
            && matches!(span.meta[h].state(), State::Allocated(..))
        {
            return Ok(h as u32);
        }
        Err(self.not_allocated(span, idx, state))
    }

    /// Drops one reference to the allocated head at `pfn`. When it was the last, returns
    /// the block (its span, index, use and order) for the caller to release.
    #[inline]
    fn drop_ref(&self, pfn: Pfn) -> Result<Option<(&Span, u32, FrameUse, usize)>, FrameError> {
        let (span, idx) = self.locate(pfn)?;
        self.allocated_head(span, idx)?;
        self.drop_ref_at(span, idx)
    }

    /// As [`drop_ref`](Self::drop_ref), for `pfn` or the allocated block it lies in (as
    /// [`get_in_block`](Self::get_in_block) counts).
    fn drop_ref_in_block(
        &self,
        pfn: Pfn,
    ) -> Result<Option<(&Span, u32, FrameUse, usize)>, FrameError> {
        let (span, mut idx) = self.locate(pfn)?;
        if self.allocated_head(span, idx).is_err() {
            idx = self.head_of_block(span, idx)?;
        }
        self.drop_ref_at(span, idx)
    }

    /// Drops one reference to the allocated head at `idx` of `span`; the block if it was
    /// the last.
    #[inline]
    fn drop_ref_at<'s>(
        &self,
        span: &'s Span,
        idx: u32,
    ) -> Result<Option<(&'s Span, u32, FrameUse, usize)>, FrameError> {
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

    /// Turns the allocated block of 2^k frames headed by `pfn`, whose only reference the
    /// caller holds, into 2^k allocated single frames of use `new_use`, each with one
    /// reference and owner word `owner(i)` for its index `i` in the block (a user huge
    /// page whose 2 MiB mapping became 512 4 KiB ones). Each frame is then freed on its
    /// own; the accounting moves the frames to `new_use`.
    ///
    /// Errors (nothing changes): `InvalidUse`, `Shared` when other references exist, `NotAllocated`,
    /// `NotHead`, `Reserved`, `OutOfRange`.
    pub fn split_block(
        &self,
        pfn: Pfn,
        new_use: FrameUse,
        owner: impl Fn(usize) -> u64,
    ) -> Result<(), FrameError> {
        if !new_use.is_allocatable() {
            return Err(FrameError::InvalidUse);
        }
        let (span, idx) = self.locate(pfn)?;
        let (old_use, order) = self.allocated_head(span, idx)?;
        let u = new_use;
        let head = &span.meta[idx as usize];
        match head.refcount() {
            1 => {}
            0 => return Err(FrameError::NotAllocated),
            refs => return Err(FrameError::Shared { refs }),
        }
        // Tails first: while the head still says "block", nobody treats them as frames.
        for i in (1..1usize << order).rev() {
            span.meta[idx as usize + i].prepare_owned(head_state(u, 0), owner(i));
        }
        head.set_owner(owner(0));
        head.set_state(head_state(u, 0));
        self.retyped[old_use.index()].fetch_sub(1 << order, Ordering::Relaxed);
        self.retyped[u.index()].fetch_add(1 << order, Ordering::Relaxed);
        Ok(())
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

    /// The metadata of the frame at metadata index `index` (the form of
    /// [`FrameMeta::lru_links`]), if it is inside the span: one lookup where
    /// [`pfn_at`](Self::pfn_at) then [`meta`](Self::meta) take two.
    #[inline]
    pub fn meta_at(&self, index: u32) -> Option<&'static FrameMeta> {
        self.span()?.meta.get(index as usize)
    }

    /// Entries of the metadata array: every index [`FrameAllocator::index_of`] gives is
    /// below it (0 before `init`).
    pub fn span_len(&self) -> usize {
        self.span().map_or(0, |s| s.meta.len())
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
}
