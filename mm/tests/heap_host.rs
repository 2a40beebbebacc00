//! Host tests of the slab heap: class boundaries, alignment, exhaustion and recovery,
//! misuse detection, typed caches, a model-based property test, and a multi-threaded
//! stress test. Pages come from the standard allocator through a counting page source.

#[path = "support/cases.rs"]
mod cases;
use std::alloc::{GlobalAlloc, Layout};
use std::collections::BTreeMap;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

use pagoda_mm::addr::PAGE_SIZE;
use pagoda_mm::cpu::Unpinned;
use pagoda_mm::heap::{
    CLASS_SIZES, CacheBox, EMPTY_RESERVE_PAGES, MAX_CLASS_SIZE, NUM_CLASSES, ObjectCache,
    PageSource, SlabHeap, class_of, slab_pages_of,
};
use proptest::prelude::*;

/// Page source over `std::alloc`, counting what is out, with an optional page limit.
struct StdPages {
    pages_out: AtomicUsize,
    blocks_out: AtomicUsize,
    limit: usize,
}

impl StdPages {
    fn new() -> Self {
        Self::limited(usize::MAX)
    }
    fn limited(pages: usize) -> Self {
        Self {
            pages_out: AtomicUsize::new(0),
            blocks_out: AtomicUsize::new(0),
            limit: pages,
        }
    }
    /// The std layout of a block of `2^order` pages; `None` if it cannot exist.
    fn layout(order: usize) -> Option<Layout> {
        let bytes = PAGE_SIZE
            .checked_shl(order as u32)
            .filter(|b| b.trailing_zeros() as usize == order + 12)?;
        Layout::from_size_align(bytes, bytes).ok()
    }
    fn pages_out(&self) -> usize {
        self.pages_out.load(SeqCst)
    }
}

// SAFETY: blocks come from `std::alloc` with size and alignment `PAGE_SIZE << order`, and
// the standard allocator is thread safe and does not use the heap under test.
unsafe impl PageSource for StdPages {
    fn alloc_pages(&self, order: usize) -> Option<NonNull<u8>> {
        let l = Self::layout(order)?;
        let pages = 1 << order;
        let prev = self.pages_out.fetch_add(pages, SeqCst);
        if prev.saturating_add(pages) > self.limit {
            self.pages_out.fetch_sub(pages, SeqCst);
            return None;
        }
        // SAFETY: non-zero size.
        let p = NonNull::new(unsafe { std::alloc::alloc(l) });
        match p {
            Some(_) => self.blocks_out.fetch_add(1, SeqCst),
            None => self.pages_out.fetch_sub(pages, SeqCst),
        };
        p
    }

    unsafe fn free_pages(&self, ptr: NonNull<u8>, order: usize) {
        let l = Self::layout(order).expect("a block of this order was allocated");
        // SAFETY: allocated above with this layout.
        unsafe { std::alloc::dealloc(ptr.as_ptr(), l) };
        self.pages_out.fetch_sub(1 << order, SeqCst);
        self.blocks_out.fetch_sub(1, SeqCst);
    }
}

#[path = "support/hart.rs"]
mod hart_support;
use hart_support::{ThreadHart, set_hart};

const HARTS: usize = 4;
type Heap = SlabHeap<StdPages, ThreadHart, HARTS>;

fn heap_with(src: StdPages) -> Box<Heap> {
    Box::new(SlabHeap::new(src))
}

fn layout(size: usize, align: usize) -> Layout {
    Layout::from_size_align(size, align).unwrap()
}

/// Fills an object with a pattern derived from `tag`.
fn fill(p: *mut u8, size: usize, tag: u8) {
    // SAFETY: the object is live and `size` bytes long.
    unsafe { std::ptr::write_bytes(p, tag, size) };
}

/// Checks the pattern written by `fill`.
fn check(p: *mut u8, size: usize, tag: u8) {
    // SAFETY: the object is live and `size` bytes long.
    let bytes = unsafe { std::slice::from_raw_parts(p, size) };
    assert!(
        bytes.iter().all(|&b| b == tag),
        "object {p:p} ({size} B) overwritten"
    );
}

