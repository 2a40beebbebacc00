//! The kernel heap: `pagoda-mm`'s slab heap as `#[global_allocator]`, taking pages from
//! [`FRAMES`](super::frames::FRAMES) through the direct map.
//!
//! When memory runs out, `alloc` returns null. Buffers whose size a user program
//! controls (argument strings, directory listings, descriptor tables, ...) are allocated
//! with the fallible APIs (`try_reserve`) and a failure becomes `ENOMEM`. Small
//! fixed-size kernel objects (a `Process`, its `Arc`s, a child-list entry) use the
//! infallible ones, whose failure reaches the allocation-error handler, which panics. What
//! keeps that from happening is the frame reserve (`frames::user_may_allocate`): user
//! pages, user page tables and process kernel stacks stop at 1/64 of RAM free, so the
//! heap can always grow by that much.

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::NonNull;

use pagoda_mm::addr::{Pfn, PhysAddr};
use pagoda_mm::frame::FrameUse;
use pagoda_mm::heap::{HeapStats, PageSource, SlabHeap};
use pagoda_mm::layout::{DIRECT_MAP_BASE, MAX_HARTS, phys_to_virt};

use super::frames;
use crate::smp::ThisHart;

/// Pages for the heap: buddy blocks, addressed through the direct map.
pub struct BuddyPages;

// SAFETY: blocks come from the buddy allocator (naturally aligned, 2^order pages, unused
// by anyone else until freed); the direct map makes them readable and writable; the
// frame allocator is internally synchronised and never uses the heap.
unsafe impl PageSource for BuddyPages {
    fn alloc_pages(&self, order: usize) -> Option<NonNull<u8>> {
        let pfn = frames::alloc(order, FrameUse::Slab).ok()?;
        NonNull::new(phys_to_virt(pfn.addr()).as_usize() as *mut u8)
    }

    unsafe fn free_pages(&self, ptr: NonNull<u8>, _order: usize) {
        let pa = PhysAddr(ptr.as_ptr() as usize - DIRECT_MAP_BASE.as_usize());
        frames::put(Pfn(pa.pfn().0));
    }
}

/// The slab heap behind `alloc`.
pub struct KernelHeap(SlabHeap<BuddyPages, ThisHart, MAX_HARTS>);

// SAFETY: forwards to the slab heap, whose `alloc`/`dealloc` follow the GlobalAlloc
// contract (null on failure, any layout with align ≤ 4096 honoured, larger ones served by
// naturally aligned page blocks).
unsafe impl GlobalAlloc for KernelHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.0.alloc(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded GlobalAlloc contract.
        unsafe { self.0.dealloc(ptr, layout) }
    }
}

/// The kernel heap.
#[global_allocator]
pub static HEAP: KernelHeap = KernelHeap(SlabHeap::new(BuddyPages));

/// Heap counters (slab statistics per cache, bytes in use, high-water marks).
pub fn stats() -> HeapStats {
    HEAP.0.stats()
}

/// Gives back what the calling hart's heap caches hold: its cached free objects go back to
/// their slabs and every kept empty slab goes back to the frame allocator. Returns the
/// number of pages given back.
///
/// The slab heap does not drain per-hart caches on its own (that would cost the fast path),
/// so the kernel calls this on each hart when the hart goes idle (the scheduler loop) and
/// on the reading hart before reporting memory statistics (`/proc/meminfo`); otherwise
/// each size class a hart has used keeps a few cached objects, and with them a slab of up
/// to 16 pages. See `docs/kernel-heap.md`, "Footprint".
pub fn trim() -> usize {
    HEAP.0.trim()
}
