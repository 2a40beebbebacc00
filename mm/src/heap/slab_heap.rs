//! [`SlabHeap`]: per-hart object caches in front of per-class slab depots, over a page
//! source.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::marker::PhantomData;
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use spin::Mutex;

use super::class::{
    CLASS_ALIGN, CLASS_SIZES, HART_CACHE_BYTES, HART_SLOTS, MAGAZINE_BASE, MAGAZINE_BATCH,
    MAGAZINE_LIMIT, NUM_CLASSES, PAGE_CLASS, SLAB_ORDER, class_of, large_order,
};
use super::slab::{Depot, PageMeter};
use super::source::PageSource;
use super::stats::{CacheStats, HeapStats};
use crate::addr::PAGE_SIZE;
use crate::cpu::CpuLocal;

/// The per-hart caches of one hart, on their own cache lines: for each class a stack of
/// free objects, `slots[MAGAZINE_BASE[c]..][..counts[c]]`.
///
/// Only the owning hart, pinned, reads or writes `slots` and writes `counts` and `bytes`;
/// those are atomics only so that statistics may read them from another hart (relaxed
/// loads and stores compile to plain moves).
#[repr(align(64))]
struct HartCache {
    /// Bytes of all cached objects together (`counts[c] * CLASS_SIZES[c]` summed).
    bytes: AtomicUsize,
    counts: [AtomicUsize; NUM_CLASSES],
    slots: UnsafeCell<[*mut u8; HART_SLOTS]>,
    /// Set while a pinned operation runs on this hart's caches: catches a broken
    /// [`CpuLocal`] implementation (re-entry from an interrupt, two threads with one id).
    #[cfg(debug_assertions)]
    busy: core::sync::atomic::AtomicBool,
}

impl HartCache {
    const fn new() -> Self {
        Self {
            bytes: AtomicUsize::new(0),
            counts: [const { AtomicUsize::new(0) }; NUM_CLASSES],
            slots: UnsafeCell::new([ptr::null_mut(); HART_SLOTS]),
            #[cfg(debug_assertions)]
            busy: core::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Class `c`'s magazine: all its slots, of which the first `counts[c]` hold objects.
    ///
    /// # Safety
    /// The caller is pinned to this cache's hart (or otherwise alone on it) and holds no
    /// other reference into `slots`.
    #[inline(always)]
    #[allow(clippy::mut_from_ref)]
    unsafe fn magazine(&self, c: usize) -> &mut [*mut u8] {
        // SAFETY: exclusive use by the caller's promise.
        let all = unsafe { &mut *self.slots.get() };
        &mut all[MAGAZINE_BASE[c]..MAGAZINE_BASE[c] + MAGAZINE_LIMIT[c]]
    }

    #[cfg(debug_assertions)]
    fn enter(&self) -> Entered<'_> {
        use core::sync::atomic::Ordering::Acquire;
        assert!(
            !self.busy.swap(true, Acquire),
            "CpuLocal contract broken: a hart cache was re-entered"
        );
        Entered(&self.busy)
    }

    #[cfg(not(debug_assertions))]
    #[inline(always)]
    fn enter(&self) -> Entered<'_> {
        Entered(PhantomData)
    }
}

/// Ends the debug re-entry check when dropped.
#[cfg(debug_assertions)]
struct Entered<'a>(&'a core::sync::atomic::AtomicBool);

#[cfg(debug_assertions)]
impl Drop for Entered<'_> {
    fn drop(&mut self) {
        self.0.store(false, core::sync::atomic::Ordering::Release);
    }
}

/// Release builds keep no re-entry flag.
#[cfg(not(debug_assertions))]
struct Entered<'a>(PhantomData<&'a ()>);

/// One class's depot behind its lock, alone on its cache lines.
#[repr(align(64))]
struct ClassLock<const HARTS: usize>(Mutex<Depot<HARTS>>);

