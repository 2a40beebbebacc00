//! The kernel's frame allocator: the `pagoda-mm` buddy allocator over the RAM the device
//! tree described, with its metadata array carved out of that RAM; and the frames of
//! every page table the kernel builds (its own, in [`super::kspace`], and each process's,
//! in [`super::uspace`]), kept zeroed.
//!
//! # Page-table frames
//!
//! Table pages cross `PagingMemory` all zero both ways: the table code clears every
//! entry of a table it frees. So a freed table page goes onto this hart's stack in
//! [`TABLE_POOL`] as it is ([`free_table`]), and the next table this hart needs is taken
//! from there without zeroing 4 KiB ([`alloc_table`]); only a fresh frame is zeroed. A
//! pooled page stays an allocated frame of use `PageTable` (the accounting shows it where
//! it is), and goes back to the buddy allocator whenever that memory could be wanted
//! elsewhere:
//! - when its hart goes idle (the scheduler loop, with the heap trim and the frame-cache
//!   park): [`drain_local_tables`];
//! - when user memory reaches the kernel's reserve ([`user_may_allocate`]), or a table
//!   page finds no frame: [`drain_tables`], from whichever hart runs short;
//! - before memory statistics are reported (`/proc/meminfo`) or a leak check takes its
//!   baseline ([`drain_caches`]): [`drain_tables`].
//!
//! The page-table code reaches these pages through `PagingMemory`: [`KernelMemory`] for
//! the kernel table, [`UserTableMemory`] (which also counts them) for each user table.

use core::cell::Cell;
use core::mem::MaybeUninit;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicUsize, Ordering};

use arrayvec::ArrayVec;
use pagoda_mm::addr::{PAGE_SIZE, Pfn, PhysAddr, PhysRange, align_down};
use pagoda_mm::frame::{AllocError, FrameAllocator, FrameMeta, FrameUse, Stats};
use pagoda_mm::layout::{MAX_HARTS, phys_to_virt};
use pagoda_mm::paging::{PagingMemory, Pte, TablePage, TablePool};

use super::machine::zero_page;
use crate::boot::BootInfo;
use crate::boot::info::MAX_FREE_RANGES;
use crate::smp::ThisHart;

/// Every physical frame the kernel may hand out.
pub static FRAMES: FrameAllocator = FrameAllocator::new();

/// Why the frame allocator could not start.
#[derive(Debug)]
pub enum InitError {
    /// No free range can hold the metadata array.
    NoRoomForMetadata(usize),
    /// The allocator refused the ranges.
    Allocator(pagoda_mm::frame::InitError),
}

impl core::fmt::Display for InitError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            InitError::NoRoomForMetadata(n) => {
                write!(
                    f,
                    "no free RAM range can hold the {n}-byte frame metadata array"
                )
            }
            InitError::Allocator(e) => write!(f, "frame allocator: {e:?}"),
        }
    }
}

/// Hands the free RAM of `info` to [`FRAMES`]; the metadata array takes the top of the
/// largest free range.
pub fn init(info: &BootInfo) -> Result<(), InitError> {
    let mut ranges: ArrayVec<PhysRange, MAX_FREE_RANGES> =
        info.free_ranges().iter().map(|r| r.start..r.end).collect();
    let bytes = FrameAllocator::metadata_bytes(&ranges);
    let need = bytes.next_multiple_of(PAGE_SIZE) + FrameAllocator::METADATA_ALIGN;
    let largest = ranges
        .iter_mut()
        .filter(|r| r.end.0 - r.start.0 >= need)
        .max_by_key(|r| r.end.0 - r.start.0)
        .ok_or(InitError::NoRoomForMetadata(bytes))?;
    let meta_start = align_down(
        largest.end.0 - bytes,
        PAGE_SIZE.max(FrameAllocator::METADATA_ALIGN),
    );
    largest.end = PhysAddr(meta_start);
    let len = FrameAllocator::metadata_len(&ranges);
    let ptr = phys_to_virt(PhysAddr(meta_start)).as_usize() as *mut MaybeUninit<FrameMeta>;
    // SAFETY: [meta_start, meta_start + bytes) is free RAM, direct-mapped, removed from the
    // ranges the allocator manages and used for nothing else; the slice never dies.
    let meta = unsafe { core::slice::from_raw_parts_mut(ptr, len) };
    FRAMES.init(&ranges, meta).map_err(InitError::Allocator)?;
    RESERVE.store(reserve(FRAMES.stats().total), Ordering::Relaxed);
    Ok(())
}

