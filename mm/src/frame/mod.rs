//! Physical frames: buddy allocator, per-frame metadata, per-hart caches, accounting.
//!
//! # Design
//!
//! [`FrameAllocator`] manages the free physical ranges the kernel found in the device
//! tree (RAM minus reserved memory, the kernel image and the metadata array). It hands
//! out naturally aligned blocks of 2^order frames, order 0 (4 KiB) to [`MAX_ORDER`]
//! (18: 1 GiB), with a buddy system:
//!
//! ```text
//!  metadata array (one 32-byte FrameMeta per frame of the span, index = pfn - base)
//!  idx:   0    1    2    3    4    5    6    7    8    9   10   11   12 ...
//!       +----+----+----+----+----+----+----+----+----+----+----+----+----+
//!       |F2  |tail|tail|tail|A0  |C   |F1  |tail|R   |R   |A1  |tail|F0  |
//!       +----+----+----+----+----+----+----+----+----+----+----+----+----+
//!         ^                        ^    ^                             ^
//!  lists: |                        |    |                             |
//!   order 2 head ---> [0] <-> ...  |    |                             |
//!   order 1 head ---> [6] <-> ...  |    |                             |
//!   order 0 head ---> [12] <-> ... |  hart 1 cache: [.., 5]           |
//!  non-empty orders bitmap: 0b...111     (F = free head, A = allocated head,
//!                                         C = cached, R = reserved, digit = order)
//! ```
//!
//! * The free lists are doubly linked through the `links` words of the free heads'
//!   metadata entries, never through the free memory itself, so the allocator works
//!   before the frames are mapped and the host can simulate gigabytes of RAM cheaply.
//! * A `u32` bitmap has bit k set iff list k is non-empty: `alloc(k)` finds the smallest
//!   usable order with one count-trailing-zeros, then splits down (O([`MAX_ORDER`])).
//!   `free` merges with the buddy block (frame number xor 2^k) while it is a free head
//!   of the same order (O([`MAX_ORDER`])).
//! * Only block heads carry a use, order and reference count; the other frames of a
//!   block are tails. Blocks never cross a gap between ranges: reserved entries are never
//!   free heads, so merging stops there.
//! * Each hart has a cache of up to [`CACHE_CAPACITY`] free single frames, refilled from
//!   and drained to the buddy lists [`BATCH`] at a time (see `cache.rs`), for the
//!   `_on(hart, ..)` calls that any caller may make with any hart id; and a second,
//!   *pinned* cache of the same size for [`FrameAllocator::alloc_local`] /
//!   [`FrameAllocator::put_local`] / [`FrameAllocator::free_local`], whose caller proves
//!   with a [`crate::cpu::CpuLocal`] pin that it is alone on its hart.
//!
//! # Invariants (checked by [`FrameAllocator::verify`])
//!
//! 1. Every frame of the span is exactly one of: a free head on the list of its order,
//!    a cached frame in exactly one hart cache, an allocated head, a tail inside a
//!    free or allocated block, or reserved.
//! 2. A block of order k starts at a frame number that is a multiple of 2^k and lies
//!    wholly inside one managed range run.
//! 3. No two free buddies of the same order below [`MAX_ORDER`] are both on the lists
//!    (full coalescing); hart caches hold single frames outside the lists.
//! 4. An allocated head has reference count >= 1 except while it is being handed out or
//!    given back; `free` needs the count to be exactly 1 and `put` frees at 0.
//! 5. Counts: buddy free frames + cached frames + allocated frames = managed frames.
//!
//! # Locking
//!
//! The buddy lists and their counters sit behind one `spin::Mutex`; each hart cache
//! behind its own `spin::Mutex` on its own cache line. The order is: a hart cache lock,
//! then the buddy lock; nothing holds two cache locks except `verify`, which takes them
//! all in hart order. Metadata entries are atomics: reference counts change lock-free,
//! the state word and links change under the buddy lock (or under a cache lock for
//! cached frames), and an allocated block's state is changed by the holder of its only
//! reference or by `set_use` with a compare-and-swap. Frees claim the block with an
//! atomic compare-and-swap of the reference count from 1 to 0, so two racing frees of
//! one block cannot both succeed; a double free is reported as
//! [`FrameError::NotAllocated`].
//!
//! The pinned caches take no lock on their fast path. Ownership is biased: a hart's first
//! pinned operation takes its slot with one compare-and-swap and keeps it; from then on
//! an allocation checks two words of its own slot with plain loads, pops a frame and
//! writes the frame's metadata with plain stores (relaxed atomics: the frame is its
//! alone), and a free does the same after the atomic reference-count drop. Nobody else
//! touches an owned slot: to get its frames back (out of memory, `drain_caches`) another
//! context sets the slot's request flag and the owning hart drains it at its next pinned
//! operation or [`FrameAllocator::service_local`]. An allocation out of memory waits a
//! bounded time for those answers (never forever: the hart asked may be spinning, with
//! interrupts off, on a lock the asker holds). A hart that parks
//! ([`FrameAllocator::park_local`]) lets go of its slot, which anyone may then drain at
//! once. An owned slot cannot be locked from outside, so `stats` reads it as it is and
//! `verify` is exact only while no pinned operation runs.
//!
//! # Accounting
//!
//! [`FrameAllocator::stats`] returns a [`Stats`]: managed, free, cached and used frames,
//! used frames by [`FrameUse`], free blocks by order, and a high-water mark. Per-use
//! counts are kept as wrapping deltas where the work happens (per hart cache, under the
//! buddy lock, in atomics for `set_use`) so the fast path touches no shared counter;
//! [`Stats::check_no_leaks`] compares against a baseline.
//!
//! # Example
//!
//! ```
//! use core::mem::MaybeUninit;
//! use pagoda_mm::addr::PhysAddr;
//! use pagoda_mm::frame::{FrameAllocator, FrameMeta, FrameUse};
//!
//! static FRAMES: FrameAllocator = FrameAllocator::new();
//!
//! // 8 MiB of RAM at 0x8020_0000 (the kernel would carve the metadata out of RAM).
//! let ram = [PhysAddr(0x8020_0000)..PhysAddr(0x80a0_0000)];
//! let n = FrameAllocator::metadata_len(&ram);
//! let meta: &'static mut [MaybeUninit<FrameMeta>] =
//!     Box::leak((0..n).map(|_| MaybeUninit::uninit()).collect());
//! FRAMES.init(&ram, meta).unwrap();
//!
//! let baseline = FRAMES.stats();
//! let pt = FRAMES.alloc_on(0, 0, FrameUse::PageTable).unwrap();  // one frame, hart 0
//! let huge = FRAMES.alloc_frame(9, FrameUse::UserAnon).unwrap();  // 2 MiB, aligned
//! assert_eq!(huge.pfn().0 % 512, 0);
//! assert_eq!(FRAMES.get(pt), Ok(2));          // shared, e.g. copy-on-write
//! assert_eq!(FRAMES.put(pt), Ok(false));
//! FRAMES.free_on(0, pt, 0).unwrap();
//! assert!(FRAMES.free_on(0, pt, 0).is_err()); // double free is an error
//! drop(huge);
//! FRAMES.stats().check_no_leaks(&baseline).unwrap();
//! ```

mod allocator;
mod buddy;
mod cache;
mod error;
mod handle;
mod meta;
mod stats;

pub use allocator::FrameAllocator;
pub use cache::{BATCH, CACHE_CAPACITY};
pub use error::{AllocError, Corruption, FrameError, InitError};
pub use handle::Frame;
pub use meta::{FrameFlags, FrameMeta, FrameUse, MAX_ORDER, NO_FRAME, ORDERS};
pub use stats::{Leak, Stats};