/// The kernel heap: size classes from 8 bytes to one page, per-hart caches, slabs from a
/// [`PageSource`], and large requests straight from the page source.
///
/// - `P` supplies pages; `C` names the running hart; `HARTS` is how many harts get a
///   per-hart cache (harts with a larger id, and [`Unpinned`](crate::cpu::Unpinned) callers, use
///   the shared, locked path: correct, only slower).
/// - [`alloc`](Self::alloc) returns null when memory runs out; it never panics.
/// - Every `Layout` with `align <= 4096` is honoured by a class (see [`class_of`]); larger
///   sizes or alignments get a naturally aligned block of `2^order` pages whose size covers
///   both.
///
/// The type is `Sync`: use it as a `static` and as the kernel's `#[global_allocator]`.
pub struct SlabHeap<P, C, const HARTS: usize> {
    source: P,
    depots: [ClassLock<HARTS>; PAGE_CLASS],
    harts: [HartCache; HARTS],
    /// Pages handed out by the page class (to callers or to per-hart caches), and its peak.
    page_out: AtomicUsize,
    page_peak: AtomicUsize,
    large_allocs: AtomicUsize,
    large_pages: AtomicUsize,
    failed: AtomicUsize,
    meter: PageMeter,
    _cpu: PhantomData<fn() -> C>,
}

// SAFETY: depots are behind locks, counters are atomics, and each hart's caches are touched
// only by the context pinned to that hart (the `CpuLocal` contract) or under the exclusive
// access promised to `drain_all_cpu_caches`. The pointers they hold are heap objects, owned
// by the heap, not tied to a thread. `P: Sync` because every hart calls the source.
unsafe impl<P: Sync, C, const HARTS: usize> Sync for SlabHeap<P, C, HARTS> {}
// SAFETY: as above: nothing in the heap is tied to the thread that created it.
unsafe impl<P: Send, C, const HARTS: usize> Send for SlabHeap<P, C, HARTS> {}

/// One depot per slab class, each for its own class.
const fn depots<const HARTS: usize>() -> [ClassLock<HARTS>; PAGE_CLASS] {
    let mut out = [const { ClassLock(Mutex::new(Depot::new(0))) }; PAGE_CLASS];
    let mut c = 1;
    while c < PAGE_CLASS {
        out[c] = ClassLock(Mutex::new(Depot::new(c)));
        c += 1;
    }
    out
}

impl<P: PageSource, C: CpuLocal, const HARTS: usize> SlabHeap<P, C, HARTS> {
    /// A heap that takes its pages from `source`; no page is taken before the first
    /// allocation, so this can initialise a `static`.
    pub const fn new(source: P) -> Self {
        Self {
            source,
            depots: depots(),
            harts: [const { HartCache::new() }; HARTS],
            page_out: AtomicUsize::new(0),
            page_peak: AtomicUsize::new(0),
            large_allocs: AtomicUsize::new(0),
            large_pages: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            meter: PageMeter::new(),
            _cpu: PhantomData,
        }
    }

    /// The page source.
    pub fn source(&self) -> &P {
        &self.source
    }

    /// Allocates memory for `layout`; null when the page source cannot supply it. A zero
    /// size is served like a size of one byte (a distinct, freeable pointer).
    #[inline]
    pub fn alloc(&self, layout: Layout) -> *mut u8 {
        match class_of(layout.size(), layout.align()) {
            Some(c) => self.alloc_class(c),
            None => self.alloc_large(layout.size(), layout.align()),
        }
    }

