//! The kernel's frame allocator: the `pagoda-mm` buddy allocator over the RAM the device
//! tree described, with its metadata array carved out of that RAM.

use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use arrayvec::ArrayVec;
use pagoda_mm::addr::{PAGE_SIZE, Pfn, PhysAddr, PhysRange, align_down};
use pagoda_mm::frame::{AllocError, FrameAllocator, FrameMeta, FrameUse, Stats};
use pagoda_mm::layout::phys_to_virt;

use super::heap::ThisHart;
use super::tables;
use crate::boot::BootInfo;
use crate::boot::info::MAX_FREE_RANGES;

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
    FRAMES.init(&ranges, meta).map_err(InitError::Allocator)
}

/// Allocates `2^order` frames for `u`: a single frame from this hart's pinned cache
/// (interrupts masked for the few instructions it takes, no atomic read-modify-write),
/// anything else from the buddy lists. Out of memory is `Err(AllocError::OutOfMemory)`
/// after every cache that can be reached was given back (harts that hold theirs are asked
/// and waited for a bounded time: they answer at their next pinned allocator call, or
/// when their idle loop calls `FRAMES.service_local::<ThisHart>()` or parks with
/// `FRAMES.park_local::<ThisHart>()`). The pools of zeroed table pages
/// ([`super::tables`]) are not among those caches: they go back when user memory reaches
/// the reserve ([`user_may_allocate`]) and when a table page finds no frame.
pub fn alloc(order: usize, u: FrameUse) -> Result<Pfn, AllocError> {
    FRAMES.alloc_local::<ThisHart>(order, u)
}

/// Gives every cache of free or reusable frames back to the buddy lists: the table-page
/// pools of all harts, then every frame cache that can be reached
/// (`FRAMES.drain_caches`). For a leak check's baseline and its final count.
pub fn drain_caches() -> usize {
    tables::drain_all() + FRAMES.drain_caches()
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
    FRAMES.put_local::<ThisHart>(pfn)
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

/// The free count is looked at once per this many requests while memory is plentiful
/// (it takes every allocator lock); on every request once it is low.
const CHECK_EVERY: usize = 16;

/// Requests for user memory so far (to pace the checks).
static USER_REQUESTS: AtomicUsize = AtomicUsize::new(0);
/// Whether the last check found free memory at or below the reserve.
static LOW: AtomicBool = AtomicBool::new(false);

/// Whether memory for a user process (a page, a page table, a kernel stack) may be taken
/// now: `false` once free memory is down to the kernel's reserve. Between two checks at
/// most `CHECK_EVERY` requests per hart go through unchecked, far less than the reserve.
pub fn user_may_allocate() -> bool {
    // Only paces the checks: a lost update between harts does not matter, so no atomic
    // read-modify-write on this path.
    let n = USER_REQUESTS.load(Ordering::Relaxed);
    USER_REQUESTS.store(n.wrapping_add(1), Ordering::Relaxed);
    if !n.is_multiple_of(CHECK_EVERY) && !LOW.load(Ordering::Relaxed) {
        return true;
    }
    let s = FRAMES.stats();
    let mut low = s.free <= reserve(s.total);
    if low {
        low = low_after_drain();
    }
    LOW.store(low, Ordering::Relaxed);
    !low
}

/// Whether free memory is still at or below the reserve once every hart's pooled table
/// pages went back (they are the first memory given up before a user request is refused).
#[cold]
#[inline(never)]
fn low_after_drain() -> bool {
    if tables::drain_all() == 0 {
        return true;
    }
    let s = FRAMES.stats();
    s.free <= reserve(s.total)
}

/// A snapshot of the allocator's counters.
pub fn stats() -> Stats {
    FRAMES.stats()
}
