//! Precise TLB maintenance: the [`TlbOps`] hooks the kernel implements, the flush
//! [`FlushBatch`] that page-table changes go through, and [`TlbStats`].
//!
//! # The flush-batch protocol
//!
//! One operation (an `munmap`, an `mprotect`, a copy-on-write break) creates one batch
//! for one [`FlushTarget`] and then:
//! 1. changes page-table entries, recording each changed leaf with
//!    [`FlushBatch::flush_page`] (a huge leaf counts once: one `sfence.vma` with any
//!    address inside it drops the whole leaf's TLB entry);
//! 2. hands every frame it took out of the table to [`FlushBatch::defer`] instead of
//!    freeing it: another hart may still be reading or writing it through a stale TLB
//!    entry until the flush below has completed on that hart;
//! 3. calls [`FlushBatch::flush`], which issues the recorded flushes once — page by page
//!    up to [`FLUSH_PAGE_THRESHOLD`] pages, else one whole-address-space flush — on the
//!    calling hart if it is in the target's hart mask and as one shootdown to the other
//!    harts of the mask, and only *then* hands the deferred frames back to be freed.
//!
//! When the batch holds [`DEFERRED_CAPACITY`] frames, the page-table code flushes early
//! and continues, so memory use is bounded however large the operation.
//!
//! Removing a page-table page (an emptied table) also forces a whole-address-space flush:
//! `sfence.vma` with an address need not drop cached non-leaf entries, and the table page
//! itself is deferred like a frame.

use crate::addr::{PAGE_SIZE, VirtAddr, VirtRange};
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicU64, Ordering};

use super::asid::AsidContext;
use super::hart::{AtomicHartMask, HartMask};

/// Up to this many pages a batch flushes page by page; one more and it flushes the whole
/// address space instead (Linux's `tlb_flush_all_threshold` for RISC-V is 64; 32 matches
/// `page_table_multiarch` and keeps a shootdown message small).
pub const FLUSH_PAGE_THRESHOLD: usize = 32;

/// How many frames a batch holds back before the page-table code must flush it.
pub const DEFERRED_CAPACITY: usize = 256;

/// One TLB invalidation, as `sfence.vma` can express it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flush<'a> {
    /// `sfence.vma va, asid` for each page; with `asid: None`, `sfence.vma va, x0` (every
    /// address space: used for the kernel's global mappings).
    Pages {
        /// The address space, or `None` for all of them.
        asid: Option<u16>,
        /// One address inside each leaf to drop.
        pages: &'a [VirtAddr],
    },
    /// `sfence.vma x0, asid`: every non-global entry of one address space, leaf and
    /// non-leaf.
    Asid(u16),
    /// `sfence.vma x0, x0`: everything.
    All,
}

/// The hardware hooks the kernel supplies: perform a flush on this hart, or on other harts
/// (by IPI or the SBI remote-fence calls). Host tests implement it with a recorder.
pub trait TlbOps {
    /// The logical index of the calling hart.
    fn this_hart(&self) -> usize;

    /// Performs `flush` on the calling hart (with the `sfence.vma` forms listed in
    /// [`Flush`]).
    fn sfence_local(&self, flush: &Flush<'_>);

    /// Performs `flush` on every hart in `harts` (never containing the caller) and returns
    /// only when all of them have completed it.
    fn sfence_remote(&self, harts: &HartMask, flush: &Flush<'_>);

    /// The counters this kernel's flushes are recorded in.
    fn stats(&self) -> &TlbStats;

    /// Performs `flush` on the calling hart and counts it. Use this, not
    /// [`sfence_local`](Self::sfence_local), e.g. for the full flush that
    /// [`AsidAllocator::asid_for`](super::AsidAllocator::asid_for) asks for.
    fn flush_local(&self, flush: &Flush<'_>) {
        self.stats().count(flush);
        self.sfence_local(flush);
    }

    /// Performs `flush` on every hart in `harts`: locally if the caller is one of them,
    /// and as a single remote request to the others. Counts what it does.
    fn flush_harts(&self, harts: &HartMask, flush: &Flush<'_>) {
        let mut remote = *harts;
        if remote.remove(self.this_hart()) {
            self.flush_local(flush);
        }
        if !remote.is_empty() {
            self.stats().count_remote(&remote);
            self.sfence_remote(&remote, flush);
        }
    }
}

/// Flush counters by kind (relaxed atomics; one instance per kernel, read by tests and
/// the statistics interface).
#[derive(Debug, Default)]
pub struct TlbStats {
    pages: AtomicU64,
    asid: AtomicU64,
    all: AtomicU64,
    remote_requests: AtomicU64,
    remote_harts: AtomicU64,
}

/// A snapshot of [`TlbStats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TlbCounts {
    /// Single-page invalidations performed on the calling hart.
    pub pages: u64,
    /// Whole-ASID flushes performed on the calling hart.
    pub asid: u64,
    /// Full flushes performed on the calling hart.
    pub all: u64,
    /// Remote requests (one per shootdown, whatever its number of harts and pages).
    pub remote_requests: u64,
    /// Sum over remote requests of the number of harts they went to.
    pub remote_harts: u64,
}

impl TlbStats {
    /// All counters zero.
    pub const fn new() -> Self {
        Self {
            pages: AtomicU64::new(0),
            asid: AtomicU64::new(0),
            all: AtomicU64::new(0),
            remote_requests: AtomicU64::new(0),
            remote_harts: AtomicU64::new(0),
        }
    }