    /// Frees memory obtained from [`alloc`](Self::alloc).
    ///
    /// Checked cheaply in every build: a null pointer, or one not aligned as its class or
    /// block would be, is refused and counted in [`HeapStats::rejected_frees`]. A pointer
    /// into a slab of another class, or an object that was not handed out, is refused the
    /// same way when the object reaches its slab (in debug builds at once, with a panic,
    /// together with a check for a double free still in the hart's cache). Other misuse is
    /// not detected.
    ///
    /// # Safety
    ///
    /// `ptr` came from `alloc` (or [`GlobalAlloc::alloc`]) of this heap with this same
    /// `layout`, and is not used after this call.
    #[inline]
    pub unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        match class_of(layout.size(), layout.align()) {
            // SAFETY: the caller's promise.
            Some(c) => unsafe { self.free_class(ptr, c) },
            // SAFETY: the caller's promise.
            None => unsafe { self.free_large(ptr, layout.size(), layout.align()) },
        }
    }

    /// Allocates one object of class `c` (an index into [`CLASS_SIZES`]).
    #[inline]
    pub(crate) fn alloc_class(&self, c: usize) -> *mut u8 {
        let (hart, _pin) = C::pin();
        let Some(h) = self.harts.get(hart) else {
            let mut one = [ptr::null_mut()];
            if self.fetch(c, hart, &mut one) == 0 {
                self.failed.fetch_add(1, Relaxed);
            }
            return one[0];
        };
        let _entered = h.enter();
        let count = &h.counts[c];
        // SAFETY: pinned to `hart`, so this context alone uses the hart's slots.
        let slots = unsafe { h.magazine(c) };
        let n = count.load(Relaxed);
        if n > 0 {
            count.store(n - 1, Relaxed);
            h.bytes
                .store(h.bytes.load(Relaxed) - CLASS_SIZES[c], Relaxed);
            return slots[n - 1];
        }
        let got = self.fetch(c, hart, &mut slots[..MAGAZINE_BATCH[c]]);
        if got == 0 {
            self.failed.fetch_add(1, Relaxed);
            return ptr::null_mut();
        }
        count.store(got - 1, Relaxed);
        h.bytes
            .store(h.bytes.load(Relaxed) + (got - 1) * CLASS_SIZES[c], Relaxed);
        slots[got - 1]
    }

    /// Frees one object of class `c`.
    ///
    /// # Safety
    /// As [`dealloc`](Self::dealloc), for a layout of class `c`.
    #[inline]
    pub(crate) unsafe fn free_class(&self, ptr: *mut u8, c: usize) {
        if ptr.is_null() || ptr as usize & (CLASS_ALIGN[c] - 1) != 0 {
            self.reject();
            return;
        }
        #[cfg(debug_assertions)]
        if c != PAGE_CLASS {
            // SAFETY: the caller's promise makes `ptr` a pointer into one of our slabs.
            let known = unsafe { self.depots[c].0.lock().header_of(ptr) };
            assert!(
                known.is_some(),
                "heap: free of {ptr:p} that is not a live object of the {}-byte class",
                CLASS_SIZES[c]
            );
        }
        let (hart, _pin) = C::pin();
        let Some(h) = self.harts.get(hart) else {
            // SAFETY: the caller's promise.
            unsafe { self.give_back(c, hart, &[ptr]) };
            return;
        };
        let _entered = h.enter();
        let count = &h.counts[c];
        // SAFETY: pinned to `hart`, so this context alone uses the hart's slots.
        let slots = unsafe { h.magazine(c) };
        let n = count.load(Relaxed);
        debug_assert!(!slots[..n].contains(&ptr), "heap: double free of {ptr:p}");
        if n < slots.len() {
            slots[n] = ptr;
            count.store(n + 1, Relaxed);
            let bytes = h.bytes.load(Relaxed) + CLASS_SIZES[c];
            h.bytes.store(bytes, Relaxed);
            if bytes > HART_CACHE_BYTES {
                // SAFETY: pinned to `hart`; `slots` is not used after this.
                unsafe { self.halve_hart(hart, h) };
            }
            return;
        }
        // Full: the oldest half goes back to the depot, the rest moves down.
        let batch = MAGAZINE_BATCH[c];
        // SAFETY: the objects in a magazine are free objects of class `c`.
        unsafe { self.give_back(c, hart, &slots[..batch]) };
        slots.copy_within(batch..n, 0);
        slots[n - batch] = ptr;
        count.store(n - batch + 1, Relaxed);
        h.bytes.store(
            h.bytes.load(Relaxed) - (batch - 1) * CLASS_SIZES[c],
            Relaxed,
        );
    }

    /// Gives the oldest half (rounded up) of every magazine of `h` back to the depots:
    /// called when the hart's caches together exceed [`HART_CACHE_BYTES`].
    ///
    /// # Safety
    /// The caller is pinned to `h`'s hart (or otherwise alone on it) and holds no reference
    /// into its slots.
    #[cold]
    unsafe fn halve_hart(&self, hart: usize, h: &HartCache) {
        let mut bytes = 0;
        for (c, count) in h.counts.iter().enumerate() {
            let n = count.load(Relaxed);
            if n == 0 {
                continue;
            }
            let give = n.div_ceil(2);
            // SAFETY: exclusive use of `h` by the caller's promise.
            let slots = unsafe { h.magazine(c) };
            // SAFETY: the first `n` slots are free objects of class `c`.
            unsafe { self.give_back(c, hart, &slots[..give]) };
            slots.copy_within(give..n, 0);
            count.store(n - give, Relaxed);
            bytes += (n - give) * CLASS_SIZES[c];
        }
        h.bytes.store(bytes, Relaxed);
    }

    fn reject(&self) {
        self.meter.rejected.fetch_add(1, Relaxed);
    }

    /// Takes up to `out.len()` objects of class `c` from the shared layer for hart `hart`
    /// (any id at or above `HARTS` for a caller without a hart cache); returns how many.
    fn fetch(&self, c: usize, hart: usize, out: &mut [*mut u8]) -> usize {
        if c != PAGE_CLASS {
            return self.depots[c]
                .0
                .lock()
                .take(hart, &self.source, &self.meter, out);
        }
        let mut n = 0;
        for slot in out.iter_mut() {
            match self.source.alloc_pages(0) {
                Some(p) => *slot = p.as_ptr(),
                None => break,
            }
            n += 1;
        }
        if n > 0 {
            self.meter.take(n);
            let now = self.page_out.fetch_add(n, Relaxed) + n;
            self.page_peak.fetch_max(now, Relaxed);
        }
        n
    }

    /// Gives free objects of class `c` back to the shared layer, from hart `hart`.
    ///
    /// # Safety
    /// Each pointer is a free object of class `c` of this heap (or is refused by the depot's
    /// checks, see [`dealloc`](Self::dealloc)); page-class pointers are page aligned.
    unsafe fn give_back(&self, c: usize, hart: usize, objs: &[*mut u8]) {
        if c != PAGE_CLASS {
            // SAFETY: the caller's promise.
            unsafe {
                self.depots[c]
                    .0
                    .lock()
                    .give(hart, &self.source, &self.meter, objs)
            };
            return;
        }
        for &p in objs {
            // SAFETY: a page-class object is a non-null order-0 block of `source`.
            unsafe { self.source.free_pages(NonNull::new_unchecked(p), 0) };
        }
        self.meter.give(objs.len());
        self.page_out.fetch_sub(objs.len(), Relaxed);
    }

    fn alloc_large(&self, size: usize, align: usize) -> *mut u8 {
        let block = large_order(size, align).and_then(|o| Some((o, self.source.alloc_pages(o)?)));
        let Some((order, p)) = block else {
            self.failed.fetch_add(1, Relaxed);
            return ptr::null_mut();
        };
        self.large_allocs.fetch_add(1, Relaxed);
        self.large_pages.fetch_add(1 << order, Relaxed);
        self.meter.take(1 << order);
        p.as_ptr()
    }

    /// # Safety
    /// As [`dealloc`](Self::dealloc), for a layout above every class.
    unsafe fn free_large(&self, ptr: *mut u8, size: usize, align: usize) {
        let Some(order) = large_order(size, align) else {
            self.reject();
            return;
        };
        let Some(p) =
            NonNull::new(ptr).filter(|p| p.as_ptr() as usize & ((PAGE_SIZE << order) - 1) == 0)
        else {
            self.reject();
            return;
        };
        // SAFETY: by the caller's promise `p` is the block `alloc_large` took with this order.
        unsafe { self.source.free_pages(p, order) };
        self.large_allocs.fetch_sub(1, Relaxed);
        self.large_pages.fetch_sub(1 << order, Relaxed);
        self.meter.give(1 << order);
    }

    /// Empties one hart's caches into the depots.
    ///
    /// # Safety
    /// No other context uses `h` meanwhile.
    unsafe fn drain_hart(&self, hart: usize, h: &HartCache) {
        for (c, count) in h.counts.iter().enumerate() {
            let n = count.load(Relaxed);
            // SAFETY: exclusive use of `h` by the caller's promise; the first `n` slots are
            // free objects of class `c`.
            unsafe { self.give_back(c, hart, &h.magazine(c)[..n]) };
            count.store(0, Relaxed);
        }
        h.bytes.store(0, Relaxed);
    }

    /// Gives the calling hart's cached free objects back to their slabs.
    pub fn drain_cpu_cache(&self) {
        let (hart, _pin) = C::pin();
        if let Some(h) = self.harts.get(hart) {
            let _entered = h.enter();
            // SAFETY: pinned to `hart`.
            unsafe { self.drain_hart(hart, h) };
        }
    }

    /// Gives every hart's cached free objects back to their slabs.
    ///
    /// # Safety
    ///
    /// No other context allocates from or frees to this heap during the call (all other
    /// harts are stopped or known idle, e.g. in a test after joining its threads). In a
    /// running kernel, ask each hart to call [`drain_cpu_cache`](Self::drain_cpu_cache)
    /// instead.
    pub unsafe fn drain_all_cpu_caches(&self) {
        for (hart, h) in self.harts.iter().enumerate() {
            // SAFETY: nobody else uses the heap, by the caller's promise.
            unsafe { self.drain_hart(hart, h) };
        }
    }

    /// Gives back all the calling hart can: its cached objects go back to their slabs,
    /// and every kept empty slab goes back to the page source. Returns the number of
    /// pages given back by the reserve (slabs emptied by the drain count too, since they
    /// pass through it).
    ///
    /// Cheap when there is little to do (one pass over the hart's class counts, one lock
    /// per class with cached objects, and the reserve's lock). The kernel calls it on each
    /// hart when the hart goes idle and before reporting memory statistics; afterwards the
    /// heap holds only slabs with live objects in them, the other harts' caches and large
    /// blocks.
    pub fn trim(&self) -> usize {
        self.drain_cpu_cache();
        self.meter.release_reserve(&self.source)
    }

    /// The same as [`trim`](Self::trim).
    pub fn reclaim(&self) -> usize {
        self.trim()
    }

    /// Counters of class `c` (an index into [`CLASS_SIZES`]); `None` if there is no such
    /// class.
    pub fn cache_stats(&self, c: usize) -> Option<CacheStats> {
        let size = *CLASS_SIZES.get(c)?;
        let cached: usize = self.harts.iter().map(|h| h.counts[c].load(Relaxed)).sum();
        let stats = if c == PAGE_CLASS {
            let out = self.page_out.load(Relaxed);
            let peak = self.page_peak.load(Relaxed);
            CacheStats {
                object_size: size,
                objects_in_use: out.saturating_sub(cached),
                objects_cached: cached,
                objects_peak: peak,
                slabs: out,
                pages: out,
                pages_peak: peak,
            }
        } else {
            let d = self.depots[c].0.lock().counts();
            CacheStats {
                object_size: size,
                objects_in_use: d.out.saturating_sub(cached),
                objects_cached: cached,
                objects_peak: d.peak_out,
                slabs: d.slabs,
                pages: d.slabs << SLAB_ORDER[c],
                pages_peak: d.peak_slabs << SLAB_ORDER[c],
            }
        };
        Some(stats)
    }

    /// A snapshot of all counters (exact when no other hart uses the heap meanwhile).
    pub fn stats(&self) -> HeapStats {
        let mut classes = [CacheStats::default(); NUM_CLASSES];
        for (c, s) in classes.iter_mut().enumerate() {
            *s = self.cache_stats(c).unwrap_or_default();
        }
        HeapStats {
            classes,
            large_allocations: self.large_allocs.load(Relaxed),
            large_pages: self.large_pages.load(Relaxed),
            pages_held: self.meter.held.load(Relaxed),
            reserve_pages: self.meter.reserve_pages(),
            pages_peak: self.meter.peak.load(Relaxed),
            failed_allocations: self.failed.load(Relaxed),
            rejected_frees: self.meter.rejected.load(Relaxed),
        }
    }
}