/// Drains every hart, reclaims, and asserts the heap and its source hold nothing.
fn assert_all_returned(heap: &Heap) {
    // SAFETY: the calling test has joined every thread that used `heap`.
    unsafe { heap.drain_all_cpu_caches() };
    heap.reclaim();
    let s = heap.stats();
    assert!(s.is_empty(), "heap not empty: {s:#?}");
    assert_eq!(heap.source().pages_out(), 0);
    assert_eq!(heap.source().blocks_out.load(SeqCst), 0);
}

#[test]
fn class_edges_and_alignments() {
    let heap = heap_with(StdPages::new());
    let mut live = Vec::new();
    let mut sizes: Vec<usize> = vec![1, 2, 7, MAX_CLASS_SIZE + 1, 8192, 8193, 16 * 1024, 100_000];
    for &s in &CLASS_SIZES {
        sizes.extend([s - 1, s, s + 1]);
    }
    for (i, &size) in sizes.iter().enumerate() {
        for shift in 0..=12 {
            let l = layout(size, 1 << shift);
            let p = heap.alloc(l);
            assert!(!p.is_null(), "{l:?}");
            assert_eq!(p as usize % l.align(), 0, "{l:?}");
            fill(p, size, i as u8);
            live.push((p, l, i as u8));
        }
    }
    let s = heap.stats();
    assert_eq!(s.live_allocations(), live.len());
    let class_bytes: usize = live
        .iter()
        .map(|(_, l, _)| match class_of(l.size(), l.align()) {
            Some(c) => CLASS_SIZES[c],
            None => PAGE_SIZE * l.size().div_ceil(PAGE_SIZE).next_power_of_two(),
        })
        .sum();
    assert_eq!(s.bytes_in_use(), class_bytes);
    for (p, l, tag) in live {
        check(p, l.size(), tag);
        // SAFETY: allocated above with `l`.
        unsafe { heap.dealloc(p, l) };
    }
    assert_eq!(heap.stats().live_allocations(), 0);
    assert_all_returned(&heap);
}

#[test]
fn size_class_picks_by_size_then_alignment() {
    let heap = heap_with(StdPages::new());
    for (c, &s) in CLASS_SIZES.iter().enumerate() {
        for size in [s, s.saturating_sub(7).max(1)] {
            let p = heap.alloc(layout(size, 1));
            assert_eq!(
                heap.cache_stats(c).unwrap().objects_in_use,
                1,
                "size {size}"
            );
            // SAFETY: allocated just above.
            unsafe { heap.dealloc(p, layout(size, 1)) };
            assert_eq!(heap.cache_stats(c).unwrap().objects_in_use, 0);
        }
    }
    // 48 bytes aligned to 32 skip the 48-byte class (aligned to 16) for 64.
    assert_eq!(class_of(48, 32).map(|c| CLASS_SIZES[c]), Some(64));
    // 600 bytes aligned to 128 skip 640 and 704 (aligned to 128 and 64: 640 qualifies).
    assert_eq!(class_of(600, 128).map(|c| CLASS_SIZES[c]), Some(640));
    assert_eq!(class_of(600, 256).map(|c| CLASS_SIZES[c]), Some(768));
    assert_eq!(class_of(2100, 8).map(|c| CLASS_SIZES[c]), Some(2112));
    assert_eq!(class_of(100, 4096), Some(NUM_CLASSES - 1));
    assert!(heap.cache_stats(NUM_CLASSES).is_none());
    assert_all_returned(&heap);
}

#[test]
fn exhaustion_returns_null_and_recovers() {
    let heap = heap_with(StdPages::limited(64));
    for l in [
        layout(24, 8),
        layout(2048, 2048),
        layout(4096, 4096),
        layout(40_000, 8),
    ] {
        let mut live = Vec::new();
        loop {
            let p = heap.alloc(l);
            if p.is_null() {
                break;
            }
            fill(p, l.size(), 0x5a);
            live.push(p);
        }
        assert!(!live.is_empty(), "{l:?}");
        assert!(heap.source().pages_out() <= 64);
        assert!(heap.stats().failed_allocations > 0);
        for p in live.drain(..) {
            check(p, l.size(), 0x5a);
            // SAFETY: allocated above with `l`.
            unsafe { heap.dealloc(p, l) };
        }
        heap.reclaim();
        assert_eq!(heap.source().pages_out(), 0, "{l:?}");
        // Recovery: the same request works again.
        let p = heap.alloc(l);
        assert!(!p.is_null());
        // SAFETY: allocated just above.
        unsafe { heap.dealloc(p, l) };
        heap.reclaim();
    }
    assert!(
        heap.alloc(layout(1 << 20, 8)).is_null(),
        "more than the limit must fail"
    );
    assert_all_returned(&heap);
}

