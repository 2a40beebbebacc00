//! Page-table pages for every table the kernel builds (its own, in [`super::kspace`],
//! and each process's, in [`super::uspace`]): frames of use `PageTable`, kept zeroed.
//!
//! Table pages cross `PagingMemory` all zero both ways: the table code clears every
//! entry of a table it frees. So a freed table page goes onto this hart's stack in
//! [`POOL`] as it is, and the next table this hart needs is taken from there without
//! zeroing 4 KiB; only a fresh frame from the allocator is zeroed here. A pooled page
//! stays an allocated frame of use `PageTable` (the accounting shows it where it is), and
//! goes back to the frame allocator whenever that memory could be wanted elsewhere:
//! - when its hart goes idle (the scheduler loop, with the heap trim and the frame-cache
//!   park): [`drain_local`];
//! - when user memory reaches the kernel's reserve (`frames::user_may_allocate`), or a
//!   table page finds no frame: [`drain_all`], from whichever hart runs short;
//! - before memory statistics are reported (`/proc/meminfo`) or a leak check takes its
//!   baseline: [`drain_all`].

use pagoda_mm::addr::PhysAddr;
use pagoda_mm::frame::FrameUse;
use pagoda_mm::layout::MAX_HARTS;
use pagoda_mm::paging::TablePool;

use super::frames;
use super::uspace::zero_page;

/// Zeroed table pages each hart keeps for its next tables (128 KiB): the tables of a few
/// small processes (each a root, and a level-1 and a level-0 table per region it uses),
/// or of one that maps some 50 MiB (a level-0 table per 2 MiB).
const POOLED_PER_HART: usize = 32;

/// Every hart's stack of zeroed table pages.
static POOL: TablePool<MAX_HARTS, POOLED_PER_HART> = TablePool::new();

/// A zeroed table page: the one this hart freed last, or a fresh frame zeroed here.
/// `None` when no frame is left, or, for a user table (`user`), when free memory is
/// down to the kernel's reserve (`frames::user_may_allocate`).
#[inline]
pub fn alloc(user: bool) -> Option<PhysAddr> {
    if let Some(pa) = POOL.take(crate::smp::hart_id()) {
        return Some(pa);
    }
    alloc_fresh(user)
}

/// [`alloc`] when this hart's stack is empty.
#[cold]
fn alloc_fresh(user: bool) -> Option<PhysAddr> {
    if user && !frames::user_may_allocate() {
        return None;
    }
    let pfn = match frames::alloc(0, FrameUse::PageTable) {
        Ok(pfn) => pfn,
        // Other harts' pooled pages are the memory to try last.
        Err(_) if drain_all() != 0 => frames::alloc(0, FrameUse::PageTable).ok()?,
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
/// `pa` came from [`alloc`], every byte of it is zero, and nothing uses it any more (no
/// table links to it and no hart's TLB caches a walk through it).
#[inline]
pub unsafe fn free(pa: PhysAddr) {
    // SAFETY: the caller gives up a zeroed page nothing else uses.
    if let Err(pa) = unsafe { POOL.put(crate::smp::hart_id(), pa) } {
        frames::put(pa.pfn());
    }
}

/// Gives this hart's pooled pages back to the frame allocator (the hart goes idle);
/// returns how many.
pub fn drain_local() -> usize {
    POOL.drain(crate::smp::hart_id(), |pa| frames::put(pa.pfn()))
}

/// Gives every hart's pooled pages back to the frame allocator (memory is short, or
/// statistics are read); returns how many. A hart in the middle of taking or giving a
/// page keeps its stack (see `TablePool::drain_all`).
pub fn drain_all() -> usize {
    POOL.drain_all(|pa| frames::put(pa.pfn()))
}

/// Pages pooled on all harts (a snapshot): allocated frames of use `PageTable` that
/// hold no table.
pub fn pooled() -> usize {
    POOL.len()
}
