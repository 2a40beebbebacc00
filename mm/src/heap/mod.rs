//! The kernel heap: slab caches over the buddy allocator, with real free.
//!
//! [`SlabHeap`] is the kernel's `#[global_allocator]`. It serves requests up to one page
//! from [size classes](class) and larger ones straight from a [`PageSource`] (the buddy
//! frame allocator through the direct map in the kernel; `std` or an arena on the host).
//!
//! ```text
//!  alloc(layout) ──► class_of(size, align) ──► size > 4096 or align > 4096 ──► PageSource
//!                           │                                                (2^order pages)
//!                           ▼
//!   hart 0 cache        hart 1 cache        ...   per hart, per class: a stack of free
//!   [8][16]..[4096]     [8][16]..[4096]           objects (no lock: the hart is pinned)
//!        │  refill / flush half a magazine under the class lock
//!        ▼
//!   class depot (spin lock) ── partial slabs, one list per hart + a shared list
//!        │                       ⇄ full slabs (unlisted)
//!        │  an emptied slab leaves its class for the heap-wide empty-slab reserve
//!        │  (≤ EMPTY_RESERVE_PAGES pages over all classes, oldest returned first)
//!        ▼
//!   slab = 2^k pages:  [obj 0][obj 1] ... [obj n-1][tail][header]
//!        ▲ alloc_pages(k) / free_pages(k)
//!   PageSource
//! ```
//!
//! # Invariants
//! - A slab of class `c` is `PAGE_SIZE << SLAB_ORDER[c]` bytes, aligned to that size, so
//!   `ptr & !(slab_bytes - 1)` finds its header; objects start at offset 0, so every object
//!   is aligned to the largest power of two dividing the class size.
//! - A slab is on one of its class's partial lists iff `0 < in_use < capacity`, on no list
//!   when full. A hart refills from its own list (at most [`HART_PARTIAL_SLABS`] slabs),
//!   then the shared list, then a new slab, and only when the page source is dry from
//!   other harts' lists: two harts never carve the same slab while memory lasts; when `in_use` drops to 0 it leaves the class for the reserve (at most
//!   [`EMPTY_RESERVE_PAGES`] pages in all) or the page source. `in_use` counts objects out
//!   of the slab, including those parked in hart caches.
//! - One hart's caches hold at most about [`HART_CACHE_BYTES`]; [`SlabHeap::trim`] empties
//!   the calling hart's caches and the reserve.
//! - The page class (4096 bytes) has no slabs: its objects are single pages from the page
//!   source, cached per hart like the rest.
//! - Every page taken from the page source is counted once in [`HeapStats::pages_held`].
//!
//! # Locking
//! - Fast path (hit in the hart's cache): no lock and no atomic read-modify-write, only the
//!   [`CpuLocal`](crate::cpu::CpuLocal) pin (interrupts off in the kernel). Two harts share nothing on this path.
//! - A miss (empty cache on alloc, full cache on free) moves half a magazine under the
//!   class's spin lock; that lock is held while a slab is taken from or returned to the
//!   page source (lock order: class lock, then the page source's own lock). No two class
//!   locks are ever held together.
//! - Harts beyond the heap's `HARTS` and [`Unpinned`](crate::cpu::Unpinned) callers take the class lock for every
//!   object.
//!
//! # Errors and misuse
//! Out of memory is a null pointer (or `Err` from [`ObjectCache::alloc`]), never a panic.
//! Frees are checked as documented on [`SlabHeap::dealloc`].
pub mod class;
mod object;
mod slab;
mod slab_heap;
mod source;
mod stats;

pub use class::{
    CLASS_SIZES, EMPTY_RESERVE_PAGES, HART_CACHE_BYTES, HART_PARTIAL_SLABS, MAGAZINE_BYTES,
    MAX_CLASS_SIZE, NUM_CLASSES, PAGE_CLASS, SLAB_OBJECTS, SLAB_ORDER, class_of, slab_pages_of,
};
pub use object::{CacheBox, ObjectCache};
pub use slab_heap::SlabHeap;
pub use source::PageSource;
pub use stats::{CacheStats, HeapStats};