/// The slab (its base address) holding `p`, for objects of layout `l`.
fn slab_of(p: *mut u8, l: Layout) -> usize {
    let bytes = slab_pages_of(l).expect("a slab class") * PAGE_SIZE;
    p as usize & !(bytes - 1)
}

/// Regression test (two threads on one heap ran slower than one): harts that allocate the
/// same class at the same time draw from slabs of their own, so their objects never share
/// a slab (nor, therefore, a cache line), however their refills interleave.
#[test]
fn harts_draw_from_slabs_of_their_own() {
    let heap = heap_with(StdPages::new());
    let l = layout(64, 8);
    let mut live: [Vec<*mut u8>; 2] = [Vec::new(), Vec::new()];
    for round in 0..200 {
        for (hart, objs) in live.iter_mut().enumerate() {
            set_hart(hart);
            for _ in 0..7 {
                objs.push(heap.alloc(l));
            }
            // Free some of the older ones again, so that slabs go partial and refill.
            if round % 3 == 2 {
                for _ in 0..10 {
                    let p = objs.swap_remove(objs.len() / 2);
                    // SAFETY: allocated above with `l`, freed once.
                    unsafe { heap.dealloc(p, l) };
                }
            }
        }
    }
    let slabs = |objs: &[*mut u8]| -> std::collections::BTreeSet<usize> {
        objs.iter().map(|&p| slab_of(p, l)).collect()
    };
    let (a, b) = (slabs(&live[0]), slabs(&live[1]));
    assert!(a.is_disjoint(&b), "harts 0 and 1 share slabs");
    for (hart, objs) in live.iter_mut().enumerate() {
        set_hart(hart);
        for p in objs.drain(..) {
            // SAFETY: allocated above with `l`, freed once.
            unsafe { heap.dealloc(p, l) };
        }
    }
    set_hart(0);
    assert_all_returned(&heap);
}

/// Affinity never costs an allocation: when the page source is dry, a hart takes free
/// objects from slabs on another hart's list rather than failing.
#[test]
fn a_dry_source_lets_a_hart_use_another_harts_slabs() {
    let l = layout(512, 8);
    let pages = slab_pages_of(l).unwrap();
    let heap = heap_with(StdPages::limited(pages));
    set_hart(0);
    let mut objs = Vec::new();
    loop {
        let p = heap.alloc(l);
        if p.is_null() {
            break;
        }
        objs.push(p);
    }
    let all = objs.len();
    // Give every object back but one to hart 0's slab, then ask on hart 1.
    for p in objs.drain(..) {
        // SAFETY: allocated above with `l`, freed once.
        unsafe { heap.dealloc(p, l) };
    }
    // One object stays out on hart 0 (and none in its cache), so the slab stays partial
    // on hart 0's list.
    let keep = heap.alloc(l);
    assert!(!keep.is_null());
    heap.drain_cpu_cache();
    set_hart(1);
    while objs.len() + 1 < all {
        let p = heap.alloc(l);
        assert!(
            !p.is_null(),
            "hart 1 failed with free objects in hart 0's slab"
        );
        objs.push(p);
    }
    assert_eq!(
        heap.source().pages_out(),
        pages,
        "no second slab was needed"
    );
    for p in objs.drain(..) {
        // SAFETY: allocated above with `l`, freed once.
        unsafe { heap.dealloc(p, l) };
    }
    set_hart(0);
    // SAFETY: allocated above with `l`, freed once.
    unsafe { heap.dealloc(keep, l) };
    assert_all_returned(&heap);
}