/// Whether a block for `old` can also serve `new_size` at the same alignment: same class,
/// or same page-source order.
fn same_home(old: Layout, new_size: usize) -> bool {
    let align = old.align();
    match (class_of(old.size(), align), class_of(new_size, align)) {
        (Some(a), Some(b)) => a == b,
        (None, None) => large_order(old.size(), align) == large_order(new_size, align),
        _ => false,
    }
}

// SAFETY: `alloc` returns null or a block of at least `layout.size()` bytes aligned to
// `layout.align()` that no other live allocation overlaps; `dealloc` takes it back;
// `realloc` keeps the block when its class or order also fits the new size.
unsafe impl<P: PageSource, C: CpuLocal, const HARTS: usize> GlobalAlloc for SlabHeap<P, C, HARTS> {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        SlabHeap::alloc(self, layout)
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `GlobalAlloc`'s contract is the one `SlabHeap::dealloc` asks for.
        unsafe { SlabHeap::dealloc(self, ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if same_home(layout, new_size) {
            return ptr;
        }
        let Ok(new_layout) = Layout::from_size_align(new_size, layout.align()) else {
            return ptr::null_mut();
        };
        let new = SlabHeap::alloc(self, new_layout);
        if !new.is_null() {
            // SAFETY: both blocks are live, distinct, and at least this long.
            unsafe {
                ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                SlabHeap::dealloc(self, ptr, layout);
            }
        }
        new
    }
}
