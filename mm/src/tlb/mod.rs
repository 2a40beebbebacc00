//! ASIDs with generations and precise, batched TLB maintenance.
//!
//! - [`asid`]: the [`AsidAllocator`] gives each address space an ASID on switch, starts
//!   a new generation when they run out and tells each hart when it must flush its whole
//!   TLB (once per generation); with too few ASID bits, every switch flushes.
//! - [`flush`]: the [`TlbOps`] hooks the kernel implements with `sfence.vma` and remote
//!   fences, and the [`FlushBatch`] through which page-table changes flush exactly the
//!   pages they touched (or the whole ASID past [`FLUSH_PAGE_THRESHOLD`]), on exactly the
//!   harts that ran the space, and free frames only after the flush.
//! - [`hart`]: hart sets, plain and shared.
//!
//! Nothing here executes an instruction: the kernel performs the fences; the logic is
//! tested on the host with a recording [`TlbOps`]. `docs/page-tables.md` describes the
//! protocols.

pub mod asid;
pub mod flush;
pub mod hart;

pub use asid::{AsidAllocator, AsidContext, AsidSwitch, MAX_ASID_BITS};
pub use flush::{
    DEFERRED_CAPACITY, FLUSH_PAGE_THRESHOLD, Flush, FlushBatch, FlushTarget, PendingFlush,
    TlbCounts, TlbOps, TlbStats,
};
pub use hart::{AtomicHartMask, HartMask};