#[test]
fn large_requests_use_whole_blocks() {
    let heap = heap_with(StdPages::new());
    let cases = [
        (4097, 8, 2),
        (8192, 4096, 2),
        (8193, 8, 4),
        (100, 8192, 2),
        (5000, 16384, 4),
        (1 << 20, 8, 256),
    ];
    for (size, align, pages) in cases {
        let l = layout(size, align);
        let p = heap.alloc(l);
        assert_eq!(p as usize % align, 0);
        assert_eq!(heap.stats().large_pages, pages, "{l:?}");
        assert_eq!(heap.stats().large_allocations, 1);
        fill(p, size, 7);
        // SAFETY: allocated above with `l`.
        unsafe { heap.dealloc(p, l) };
        assert_eq!(heap.stats().large_pages, 0);
    }
    assert!(heap.alloc(layout(isize::MAX as usize - 4096, 8)).is_null());
    assert!(heap.stats().pages_peak >= 256);
    assert_all_returned(&heap);
}

#[test]
fn misaligned_and_null_frees_are_refused() {
    let heap = heap_with(StdPages::new());
    let p = heap.alloc(layout(64, 8));
    // SAFETY: these calls break the contract on purpose; the heap refuses them before
    // touching anything.
    unsafe {
        heap.dealloc(p.wrapping_add(8), layout(64, 8));
        heap.dealloc(std::ptr::null_mut(), layout(64, 8));
        heap.dealloc(p.wrapping_add(8), layout(9000, 8));
        heap.dealloc(p, layout(64, 8));
    }
    assert_eq!(heap.stats().rejected_frees, 3);
    assert_all_returned(&heap);
}

/// A free naming the wrong class: caught at once in debug builds, and when the object
/// reaches the slab layer in release builds (then leaked rather than misfiled).
#[test]
#[cfg_attr(debug_assertions, should_panic(expected = "not a live object"))]
fn wrong_class_free_is_detected() {
    let heap = heap_with(StdPages::new());
    let p = heap.alloc(layout(64, 8));
    // SAFETY: wrong layout on purpose; the object's slab stays readable.
    unsafe { heap.dealloc(p, layout(32, 8)) };
    // SAFETY: single-threaded test.
    unsafe { heap.drain_all_cpu_caches() };
    let s = heap.stats();
    assert_eq!(s.rejected_frees, 1);
    assert_eq!(s.live_allocations(), 1);
}

#[test]
fn empty_slabs_return_beyond_reserve_and_on_trim() {
    let heap = heap_with(StdPages::new());
    let l = layout(256, 8);
    let ptrs: Vec<_> = (0..2000).map(|_| heap.alloc(l)).collect();
    assert!(heap.source().pages_out() >= 2000 * 256 / PAGE_SIZE);
    for p in ptrs {
        // SAFETY: allocated above with `l`.
        unsafe { heap.dealloc(p, l) };
    }
    heap.drain_cpu_cache();
    let c = class_of(256, 8).unwrap();
    let s = heap.cache_stats(c).unwrap();
    assert_eq!(
        (s.objects_in_use, s.objects_cached, s.slabs),
        (0, 0, 0),
        "{s:?}"
    );
    assert!(s.pages_peak * PAGE_SIZE >= 2000 * 256);
    // Only the heap-wide reserve is left, and a trim gives it back.
    let st = heap.stats();
    assert!(
        st.reserve_pages > 0 && st.reserve_pages <= EMPTY_RESERVE_PAGES,
        "{st:?}"
    );
    assert_eq!(st.pages_held, st.reserve_pages);
    assert_eq!(heap.trim(), st.reserve_pages);
    assert_all_returned(&heap);
}