/// Allocates `2^order` frames for `u`: a single frame from this hart's pinned cache
/// (interrupts masked for the few instructions it takes, no atomic read-modify-write),
/// anything else from the buddy lists. Out of memory is `Err(AllocError::OutOfMemory)`
/// after every cache that can be reached was given back (harts that hold theirs are asked
/// and waited for a bounded time: they answer at their next pinned allocator call, or
/// when their idle loop calls `FRAMES.service_local::<ThisHart>()` or parks with
/// `FRAMES.park_local::<ThisHart>()`). The pools of zeroed table pages ([`TABLE_POOL`])
/// are not among those caches: they go back when user memory reaches the reserve
/// ([`user_may_allocate`]) and when a table page finds no frame.
pub fn alloc(order: usize, u: FrameUse) -> Result<Pfn, AllocError> {
    FRAMES.alloc_local::<ThisHart>(order, u)
}

/// As [`alloc`], the block's metadata getting owner word `owner` (the reverse map's) as
/// it is prepared.
#[inline]
pub fn alloc_owned(order: usize, u: FrameUse, owner: u64) -> Result<Pfn, AllocError> {
    FRAMES.alloc_local_owned::<ThisHart>(order, u, owner)
}

/// Gives every cache of free or reusable frames back to the buddy lists: the table-page
/// pools of all harts, then every frame cache that can be reached
/// (`FRAMES.drain_caches`). For a leak check's baseline and its final count.
pub fn drain_caches() -> usize {
    drain_tables() + FRAMES.drain_caches()
}

/// Drops one reference to the block at `pfn`, freeing it at zero (a single frame into
/// this hart's pinned cache).
pub fn put(pfn: Pfn) {
    if let Err(e) = FRAMES.put_local::<ThisHart>(pfn) {
        panic!("frame {pfn:?} released twice or never allocated: {e:?}");
    }
}

/// Drops one reference to the block at `pfn` for a caller that may hold a stale or
/// doubled reference in error (user page references): `Ok(true)` when it was the last.
#[inline]
pub fn release(pfn: Pfn) -> Result<bool, pagoda_mm::frame::FrameError> {
    // A frame on the replacement lists leaves them before it is freed.
    match FRAMES.put_local_with::<ThisHart>(pfn, super::reclaim::forget) {
        Err(pagoda_mm::frame::FrameError::NotHead) => release_in_block(pfn),
        done => done,
    }
}

/// [`release`] of a 4 KiB page of a user huge frame, which counts on the huge frame
/// (`get_in_block`). Out of line: the plain put above stays as short as it was (exit
/// of a 64 MiB process: 43 instructions more per page with the block-aware put inline).
#[cold]
#[inline(never)]
fn release_in_block(pfn: Pfn) -> Result<bool, pagoda_mm::frame::FrameError> {
    FRAMES.put_in_block_local_with::<ThisHart>(pfn, super::reclaim::forget)
}

/// Adds a reference to the frame at `pfn` for a user page table entry; a 4 KiB page of a
/// user huge frame counts on the huge frame. The policy only references frames it
/// holds: an error would be its bug, and the count then stays as it was (a leak, never
/// a use after free).
#[inline(always)]
pub fn get_user(pfn: Pfn) {
    if FRAMES.get(pfn).is_err() {
        get_in_block(pfn);
    }
}

