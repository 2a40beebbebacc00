//! Footprint regression tests of the slab heap (issue 4: after a few hundred identical
//! process lifecycles the kernel heap held 124 pages for 11 live allocations, and kept
//! growing long after warm-up).
//!
//! A *lifecycle* is a fixed script of allocations and frees shaped like fork + exec + exit
//! in the kernel: small objects of many classes, a few around a page, page-aligned pages
//! (page tables), a couple of large buffers and a vector that grows by doubling. Every
//! cycle runs the same script; only the harts it runs on vary (from a seeded generator),
//! as a scheduler would place them. The tests check that `pages_held` stops growing after
//! the first cycles, and that it comes back close to what the live objects need once the
//! workload is over.

use std::alloc::Layout;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

use pagoda_mm::addr::PAGE_SIZE;
use pagoda_mm::heap::{EMPTY_RESERVE_PAGES, HART_CACHE_BYTES, PageSource, SlabHeap, slab_pages_of};

mod support;
use support::Rng;

/// Page source over `std::alloc`, counting the pages out.
#[derive(Default)]
struct StdPages {
    pages_out: AtomicUsize,
}

impl StdPages {
    fn layout(order: usize) -> Layout {
        let bytes = PAGE_SIZE << order;
        Layout::from_size_align(bytes, bytes).unwrap()
    }
}

// SAFETY: blocks come from `std::alloc` with size and alignment `PAGE_SIZE << order`; the
// standard allocator is thread safe and does not use the heap under test.
unsafe impl PageSource for StdPages {
    fn alloc_pages(&self, order: usize) -> Option<NonNull<u8>> {
        // SAFETY: non-zero size.
        let p = NonNull::new(unsafe { std::alloc::alloc(Self::layout(order)) })?;
        self.pages_out.fetch_add(1 << order, SeqCst);
        Some(p)
    }

    unsafe fn free_pages(&self, ptr: NonNull<u8>, order: usize) {
        // SAFETY: allocated above with this layout.
        unsafe { std::alloc::dealloc(ptr.as_ptr(), Self::layout(order)) };
        self.pages_out.fetch_sub(1 << order, SeqCst);
    }
}

#[path = "support/hart.rs"]
mod hart_support;
use hart_support::{ThreadHart, set_hart};

const HARTS: usize = 4;
type Heap = SlabHeap<StdPages, ThreadHart, HARTS>;

/// The allocations of one lifecycle, in three phases (fork, exec, exit), as layouts.
struct Script {
    /// Allocated at fork on the parent's hart; the first `keep_to_exit` survive exec.
    fork: Vec<Layout>,
    keep_to_exit: usize,
    /// Allocated at exec on the child's hart, freed at exit.
    exec: Vec<Layout>,
}

fn l(size: usize, align: usize) -> Layout {
    Layout::from_size_align(size, align).unwrap()
}

impl Script {
    /// A fixed script touching many size classes (about 40 of the 82).
    fn new() -> Self {
        let mut rng = Rng(0x5eed_cafe_f00d_0001);
        let mut fork = Vec::new();
        // Task, credentials, file table, signal state, address-space areas: 40 objects
        // from 8 bytes to 4 KiB, log-uniform.
        for _ in 0..40 {
            let bits = 3 + rng.below(9);
            let size = (1 << bits) + rng.below(1 << bits);
            fork.push(l(size, 8));
        }
        // Page tables: page-aligned pages.
        fork.extend((0..6).map(|_| l(PAGE_SIZE, PAGE_SIZE)));
        // A kernel-side buffer above the classes.
        fork.push(l(16 * 1024, 8));
        let keep_to_exit = 20;
        let mut exec = Vec::new();
        // The ELF loader's growing vector: 16 B, 32 B, ..., 8 KiB (each step reallocates).
        exec.extend((4..=13).map(|b| l(1 << b, 8)));
        // Argument strings, new areas, new page tables.
        for _ in 0..30 {
            let bits = 3 + rng.below(8);
            exec.push(l((1 << bits) + rng.below(1 << bits), 8));
        }
        exec.extend((0..5).map(|_| l(PAGE_SIZE, PAGE_SIZE)));
        Script {
            fork,
            keep_to_exit,
            exec,
        }
    }
}

fn alloc_all(heap: &Heap, layouts: &[Layout]) -> Vec<(*mut u8, Layout)> {
    layouts
        .iter()
        .map(|&lay| {
            let p = heap.alloc(lay);
            assert!(!p.is_null());
            // SAFETY: a live object of at least `lay.size()` bytes.
            unsafe { p.write_bytes(0xa5, lay.size().min(64)) };
            (p, lay)
        })
        .collect()
}