/// The reserve serves every class with the same slab order, and never exceeds its pages.
#[test]
fn reserve_is_shared_and_bounded() {
    let heap = heap_with(StdPages::new());
    set_hart(HARTS); // the shared path: no hart cache in the way
    for &size in &CLASS_SIZES[..NUM_CLASSES - 1] {
        let l = layout(size, 8);
        let ptrs: Vec<_> = (0..300).map(|_| heap.alloc(l)).collect();
        for p in ptrs {
            // SAFETY: allocated above with `l`.
            unsafe { heap.dealloc(p, l) };
        }
        let s = heap.stats();
        assert!(s.reserve_pages <= EMPTY_RESERVE_PAGES, "{size}: {s:?}");
        assert_eq!(s.pages_held, s.reserve_pages, "{size}");
    }
    // Two classes with one-page slabs: the slab the first one emptied serves the second.
    let (a, b) = (layout(8, 8), layout(16, 8));
    heap.trim();
    let p = heap.alloc(a);
    // SAFETY: allocated just above.
    unsafe { heap.dealloc(p, a) };
    let kept = heap.stats().reserve_pages;
    let q = heap.alloc(b);
    assert_eq!(heap.source().pages_out(), kept, "no new page taken");
    // SAFETY: allocated just above.
    unsafe { heap.dealloc(q, b) };
    set_hart(0);
    assert_all_returned(&heap);
}

#[test]
fn unpinned_callers_use_the_shared_path() {
    let heap: Box<SlabHeap<StdPages, Unpinned, 2>> = Box::new(SlabHeap::new(StdPages::new()));
    let l = layout(96, 32);
    let ptrs: Vec<_> = (0..500).map(|_| heap.alloc(l)).collect();
    assert_eq!(heap.stats().objects_cached(), 0);
    assert_eq!(heap.stats().live_allocations(), 500);
    for p in ptrs {
        // SAFETY: allocated above with `l`.
        unsafe { heap.dealloc(p, l) };
    }
    heap.reclaim();
    assert!(heap.stats().is_empty());
    assert_eq!(heap.source().pages_out(), 0);
}

#[test]
fn global_alloc_realloc_keeps_or_moves() {
    let heap = heap_with(StdPages::new());
    let l = layout(40, 8);
    // SAFETY: GlobalAlloc calls with valid layouts on blocks of this heap.
    unsafe {
        let p = GlobalAlloc::alloc(&*heap, l);
        fill(p, 40, 3);
        let q = heap.realloc(p, l, 48);
        assert_eq!(p, q, "40 and 48 share the 48-byte class");
        let r = heap.realloc(q, layout(48, 8), 5000);
        assert_ne!(r, q);
        check(r, 40, 3);
        let s = heap.realloc(r, layout(5000, 8), 7000);
        assert_eq!(r, s, "both need two pages");
        let t = heap.realloc(s, layout(7000, 8), 16);
        check(t, 16, 3);
        GlobalAlloc::dealloc(&*heap, t, layout(16, 8));
        let z = GlobalAlloc::alloc_zeroed(&*heap, layout(300, 8));
        check(z, 300, 0);
        GlobalAlloc::dealloc(&*heap, z, layout(300, 8));
    }
    assert_all_returned(&heap);
}

#[test]
fn object_cache_boxes_free_on_drop() {
    #[derive(Debug)]
    struct Vma {
        start: usize,
        end: usize,
        _flags: [u64; 5],
    }
    #[repr(align(4096))]
    struct PageTable([u64; 512]);
    struct Huge([u8; 20_000]);

    let heap = heap_with(StdPages::new());
    let vmas = ObjectCache::<Vma, _, _, HARTS>::new(&heap);
    let mut boxes: Vec<_> = (0..100)
        .map(|i| {
            vmas.alloc(Vma {
                start: i,
                end: i + 1,
                _flags: [0; 5],
            })
            .unwrap()
        })
        .collect();
    assert_eq!(
        vmas.stats().unwrap().object_size,
        56usize.next_multiple_of(8).max(64)
    );
    assert_eq!(vmas.stats().unwrap().objects_in_use, 100);
    boxes[3].end = 99;
    assert_eq!((boxes[3].start, boxes[3].end), (3, 99));
    assert!(format!("{:?}", boxes[3]).contains("99"));
    let raw = boxes.pop().unwrap().into_raw();
    assert_eq!(raw.as_ptr() as usize % align_of::<Vma>(), 0);
    drop(boxes);
    assert_eq!(vmas.stats().unwrap().objects_in_use, 1);
    // SAFETY: `raw` came from `into_raw` of a box of this heap.
    drop(unsafe { CacheBox::from_raw(raw, &*heap) });
    assert_eq!(vmas.stats().unwrap().objects_in_use, 0);

    let tables = ObjectCache::<PageTable, _, _, HARTS>::new(&heap);
    let t = tables.alloc(PageTable([0; 512])).ok().unwrap();
    assert_eq!(&*t as *const PageTable as usize % PAGE_SIZE, 0);
    assert_eq!(t.0[511], 0);
    assert_eq!(tables.stats().unwrap().object_size, PAGE_SIZE);
    drop(t);

    let huge = ObjectCache::<Huge, _, _, HARTS>::new(&heap);
    assert!(huge.stats().is_none());
    let h = huge.alloc(Huge([9; 20_000])).ok().unwrap();
    assert_eq!(heap.stats().large_allocations, 1);
    assert_eq!(h.0[19_999], 9);
    drop(h);
    assert_all_returned(&heap);
}