/// [`get_user`] of a 4 KiB page of a huge frame, out of line as [`release_in_block`].
#[cold]
#[inline(never)]
fn get_in_block(pfn: Pfn) {
    let _ = FRAMES.get_in_block(pfn);
}

/// Called by an idle hart before it waits: its pinned frame cache becomes available to
/// every hart (an allocation that runs short empties it at once instead of waiting).
pub fn park() {
    FRAMES.park_local::<ThisHart>();
}

/// Frames kept back from user processes (their pages, page tables and kernel stacks) so
/// that the kernel's own allocations (heap, the exit path of a process killed for lack of
/// memory) still succeed when user memory runs out: 1/64 of RAM, at least 1 MiB.
fn reserve(total: usize) -> usize {
    (total / 64).max(RESERVE_MIN_FRAMES)
}

/// The smallest reserve, in frames (1 MiB).
const RESERVE_MIN_FRAMES: usize = 256;

/// [`reserve`] of the RAM managed, set once [`init`] has handed it to [`FRAMES`] (until
/// then no user process exists).
static RESERVE: AtomicUsize = AtomicUsize::new(0);

/// Whether memory for a user process (a page, a page table, a kernel stack) may be taken
/// now: `false` once free memory is down to the kernel's reserve.
///
/// The common case is one relaxed load, no lock and no shared write: the frames on the
/// buddy lists ([`FrameAllocator::free_on_lists`]), a lower bound of the free memory,
/// above the reserve. Only when that bound is at or below the reserve does the exact
/// count (every allocator lock) decide, after every hart's pooled table pages went back.
#[inline]
pub fn user_may_allocate() -> bool {
    FRAMES.free_on_lists() > RESERVE.load(Ordering::Relaxed) || above_reserve_exactly()
}

/// Reclaim's watermarks, in multiples of the reserve (Linux's `min`, `low`, `high`):
/// below `low` free frames a fault that just succeeded reclaims until `high` is reached,
/// so that user memory rarely runs into the reserve and the kernel's own allocations
/// (`/proc` text, open files) keep finding memory.
const WATERMARK_LOW: usize = 2;
/// See [`WATERMARK_LOW`].
const WATERMARK_HIGH: usize = 3;

/// Whether free memory is below reclaim's low watermark (a lower bound: frames in hart
/// caches are not counted).
#[inline]
pub fn below_low_watermark() -> bool {
    FRAMES.free_on_lists() < WATERMARK_LOW * RESERVE.load(Ordering::Relaxed)
}

/// Whether free memory is below the point where an allocating task reclaims itself
/// (halfway between the reserve and the low watermark): background reclaim is not keeping
/// up, and the reserve kept for the kernel must not be reached.
#[inline]
pub fn below_throttle_watermark() -> bool {
    FRAMES.free_on_lists() < (WATERMARK_LOW + 1) * RESERVE.load(Ordering::Relaxed) / 2
}

/// Whether free memory reached reclaim's high watermark.
pub fn above_high_watermark() -> bool {
    FRAMES.free_on_lists() >= WATERMARK_HIGH * RESERVE.load(Ordering::Relaxed)
}

/// [`user_may_allocate`] near the reserve: the exact free count, then again once the
/// table pools went back (they are the first memory given up before a user request is
/// refused).
#[cold]
#[inline(never)]
fn above_reserve_exactly() -> bool {
    above_exactly(RESERVE.load(Ordering::Relaxed))
}

/// Whether more than `frames` frames are free, counted exactly, after the table pools
/// went back if needed.
fn above_exactly(frames: usize) -> bool {
    FRAMES.stats().free > frames || (drain_tables() != 0 && FRAMES.stats().free > frames)
}

/// Whether the kernel may take `bytes` of its heap for something a user program asked
/// for (an open file, the area map a `fork` copies, `/proc` text): free memory stays
/// above the kernel's reserve afterwards. A user's requests for kernel memory stop where
/// its pages stop, so that no user program can take the memory the kernel's own
/// (infallible) allocations rely on; the caller answers `ENOMEM`.
pub fn user_may_take(bytes: usize) -> bool {
    let limit = RESERVE.load(Ordering::Relaxed) + bytes.div_ceil(PAGE_SIZE);
    FRAMES.free_on_lists() > limit || above_exactly(limit)
}