fn free_all(heap: &Heap, objs: impl IntoIterator<Item = (*mut u8, Layout)>) {
    for (p, lay) in objs {
        // SAFETY: allocated by `alloc_all` on this heap with `lay`, freed once.
        unsafe { heap.dealloc(p, lay) };
    }
}

/// One fork + exec + exit, on the harts `h` (parent at fork, child at exec, parent at
/// exit). The exec phase grows its vector by reallocation, as `Vec::push` would.
fn lifecycle(heap: &Heap, script: &Script, h: [usize; 3]) {
    set_hart(h[0]);
    let mut forked = alloc_all(heap, &script.fork);
    set_hart(h[1]);
    // Exec frees what does not survive it, in reverse order, then builds the new image.
    free_all(heap, forked.drain(script.keep_to_exit..).rev());
    let mut execed = Vec::new();
    for &lay in &script.exec {
        execed.extend(alloc_all(heap, &[lay]));
        if lay.size() > 16 && lay.size().is_power_of_two() && lay.size() <= 8192 {
            // The vector's previous buffer goes once the new one is filled.
            let i = execed.len() - 2;
            if execed[i].1.size() * 2 == lay.size() {
                let old = execed.remove(i);
                free_all(heap, [old]);
            }
        }
    }
    set_hart(h[2]);
    // Exit and wait: the child's objects, then what survived from fork, in address order
    // of allocation (oldest first).
    free_all(heap, execed);
    free_all(heap, forked);
}

/// Runs `cycles` lifecycles with harts drawn from `seed`; returns `pages_held` after each.
fn run_cycles(heap: &Heap, script: &Script, cycles: usize, harts: usize, seed: u64) -> Vec<usize> {
    let mut rng = Rng(seed);
    (0..cycles)
        .map(|_| {
            let h = [rng.below(harts), rng.below(harts), rng.below(harts)];
            lifecycle(heap, script, h);
            heap.stats().pages_held
        })
        .collect()
}

/// Objects that stay allocated across the whole run (init's task, the root directory,
/// ...): 11 of them, like the kernel after the workload of issue 4.
fn long_lived(heap: &Heap) -> Vec<(*mut u8, Layout)> {
    let sizes = [24, 64, 96, 176, 320, 512, 832, 1200, 2048, 3000, 4096];
    let lays: Vec<_> = sizes.iter().map(|&s| l(s, 8)).collect();
    alloc_all(heap, &lays)
}

/// Pages the long-lived objects need at least: one slab of each of their classes.
fn pages_for(objs: &[(*mut u8, Layout)]) -> usize {
    let mut classes: Vec<_> = objs.iter().map(|(_, lay)| *lay).collect();
    classes.sort_by_key(|lay| (lay.size(), lay.align()));
    classes.dedup();
    classes.iter().map(|&lay| slab_pages_of(lay).unwrap()).sum()
}

fn report(name: &str, pages: &[usize]) {
    let at = |i: usize| pages[i.min(pages.len() - 1)];
    eprintln!(
        "{name}: pages_held after cycle 1 {} / 10 {} / 50 {} / 200 {} / 400 {} / last {} / max {}",
        at(0),
        at(9),
        at(49),
        at(199),
        at(399),
        at(pages.len() - 1),
        pages.iter().max().unwrap()
    );
}

/// Warm-up cycles after which `pages_held` must not grow any more.
const WARMUP: usize = 50;

/// The regression test of issue 4 on one hart: identical lifecycles must not grow the heap
/// after the first cycles, and once the workload is over the heap holds, without any
/// explicit trim, at most the long-lived objects' slabs, the empty-slab reserve and the
/// slabs that one hart's cache (at most `HART_CACHE_BYTES` plus one refill) pins.
#[test]
fn identical_lifecycles_do_not_grow_one_hart() {
    let heap = Box::new(Heap::new(StdPages::default()));
    set_hart(0);
    let script = Script::new();
    let keep = long_lived(&heap);
    let pages = run_cycles(&heap, &script, 1000, 1, 1);
    report("1 hart", &pages);
    let settled = pages[WARMUP - 1];
    let later = *pages[WARMUP..].iter().max().unwrap();
    assert!(later <= settled, "grew after warm-up: {settled} -> {later}");
    let need = pages_for(&keep);
    // The bound of docs/kernel-heap.md, "Footprint": every class the hart caches may pin
    // one more slab of its own; the script touches 45 classes.
    let s = heap.stats();
    assert!(
        s.pages_held <= need + EMPTY_RESERVE_PAGES + cached_pin_bound(&heap, 1),
        "{s:#?}"
    );
    check_after_trim(&heap, keep);
}