#[test]
fn object_cache_gives_value_back_when_out_of_memory() {
    let heap = heap_with(StdPages::limited(0));
    let cache = ObjectCache::<[u64; 4], _, _, HARTS>::new(&heap);
    assert_eq!(cache.alloc([1, 2, 3, 4]).err(), Some([1, 2, 3, 4]));
    assert_eq!(heap.stats().failed_allocations, 1);
}

/// One step of the model-based test.
#[derive(Debug, Clone)]
enum Op {
    Alloc { size: usize, align_shift: u32 },
    Free { index: usize },
    SwitchHart { hart: usize },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (0u32..15, 0usize..1 << 14, 0u32..13).prop_map(|(bits, r, align_shift)| {
            // Log-uniform sizes from 1 byte to 16 KiB.
            Op::Alloc { size: 1 + (r & ((1 << bits) - 1)), align_shift }
        }),
        4 => any::<usize>().prop_map(|index| Op::Free { index }),
        1 => (0usize..HARTS + 1).prop_map(|hart| Op::SwitchHart { hart }),
    ]
}

/// Live objects never overlap: checked against the neighbours in an address-ordered map.
fn assert_disjoint(map: &BTreeMap<usize, usize>, start: usize, end: usize) {
    if let Some((_, &prev_end)) = map.range(..start).next_back() {
        assert!(prev_end <= start, "overlap below {start:#x}");
    }
    if let Some((&next, _)) = map.range(start..).next() {
        assert!(end <= next, "overlap above {start:#x}");
    }
}

/// The classes of the fill target: a request never takes more than one step (1/8 from
/// 128 bytes, 1/16 from 1 KiB, 1/32 from 2 KiB) beyond its size, at alignment 8.
#[test]
fn rounding_is_bounded() {
    for size in 1..=MAX_CLASS_SIZE {
        let c = class_of(size, 8).unwrap();
        let got = CLASS_SIZES[c];
        let bound = match size {
            0..=127 => got, // small classes: 8 or 16 apart
            128..=1023 => size + size / 8,
            1024..=2047 => size + size / 16,
            _ => size + size / 32,
        };
        assert!(
            got <= bound.max(size.next_multiple_of(8)),
            "{size} -> {got}"
        );
        assert!(
            c == 0 || CLASS_SIZES[c - 1] < size,
            "{size} -> {got}: not the smallest"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases::cases(256)))]

    /// Any layout a class serves: the smallest class that fits size and alignment, and a
    /// real allocation of it is aligned, usable over its whole size, and counted there.
    #[test]
    fn class_choice_and_alignment(size in 0usize..=MAX_CLASS_SIZE, align_shift in 0u32..=12) {
        let align = 1usize << align_shift;
        let c = class_of(size, align).unwrap();
        let fits = |d: usize| CLASS_SIZES[d] >= size && CLASS_SIZES[d].is_multiple_of(align);
        prop_assert!(fits(c));
        prop_assert!(!(0..c).any(fits), "a smaller class fits {} / {}", size, align);
        let heap = heap_with(StdPages::new());
        let l = layout(size.max(1), align);
        let p = heap.alloc(l);
        prop_assert!(!p.is_null());
        prop_assert_eq!(p as usize % align, 0);
        prop_assert_eq!(heap.cache_stats(c).unwrap().objects_in_use, 1);
        fill(p, CLASS_SIZES[c], 5);
        check(p, CLASS_SIZES[c], 5);
        // SAFETY: allocated just above with `l`.
        unsafe { heap.dealloc(p, l) };
        assert_all_returned(&heap);
    }

    /// Random allocations and frees on several harts (one out of range) against a model:
    /// alignment held, no overlap, contents preserved, counts exact, everything returned.
    #[test]
    fn model(ops in prop::collection::vec(op(), 1..400)) {
        let heap = heap_with(StdPages::new());
        let mut live: Vec<(*mut u8, Layout, u8)> = Vec::new();
        let mut by_addr = BTreeMap::new();
        for (i, op) in ops.into_iter().enumerate() {
            match op {
                Op::Alloc { size, align_shift } => {
                    let l = layout(size, 1 << align_shift);
                    let p = heap.alloc(l);
                    prop_assert!(!p.is_null());
                    prop_assert_eq!(p as usize % l.align(), 0);
                    assert_disjoint(&by_addr, p as usize, p as usize + size);
                    by_addr.insert(p as usize, p as usize + size);
                    fill(p, size, i as u8);
                    live.push((p, l, i as u8));
                }
                Op::Free { index } if !live.is_empty() => {
                    let (p, l, tag) = live.swap_remove(index % live.len());
                    check(p, l.size(), tag);
                    by_addr.remove(&(p as usize));
                    // SAFETY: allocated by this heap with `l`, freed once.
                    unsafe { heap.dealloc(p, l) };
                }
                Op::Free { .. } => {}
                Op::SwitchHart { hart } => set_hart(hart),
            }
            prop_assert_eq!(heap.stats().live_allocations(), live.len());
        }
        for (p, l, tag) in live {
            check(p, l.size(), tag);
            // SAFETY: as above.
            unsafe { heap.dealloc(p, l) };
        }
        set_hart(0);
        assert_all_returned(&heap);
    }
}