/// A snapshot of the allocator's counters.
pub fn stats() -> Stats {
    FRAMES.stats()
}

/// Zeroed table pages each hart keeps for its next tables (128 KiB): the tables of a few
/// small processes (each a root, and a level-1 and a level-0 table per region it uses),
/// or of one that maps some 50 MiB (a level-0 table per 2 MiB).
const TABLE_POOL_PAGES: usize = 32;

/// Every hart's stack of zeroed table pages (see the module documentation).
static TABLE_POOL: TablePool<MAX_HARTS, TABLE_POOL_PAGES> = TablePool::new();

/// A zeroed table page: the one this hart freed last, or a fresh frame zeroed here.
/// `None` when no frame is left, or, for a user table (`user`), when free memory is
/// down to the kernel's reserve (`user_may_allocate`).
#[inline]
pub fn alloc_table(user: bool) -> Option<PhysAddr> {
    if let Some(pa) = TABLE_POOL.take(crate::smp::hart_id()) {
        return Some(pa);
    }
    alloc_fresh_table(user)
}

/// [`alloc_table`] when this hart's stack is empty. Never inlined: it would weigh on the
/// inlining of the table walks that call `alloc_table` (fork's copy walk above all).
#[cold]
#[inline(never)]
fn alloc_fresh_table(user: bool) -> Option<PhysAddr> {
    if user && !user_may_allocate() {
        return None;
    }
    let pfn = match alloc(0, FrameUse::PageTable) {
        Ok(pfn) => pfn,
        // Other harts' pooled pages are the memory to try last.
        Err(_) if drain_tables() != 0 => alloc(0, FrameUse::PageTable).ok()?,
        Err(_) => return None,
    };
    zero_page(pfn.addr());
    Some(pfn.addr())
}

/// Takes back a table page: onto this hart's stack, or to the frame allocator when that
/// stack is full.
///
/// # Safety
///
/// `pa` came from [`alloc_table`], every byte of it is zero, and nothing uses it any more
/// (no table links to it and no hart's TLB caches a walk through it).
#[inline]
pub unsafe fn free_table(pa: PhysAddr) {
    // SAFETY: the caller gives up a zeroed page nothing else uses.
    if let Err(pa) = unsafe { TABLE_POOL.put(crate::smp::hart_id(), pa) } {
        put(pa.pfn());
    }
}

/// Gives this hart's pooled pages back to the frame allocator (the hart goes idle);
/// returns how many.
pub fn drain_local_tables() -> usize {
    TABLE_POOL.drain(crate::smp::hart_id(), |pa| put(pa.pfn()))
}

/// Gives every hart's pooled pages back to the frame allocator (memory is short, or
/// statistics are read); returns how many. A hart in the middle of taking or giving a
/// page keeps its stack (see `TablePool::drain_all`).
pub fn drain_tables() -> usize {
    TABLE_POOL.drain_all(|pa| put(pa.pfn()))
}

/// Pages pooled on all harts (a snapshot): allocated frames of use `PageTable` that
/// hold no table.
pub fn pooled_tables() -> usize {
    TABLE_POOL.len()
}

/// Page-table pages from [`alloc_table`] (zeroed, pooled per hart), reached
/// through the direct map.
#[derive(Clone, Copy, Debug, Default)]
pub struct KernelMemory;

// SAFETY: pages come zeroed from `alloc_table` (frames: 4 KiB aligned, ours until
// freed) and the direct map makes every RAM page readable and writable at a fixed
// address.
unsafe impl PagingMemory for KernelMemory {
    fn alloc_table(&self) -> Option<PhysAddr> {
        alloc_table(false)
    }