/// Pages that cached objects can pin beyond the live objects' own when `harts` harts
/// cache them: each hart draws a class from slabs of its own (hart affinity, see
/// `mm/src/heap/slab.rs`), so one slab per (hart, class) with a cached object, at most.
fn cached_pin_bound(heap: &Heap, harts: usize) -> usize {
    let s = heap.stats();
    s.classes
        .iter()
        .map(|c| c.objects_cached.min(harts) * (c.pages / c.slabs.max(1)))
        .sum()
}

/// The same on four simulated harts, every phase of every cycle on a random hart, so that
/// objects are freed on other harts than the one that allocated them and the per-hart
/// caches drift. Without a trim the figure moves within a band (which slabs cached objects
/// pin varies with the placement); the test checks the band, and that a trim on every hart
/// brings the heap back to exactly the same figure every time, however long it ran.
#[test]
fn identical_lifecycles_do_not_grow_four_harts() {
    for seed in [1, 2, 3] {
        let heap = Box::new(Heap::new(StdPages::default()));
        set_hart(0);
        let script = Script::new();
        let keep = long_lived(&heap);
        let need = pages_for(&keep);
        let mut all = Vec::new();
        for round in 0..10 {
            let pages = run_cycles(&heap, &script, 200, HARTS, seed + round * 1000);
            all.extend_from_slice(&pages);
            // The untrimmed band: the caches of 4 harts hold at most 4 x HART_CACHE_BYTES
            // (plus one refill each) and pin at most one slab per hart and cached class.
            let s = heap.stats();
            assert!(
                s.pages_held <= need + EMPTY_RESERVE_PAGES + cached_pin_bound(&heap, HARTS),
                "round {round}: {s:#?}"
            );
            assert!(s.objects_cached() * 8 <= HARTS * (HART_CACHE_BYTES + 4096));
            trim_all(&heap);
            assert_eq!(heap.stats().pages_held, need, "seed {seed} round {round}");
        }
        report(&format!("4 harts, seed {seed}"), &all);
        check_after_trim(&heap, keep);
    }
}

/// Several threads at once, each a hart of its own, run lifecycles on one heap: after a
/// trim on every hart the heap comes back to the same figure, round after round.
#[test]
fn threads_running_lifecycles_come_back() {
    const THREADS: usize = HARTS;
    let heap = Box::new(Heap::new(StdPages::default()));
    set_hart(0);
    let script = Script::new();
    let keep = long_lived(&heap);
    let need = pages_for(&keep);
    for round in 0..5 {
        std::thread::scope(|s| {
            for t in 0..THREADS {
                let (heap, script) = (&*heap, &script);
                s.spawn(move || {
                    set_hart(t);
                    for _ in 0..100 {
                        lifecycle(heap, script, [t, t, t]);
                    }
                    heap.drain_cpu_cache();
                });
            }
        });
        trim_all(&heap);
        assert_eq!(heap.stats().pages_held, need, "round {round}");
    }
    check_after_trim(&heap, keep);
}

/// `trim` on every hart, one after the other from this thread.
fn trim_all(heap: &Heap) {
    for hart in 0..HARTS {
        set_hart(hart);
        heap.trim();
    }
    set_hart(0);
    assert_eq!(heap.stats().objects_cached(), 0);
    assert_eq!(heap.stats().reserve_pages, 0);
}

/// After the workload: a trim on every hart leaves exactly the long-lived objects' slabs;
/// freeing those too leaves nothing.
fn check_after_trim(heap: &Heap, keep: Vec<(*mut u8, Layout)>) {
    let need = pages_for(&keep);
    let s = heap.stats();
    eprintln!(
        "  after the workload: {} pages held for {} live objects (their slabs: {need} pages), {} objects cached",
        s.pages_held,
        s.live_allocations(),
        s.objects_cached()
    );
    trim_all(heap);
    let s = heap.stats();
    eprintln!("  after trim on every hart: {} pages", s.pages_held);
    assert_eq!(s.pages_held, need);
    free_all(heap, keep);
    heap.trim();
    assert!(heap.stats().is_empty());
    assert_eq!(heap.source().pages_out.load(SeqCst), 0);
}