/// Threads with distinct hart ids (one beyond the heap's hart count) share one heap,
/// allocate and free at random, and hand objects to each other so that frees happen on
/// other harts than the allocations.
#[test]
fn threads_share_one_heap() {
    const THREADS: usize = HARTS + 1;
    const OPS: usize = 20_000;
    type Obj = (usize, Layout, u8);
    let heap = heap_with(StdPages::new());
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..THREADS)
        .map(|_| std::sync::mpsc::channel::<Obj>())
        .unzip();
    std::thread::scope(|s| {
        for (t, rx) in rxs.into_iter().enumerate() {
            let heap = &*heap;
            let next = txs[(t + 1) % THREADS].clone();
            s.spawn(move || {
                set_hart(t);
                let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ (t as u64 + 1);
                let mut live: Vec<Obj> = Vec::new();
                for i in 0..OPS {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    if let Ok(obj) = rx.try_recv() {
                        live.push(obj);
                    }
                    if rng % 8 < 5 || live.is_empty() {
                        let size = 1 + (rng >> 8) as usize % (1 << ((rng >> 40) % 13));
                        let l = layout(size, 1 << ((rng >> 50) % 7));
                        let p = heap.alloc(l);
                        assert!(!p.is_null());
                        fill(p, size.min(64), i as u8);
                        live.push((p as usize, l, i as u8));
                    } else {
                        let (p, l, tag) = live.swap_remove((rng >> 20) as usize % live.len());
                        check(p as *mut u8, l.size().min(64), tag);
                        if rng % 8 == 7 {
                            next.send((p, l, tag)).unwrap();
                        } else {
                            // SAFETY: allocated by this heap with `l`, freed once.
                            unsafe { heap.dealloc(p as *mut u8, l) };
                        }
                    }
                }
                drop(next);
                live.extend(rx.iter());
                for (p, l, tag) in live {
                    check(p as *mut u8, l.size().min(64), tag);
                    // SAFETY: as above.
                    unsafe { heap.dealloc(p as *mut u8, l) };
                }
                heap.drain_cpu_cache();
            });
        }
        drop(txs);
    });
    assert_eq!(heap.stats().live_allocations(), 0);
    assert_eq!(
        heap.stats().objects_cached(),
        0,
        "each thread drained its own cache"
    );
    assert_all_returned(&heap);
}