    /// Counts a flush performed on the calling hart.
    pub fn count(&self, flush: &Flush<'_>) {
        let (counter, n) = match flush {
            Flush::Pages { pages, .. } => (&self.pages, pages.len() as u64),
            Flush::Asid(_) => (&self.asid, 1),
            Flush::All => (&self.all, 1),
        };
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts one remote request to `harts`.
    pub fn count_remote(&self, harts: &HartMask) {
        self.remote_requests.fetch_add(1, Ordering::Relaxed);
        self.remote_harts
            .fetch_add(harts.len() as u64, Ordering::Relaxed);
    }

    /// The current values.
    pub fn snapshot(&self) -> TlbCounts {
        TlbCounts {
            pages: self.pages.load(Ordering::Relaxed),
            asid: self.asid.load(Ordering::Relaxed),
            all: self.all.load(Ordering::Relaxed),
            remote_requests: self.remote_requests.load(Ordering::Relaxed),
            remote_harts: self.remote_harts.load(Ordering::Relaxed),
        }
    }
}

/// Flushes owed for page-table changes of several address spaces, issued together
/// (Linux's batched unmap flush): reclaim unmaps a batch of pages, each perhaps in a
/// space running on another hart, then makes one request that flushes every TLB of
/// every hart that ran one of them, instead of one remote fence per page.
///
/// Rule: until [`issue`](Self::issue) returns, a hart may still reach the old frames
/// through stale translations, so the caller must neither free them nor read them for
/// keeps (a write to disk) before it.
#[derive(Debug, Default)]
#[must_use = "the flushes must be issued before the old frames are freed or written out"]
pub struct PendingFlush {
    harts: HartMask,
}

impl PendingFlush {
    /// Nothing owed yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that a change was just made to the space of `ctx`: the harts running it
    /// now are to flush; the others that ran it flush before they run it again
    /// ([`AsidContext::shootdown_harts`]).
    pub fn add(&mut self, ctx: &AsidContext) {
        for hart in ctx.shootdown_harts().iter() {
            self.harts.insert(hart);
        }
    }

    /// Whether no flush is owed.
    pub fn is_empty(&self) -> bool {
        self.harts.is_empty()
    }

    /// Flushes the whole TLB of every hart recorded (this one locally, the others with
    /// one remote request); nothing is owed afterwards.
    pub fn issue<T: TlbOps + ?Sized>(&mut self, tlb: &T) {
        if !self.harts.is_empty() {
            tlb.flush_harts(&self.harts, &Flush::All);
            self.harts = HartMask::default();
        }
    }
}

/// Whose translations a batch flushes.
#[derive(Clone, Copy, Debug)]
pub enum FlushTarget<'a> {
    /// The kernel's global mappings: flushed in every address space, on every hart in
    /// `harts` (the harts that are online).
    Kernel {
        /// The online harts.
        harts: &'a AtomicHartMask,
    },
    /// One user address space: flushed for its ASID (read at flush time, after the
    /// page-table change) on the harts running it now; the others that ran it flush it
    /// before they run it again ([`AsidContext`]'s targeted shootdown).
    Space(&'a AsidContext),
}

impl FlushTarget<'_> {
    fn harts(&self) -> HartMask {
        match self {
            Self::Kernel { harts } => harts.snapshot(),
            Self::Space(ctx) => ctx.shootdown_harts(),
        }
    }

    fn asid(&self) -> Option<u16> {
        match self {
            Self::Kernel { .. } => None,
            Self::Space(ctx) => Some(ctx.asid()),
        }
    }
}

/// The flushes and deferred frees of one operation; see the [module docs](self).
///
/// `D` is what the batch holds back until its flush: for page tables, the paging layer's
/// `Deferred` (a leaf's frame or an emptied table page); this layer never looks inside.
///
/// Dropping a batch issues its pending flushes. It must not hold deferred items when
/// dropped (they would leak; asserted in debug builds): the page-table operations always
/// return with none, and a caller that defers its own frames calls [`flush`](Self::flush).
pub struct FlushBatch<'a, T: TlbOps + ?Sized, D: Copy> {
    tlb: &'a T,
    target: FlushTarget<'a>,
    /// Slots `..npages` are initialised (as `deferred`: a batch for one page must not
    /// cost a 256-byte memset).
    pages: [MaybeUninit<VirtAddr>; FLUSH_PAGE_THRESHOLD],
    npages: usize,
    whole: bool,
    /// Slots `..ndeferred` are initialised (left uninitialised otherwise: creating a
    /// batch, e.g. for one copy-on-write fault, must not cost a 8 KiB memset).
    deferred: [MaybeUninit<D>; DEFERRED_CAPACITY],
    ndeferred: usize,
}