    unsafe fn free_table(&self, pa: PhysAddr) {
        // SAFETY: the table code's contract: `pa` came from `alloc_table`, is all zero and
        // nothing reaches it any more (the kernel table frees a page only after the flush).
        unsafe { free_table(pa) };
    }

    fn table_ptr(&self, pa: PhysAddr) -> NonNull<TablePage> {
        let va = phys_to_virt(pa).as_usize() as *mut TablePage;
        // A direct-map address is never null.
        NonNull::new(va).unwrap_or(NonNull::dangling())
    }
}

/// Page-table pages of one user table: from [`alloc_table`] (which keeps the
/// kernel's reserve for itself), reached through the direct map, and counted. Leaf
/// tables fork shares count their holders in the page's frame reference count, and a
/// leaf copied out of one takes a reference to its frame (as the policy layer's
/// `KernelFrames::get` would), except the shared zero page, which is never counted.
#[derive(Debug)]
pub struct UserTableMemory {
    /// Table pages the table holds (root included): its share of the out-of-memory
    /// killer's badness, as Linux counts `mm_pgtables_bytes`. (A shared table counts for
    /// the space that made it.)
    pages: Cell<usize>,
    /// The shared zero page.
    zero: PhysAddr,
}

impl UserTableMemory {
    /// The memory of a new user table whose spaces map `zero` as the zero page.
    pub fn new(zero: PhysAddr) -> Self {
        UserTableMemory {
            pages: Cell::new(0),
            zero,
        }
    }

    /// Page-table pages this space holds now (root included).
    pub fn pages(&self) -> usize {
        self.pages.get()
    }
}

/// Leaf tables copied out of tables fork shared, since boot (`/proc/vmstat`).
pub static TABLES_COPIED: AtomicUsize = AtomicUsize::new(0);

// SAFETY: pages come zeroed from `alloc_table` (frames: 4 KiB aligned, ours until
// freed) and the direct map makes every RAM page readable and writable at a fixed
// address; `Sv39Mmu` frees a page only after the flush that drops every cached walk
// through it (its flush-then-free protocol), or when its space is in no hart's `satp`.
unsafe impl PagingMemory for UserTableMemory {
    #[inline]
    fn alloc_table(&self) -> Option<PhysAddr> {
        let pa = alloc_table(true)?;
        self.pages.set(self.pages.get() + 1);
        Some(pa)
    }

    unsafe fn free_table(&self, pa: PhysAddr) {
        self.pages.set(self.pages.get().saturating_sub(1));
        // SAFETY: the table code's contract: `pa` came from `alloc_table`, is all zero and
        // nothing reaches it any more.
        unsafe { free_table(pa) };
    }

    #[inline]
    fn table_ptr(&self, pa: PhysAddr) -> NonNull<TablePage> {
        NonNull::new(phys_to_virt(pa).as_usize() as *mut TablePage).unwrap_or(NonNull::dangling())
    }

    fn share_table(&self, pa: PhysAddr) -> bool {
        FRAMES.get(pa.pfn()).is_ok()
    }

    fn table_shared(&self, pa: PhysAddr) -> bool {
        FRAMES.meta(pa.pfn()).is_some_and(|m| m.refcount() > 1)
    }

    fn leave_table(&self, pa: PhysAddr) -> bool {
        // A table page with no count would be the table code's bug: leaving it (a leak)
        // is safer than emptying a page someone may still hold.
        FRAMES.put_unless_last(pa.pfn()).unwrap_or(true)
    }

    #[inline]
    fn leaf_copied(&self, leaf: Pte) {
        if leaf.pa() != self.zero {
            get_user(leaf.pa().pfn());
        }
    }

    fn table_copied(&self) {
        TABLES_COPIED.fetch_add(1, Ordering::Relaxed);
    }

    fn leaf_released(&self, leaf: Pte) {
        if leaf.pa() != self.zero {
            // Only after `leaf_copied` took another reference for the same frame: never
            // the last one, so nothing more (swap cache, replacement lists) is due.
            let _ = release(leaf.pa().pfn());
        }
    }
}