impl<'a, T: TlbOps + ?Sized, D: Copy> FlushBatch<'a, T, D> {
    /// An empty batch for `target`, flushing through `tlb`.
    pub fn new(tlb: &'a T, target: FlushTarget<'a>) -> Self {
        Self {
            tlb,
            target,
            pages: [const { MaybeUninit::uninit() }; FLUSH_PAGE_THRESHOLD],
            npages: 0,
            whole: false,
            deferred: [const { MaybeUninit::uninit() }; DEFERRED_CAPACITY],
            ndeferred: 0,
        }
    }

    /// Records that the leaf containing `va` changed. Past [`FLUSH_PAGE_THRESHOLD`] pages
    /// the batch switches to one whole-address-space flush.
    #[inline]
    pub fn flush_page(&mut self, va: VirtAddr) {
        if self.whole {
            return;
        }
        if self.npages == FLUSH_PAGE_THRESHOLD {
            self.whole = true;
        } else {
            self.pages[self.npages].write(va);
            self.npages += 1;
        }
    }

    /// Records that the leaves of every page in `range` (page-aligned bounds) changed: as
    /// many [`flush_page`](Self::flush_page) calls, a whole-address-space flush if that
    /// is past [`FLUSH_PAGE_THRESHOLD`] pages.
    pub fn flush_range(&mut self, range: VirtRange) {
        let pages = (range.end.0.saturating_sub(range.start.0)).div_ceil(PAGE_SIZE);
        if self.whole || self.npages + pages > FLUSH_PAGE_THRESHOLD {
            self.whole = true;
            return;
        }
        for i in 0..pages {
            self.pages[self.npages + i].write(VirtAddr(range.start.0 + i * PAGE_SIZE));
        }
        self.npages += pages;
    }

    /// Records that the whole address space must be flushed (e.g. a table page was
    /// removed).
    #[inline]
    pub fn flush_space(&mut self) {
        self.whole = true;
    }

    /// Free room for deferred items.
    #[inline]
    pub fn room(&self) -> usize {
        DEFERRED_CAPACITY - self.ndeferred
    }

    /// Holds `item` until the next [`flush`](Self::flush); gives it back as `Err` when the
    /// batch is full (flush, then retry).
    #[inline]
    pub fn defer(&mut self, item: D) -> Result<(), D> {
        if self.ndeferred == DEFERRED_CAPACITY {
            return Err(item);
        }
        self.deferred[self.ndeferred].write(item);
        self.ndeferred += 1;
        Ok(())
    }

    /// Whether nothing is recorded (no flush pending, nothing deferred).
    pub fn is_empty(&self) -> bool {
        self.npages == 0 && !self.whole && self.ndeferred == 0
    }

    /// Issues the recorded flushes (if any) on every hart of the target, then passes each
    /// deferred item to `release`, then empties the batch.
    pub fn flush(&mut self, mut release: impl FnMut(D)) {
        self.issue();
        for slot in &self.deferred[..self.ndeferred] {
            // SAFETY: slots below `ndeferred` were written by `defer`.
            release(unsafe { slot.assume_init() });
        }
        self.ndeferred = 0;
    }

    /// The pages recorded so far.
    fn recorded(&self) -> &[VirtAddr] {
        let init = &self.pages[..self.npages];
        // SAFETY: slots below `npages` were written by `flush_page` or `flush_range`, and
        // `MaybeUninit<VirtAddr>` has the layout of `VirtAddr`.
        unsafe { &*(init as *const [MaybeUninit<VirtAddr>] as *const [VirtAddr]) }
    }

    fn issue(&mut self) {
        if self.npages == 0 && !self.whole {
            return;
        }
        let asid = self.target.asid();
        let flush = match (self.whole, asid) {
            (false, asid) => Flush::Pages {
                asid,
                pages: self.recorded(),
            },
            (true, Some(asid)) => Flush::Asid(asid),
            (true, None) => Flush::All,
        };
        self.tlb.flush_harts(&self.target.harts(), &flush);
        self.npages = 0;
        self.whole = false;
    }
}

impl<T: TlbOps + ?Sized, D: Copy> Drop for FlushBatch<'_, T, D> {
    fn drop(&mut self) {
        debug_assert_eq!(
            self.ndeferred, 0,
            "FlushBatch dropped holding deferred frees"
        );
        self.issue();
    }
}
