//! Frame allocator benchmark: pagoda's `FrameAllocator` side by side with
//! `buddy_system_allocator::FrameAllocator` and a plain word-at-a-time bitmap allocator
//! (written below, as a simple kernel has it), over simulated RAM of 256 MiB and 4 GiB.
//!
//! Run: `cargo bench -p pagoda-mm --bench frames`. Workloads are deterministic (fixed
//! seed xorshift); each figure is the best of `REPEATS` runs, in ns per operation (one
//! allocation or one free). The frames are never touched: every allocator here keeps its
//! bookkeeping outside the memory it manages, so "RAM" is just a range of numbers.

use std::cell::Cell;
use std::hint::black_box;
use std::mem::MaybeUninit;
use std::ops::Range;
use std::sync::Barrier;
use std::time::Instant;

use buddy_system_allocator::LockedFrameAllocator;
use pagoda_mm::addr::{PAGE_SIZE, PhysAddr};
use pagoda_mm::cpu::CpuLocal;
use pagoda_mm::frame::{FrameAllocator, FrameMeta, FrameUse};

const RAM_BASE: usize = 0x8000_0000;
const MIB: usize = 1 << 20;
const REPEATS: usize = 3;
const SEED: u64 = 0x2545_f491_4f6c_dd1d;

struct Rng(u64);

impl Rng {
    #[inline]
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// The allocators under test, as the churn loop sees them: frame numbers in and out.
trait Frames {
    fn alloc(&mut self, order: usize) -> Option<usize>;
    fn free(&mut self, pfn: usize, order: usize);
}

/// A plain bitmap frame allocator: one bit per frame, 64 frames per word, first free
/// bit found with `trailing_zeros`, the search starting from the word of the last hit.
struct Bitmap {
    base: usize,
    words: Vec<u64>,
    hint: usize,
}

impl Bitmap {
    fn new(first_pfn: usize, frames: usize) -> Bitmap {
        let mut words = vec![0u64; frames.div_ceil(64)];
        if !frames.is_multiple_of(64) {
            // Bits past the end of RAM are permanently "allocated".
            *words.last_mut().unwrap() = !0u64 << (frames % 64);
        }
        Bitmap {
            base: first_pfn,
            words,
            hint: 0,
        }
    }
}

impl Frames for Bitmap {
    #[inline]
    fn alloc(&mut self, _order: usize) -> Option<usize> {
        let n = self.words.len();
        let mut i = self.hint;
        for _ in 0..n {
            let w = self.words[i];
            if w != u64::MAX {
                let bit = (!w).trailing_zeros() as usize;
                self.words[i] = w | (1 << bit);
                self.hint = i;
                return Some(self.base + i * 64 + bit);
            }
            i += 1;
            if i == n {
                i = 0;
            }
        }
        None
    }

    #[inline]
    fn free(&mut self, pfn: usize, _order: usize) {
        let i = pfn - self.base;
        self.words[i / 64] &= !(1 << (i % 64));
    }
}

/// The bitmap as a kernel shares it between harts: behind a spin lock.
struct LockedBitmap<'a>(&'a spin::Mutex<Bitmap>);

impl Frames for LockedBitmap<'_> {
    #[inline]
    fn alloc(&mut self, order: usize) -> Option<usize> {
        self.0.lock().alloc(order)
    }
    #[inline]
    fn free(&mut self, pfn: usize, order: usize) {
        self.0.lock().free(pfn, order)
    }
}

/// buddy_system_allocator's frame allocator behind its own spin lock (its kernel form).
struct Bsa<'a>(&'a LockedFrameAllocator<33>);

impl Frames for Bsa<'_> {
    #[inline]
    fn alloc(&mut self, order: usize) -> Option<usize> {
        self.0.lock().alloc(1 << order)
    }
    #[inline]
    fn free(&mut self, pfn: usize, order: usize) {
        self.0.lock().dealloc(pfn, 1 << order)
    }
}

/// Floor of the churn loop itself: hands out made-up frame numbers and frees nothing, so
/// its figure is what the loop (random slot, the alloc-or-free branch) costs on its own.
struct LoopOnly(usize);

impl Frames for LoopOnly {
    #[inline]
    fn alloc(&mut self, _order: usize) -> Option<usize> {
        self.0 += 1;
        Some(self.0)
    }
    #[inline]
    fn free(&mut self, pfn: usize, _order: usize) {
        black_box(pfn);
    }
}

/// Floor of any allocator that keeps 32 bytes of metadata per frame: a stack of free frame
/// numbers, and per operation one check and one store in the frame's 32-byte entry
/// (what pagoda's per-frame metadata costs at the least). No lock, no accounting.
struct EntryOnly {
    entries: Vec<[u32; 8]>,
    free: Vec<usize>,
}

impl EntryOnly {
    fn new(frames: usize) -> EntryOnly {
        EntryOnly {
            entries: vec![[0; 8]; frames],
            free: (0..frames).rev().collect(),
        }
    }
}

impl Frames for EntryOnly {
    #[inline]
    fn alloc(&mut self, _order: usize) -> Option<usize> {
        let f = self.free.pop()?;
        self.entries[f][0] = 1;
        Some(f)
    }
    #[inline]
    fn free(&mut self, pfn: usize, _order: usize) {
        assert_eq!(
            self.entries[pfn][0], 1,
            "double free in the floor allocator"
        );
        self.entries[pfn][0] = 0;
        self.free.push(pfn);
    }
}

thread_local! {
    static HART: Cell<usize> = const { Cell::new(0) };
}

/// Pins a thread to the hart id in its thread-local (0 unless `scaling` set another).
struct BenchHart;

// SAFETY: the main thread is hart 0 and runs alone while it benchmarks; the scaling
// threads set ids 1, 2, ... of their own, distinct from each other and from the main
// thread's, which waits for them.
unsafe impl CpuLocal for BenchHart {
    type Pin = ();

    #[inline]
    fn pin() -> (usize, ()) {
        (HART.with(Cell::get), ())
    }
}

/// pagoda through the calling thread's pinned hart cache (`alloc_local` / `free_local`).
struct PagodaLocal<'a>(&'a FrameAllocator);

impl Frames for PagodaLocal<'_> {
    #[inline]
    fn alloc(&mut self, order: usize) -> Option<usize> {
        self.0
            .alloc_local::<BenchHart>(order, FrameUse::UserAnon)
            .ok()
            .map(|p| p.0)
    }
    #[inline]
    fn free(&mut self, pfn: usize, order: usize) {
        let r = self
            .0
            .free_local::<BenchHart>(pagoda_mm::addr::Pfn(pfn), order);
        debug_assert!(r.is_ok());
    }
}

/// Parks the cache when a workload ends, so that the other columns' allocations can take
/// its frames at once when they run out of memory (as a kernel hart going idle would).
impl Drop for PagodaLocal<'_> {
    fn drop(&mut self) {
        self.0.park_local::<BenchHart>();
    }
}

/// pagoda through hart `hart`'s locked cache (`alloc_on` / `free_on`).
struct PagodaHart<'a>(&'a FrameAllocator, usize);

impl Frames for PagodaHart<'_> {
    #[inline]
    fn alloc(&mut self, order: usize) -> Option<usize> {
        self.0
            .alloc_on(self.1, order, FrameUse::UserAnon)
            .ok()
            .map(|p| p.0)
    }
    #[inline]
    fn free(&mut self, pfn: usize, order: usize) {
        let r = self.0.free_on(self.1, pagoda_mm::addr::Pfn(pfn), order);
        debug_assert!(r.is_ok());
    }
}

/// pagoda through the buddy lock only (`alloc` / `free`).
struct PagodaGlobal<'a>(&'a FrameAllocator);

impl Frames for PagodaGlobal<'_> {
    #[inline]
    fn alloc(&mut self, order: usize) -> Option<usize> {
        self.0.alloc(order, FrameUse::UserAnon).ok().map(|p| p.0)
    }
    #[inline]
    fn free(&mut self, pfn: usize, order: usize) {
        let r = self.0.free(pagoda_mm::addr::Pfn(pfn), order);
        debug_assert!(r.is_ok());
    }
}

/// Random churn: `slots` slots, each op picks one at random and frees its block if it
/// holds one, else allocates one of `order` into it; about `slots / 2` blocks stay live.
/// Returns ns per operation; everything is freed again afterwards.
fn churn(a: &mut impl Frames, order: usize, slots: usize, ops: usize, seed: u64) -> f64 {
    assert!(slots.is_power_of_two());
    let mut live = vec![usize::MAX; slots];
    let mut rng = Rng(seed);
    // Warm up to the steady state (about half the slots live), untimed.
    churn_steps(a, order, &mut live, &mut rng, slots * 4);
    let t = Instant::now();
    churn_steps(a, order, &mut live, &mut rng, ops);
    let ns = t.elapsed().as_nanos() as f64 / ops as f64;
    for &cur in live.iter().filter(|&&c| c != usize::MAX) {
        a.free(cur, order);
    }
    ns
}

#[inline(always)]
fn churn_steps(a: &mut impl Frames, order: usize, live: &mut [usize], rng: &mut Rng, n: usize) {
    let mask = live.len() - 1;
    for _ in 0..n {
        let cur = &mut live[(rng.next() as usize) & mask];
        if *cur == usize::MAX {
            *cur = a.alloc(order).expect("benchmark RAM exhausted");
        } else {
            a.free(*cur, order);
            *cur = usize::MAX;
        }
    }
}

/// Order-0 churn in nearly full RAM: every frame is allocated, then a random
/// 1/`FREE_SHARE` of them is freed, and the churn runs over that scattered remainder
/// (as under memory pressure). ns per operation; everything is freed afterwards.
fn nearly_full(a: &mut impl Frames, frames: usize, ops: usize, seed: u64) -> f64 {
    const FREE_SHARE: usize = 512;
    let mut held = Vec::with_capacity(frames);
    while let Some(p) = a.alloc(0) {
        held.push(p);
    }
    assert_eq!(held.len(), frames);
    let mut rng = Rng(seed);
    let free = frames / FREE_SHARE;
    for i in 0..free {
        let j = i + (rng.next() as usize) % (held.len() - i);
        held.swap(i, j);
        a.free(held[i], 0);
    }
    let ns = churn(a, 0, free.next_power_of_two() / 2, ops, seed);
    for &p in &held[free..] {
        a.free(p, 0);
    }
    ns
}

/// Allocate-then-free pairs of one block, `n` times: the hot path. ns per pair.
fn pairs(a: &mut impl Frames, order: usize, n: usize) -> f64 {
    let t = Instant::now();
    for _ in 0..n {
        let p = a.alloc(order).expect("benchmark RAM exhausted");
        a.free(black_box(p), order);
    }
    t.elapsed().as_nanos() as f64 / n as f64
}

fn best(mut f: impl FnMut(u64) -> f64) -> f64 {
    (0..REPEATS)
        .map(|i| f(SEED.wrapping_add(i as u64 * 0x9e37_79b9)))
        .fold(f64::INFINITY, f64::min)
}

struct Ram {
    bytes: usize,
    range: Range<PhysAddr>,
    first_pfn: usize,
    frames: usize,
}

fn ram(bytes: usize) -> Ram {
    Ram {
        bytes,
        range: PhysAddr(RAM_BASE)..PhysAddr(RAM_BASE + bytes),
        first_pfn: RAM_BASE / PAGE_SIZE,
        frames: bytes / PAGE_SIZE,
    }
}

fn pagoda(r: &Ram) -> &'static FrameAllocator {
    let fa: &'static FrameAllocator = Box::leak(Box::new(FrameAllocator::new()));
    let ranges = [r.range.clone()];
    let meta: &'static mut [MaybeUninit<FrameMeta>] =
        Box::leak(Box::new_uninit_slice(FrameAllocator::metadata_len(&ranges)));
    fa.init(&ranges, meta).expect("init");
    fa
}

fn bsa(r: &Ram) -> LockedFrameAllocator<33> {
    let a = LockedFrameAllocator::<33>::new();
    a.lock().add_frame(r.first_pfn, r.first_pfn + r.frames);
    a
}

fn size_name(bytes: usize) -> String {
    if bytes >= 1024 * MIB {
        format!("{} GiB", bytes / (1024 * MIB))
    } else {
        format!("{} MiB", bytes / MIB)
    }
}

/// Runs `job(t)` on `threads` threads at once (each does `ops` operations); returns the
/// aggregate operations per microsecond, from the first thread's start to the last one's
/// end. Each thread reads the clock itself: a clock read by the spawning thread after the
/// start barrier may come late on a busy machine (it waits for a core while the workers
/// run), which made the figure of a whole run come out as one microsecond.
fn throughput(threads: usize, ops: usize, job: &(impl Fn(usize) + Sync)) -> f64 {
    let barrier = Barrier::new(threads);
    let spans: Vec<(Instant, Instant)> = std::thread::scope(|sc| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let barrier = &barrier;
                sc.spawn(move || {
                    barrier.wait();
                    let start = Instant::now();
                    job(t);
                    (start, Instant::now())
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let start = spans.iter().map(|s| s.0).min().unwrap();
    let end = spans.iter().map(|s| s.1).max().unwrap();
    (threads * ops) as f64 / (end - start).as_micros().max(1) as f64
}

fn scaling(name: &str, ops: usize, job: &(impl Fn(usize) + Sync)) {
    let one = (0..REPEATS)
        .map(|_| throughput(1, ops, job))
        .fold(0.0, f64::max);
    let two = (0..REPEATS)
        .map(|_| throughput(2, ops, job))
        .fold(0.0, f64::max);
    println!(
        "{:<22} {:>12.1} {:>12.1} {:>10.2}",
        name,
        one,
        two,
        two / one
    );
}

/// Prints one table row: ns figures for pagoda/hart, pagoda/on, pagoda/global,
/// bitmap+lock, bitmap raw, bsa (NaN = not run), then the ratios.
fn row(name: &str, r: &Ram, live: usize, ns: [f64; 6]) {
    let [hart, on, global, bml, bmr, bs] = ns;
    let cell = |v: f64, w: usize, p: usize| {
        if v.is_nan() {
            format!("{:>w$}", "-")
        } else {
            format!("{v:>w$.p$}")
        }
    };
    println!(
        "{:<24} {:>7} {:>7} {} {} {} {} {} {} {} {} {}",
        name,
        size_name(r.bytes),
        live,
        cell(hart, 11, 1),
        cell(on, 9, 1),
        cell(global, 13, 1),
        cell(bml, 11, 1),
        cell(bmr, 10, 1),
        cell(bs, 8, 1),
        cell(hart / bml, 9, 2),
        cell(hart / bmr, 9, 2),
        cell(global / bs, 9, 2),
    );
}

fn main() {
    // `cargo bench --bench frames -- scaling` runs only the sections named (table,
    // scaling); no name runs both.
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let run_section = |name: &str| only.is_empty() || only.iter().any(|o| o == name);
    if run_section("table") {
        table();
    }
    if run_section("scaling") {
        scaling_table();
    }
}

/// Every workload at both RAM sizes, every allocator side by side.
fn table() {
    println!("frame allocators, ns per operation (best of {REPEATS}; lower is better)");
    println!("  churn: random alloc/free over 2N slots keeping ~N blocks live");
    println!(
        "  pagoda/hart = alloc_local/free_local (pinned per-hart cache, CpuLocal); pagoda/on = alloc_on/free_on"
    );
    println!(
        "  (any-caller per-hart cache behind a lock); pagoda/global = alloc/free (buddy lock)"
    );
    println!(
        "  bitmap+lock = word bitmap behind a spin lock (as a kernel shares it); bitmap raw = &mut, no lock"
    );
    println!(
        "  bsa = buddy_system_allocator::LockedFrameAllocator (BTreeSet free lists behind its spin lock)"
    );
    println!();
    println!(
        "{:<24} {:>7} {:>7} {:>11} {:>9} {:>13} {:>11} {:>10} {:>8} {:>9} {:>9} {:>9}",
        "workload",
        "RAM",
        "live N",
        "pagoda/hart",
        "pagoda/on",
        "pagoda/global",
        "bitmap+lock",
        "bitmap raw",
        "bsa",
        "hart/bm+l",
        "hart/bm",
        "glob/bsa"
    );
    for bytes in [256 * MIB, 4096 * MIB] {
        let r = ram(bytes);
        let fa = pagoda(&r);
        let bm = spin::Mutex::new(Bitmap::new(r.first_pfn, r.frames));
        let b = bsa(&r);

        // Order 0: 8192 frames (32 MiB) live.
        let slots = 16384;
        let ops = 4_000_000;
        let hart = best(|s| churn(&mut PagodaLocal(fa), 0, slots, ops, s));
        let on = best(|s| churn(&mut PagodaHart(fa, 0), 0, slots, ops, s));
        let global = best(|s| churn(&mut PagodaGlobal(fa), 0, slots, ops, s));
        let bml = best(|s| churn(&mut LockedBitmap(&bm), 0, slots, ops, s));
        let bmr = best(|s| churn(&mut *bm.lock(), 0, slots, ops, s));
        let bs = best(|s| churn(&mut Bsa(&b), 0, slots, ops / 4, s));
        row(
            "order-0 churn",
            &r,
            slots / 2,
            [hart, on, global, bml, bmr, bs],
        );
        let looping = best(|s| churn(&mut LoopOnly(0), 0, slots, ops, s));
        let mut entries = EntryOnly::new(r.frames);
        let entry = best(|s| churn(&mut entries, 0, slots, ops, s));
        println!(
            "  floors of this row: the loop alone {looping:.1} ns ({:.2}x bitmap+lock); one 32-byte entry per op {entry:.1} ns ({:.2}x)",
            looping / bml,
            entry / bml
        );

        // Order 0 with RAM nearly full (1/512 free, scattered).
        let ops = 1_000_000;
        let hart = best(|s| nearly_full(&mut PagodaLocal(fa), r.frames, ops, s));
        let on = best(|s| nearly_full(&mut PagodaHart(fa, 0), r.frames, ops, s));
        let global = best(|s| nearly_full(&mut PagodaGlobal(fa), r.frames, ops, s));
        let bml = best(|s| nearly_full(&mut LockedBitmap(&bm), r.frames, ops, s));
        let bmr = best(|s| nearly_full(&mut *bm.lock(), r.frames, ops, s));
        let bs = best(|s| nearly_full(&mut Bsa(&b), r.frames, ops / 4, s));
        let live = (r.frames / 512).next_power_of_two() / 4;
        row(
            "order-0 churn, full RAM",
            &r,
            live,
            [hart, on, global, bml, bmr, bs],
        );

        // Order 9 (2 MiB blocks): about 1/8 of RAM live.
        let slots9 = (r.frames / 512 / 4).next_power_of_two();
        let ops9 = 1_000_000;
        let global9 = best(|s| churn(&mut PagodaGlobal(fa), 9, slots9, ops9, s));
        let hart9 = best(|s| churn(&mut PagodaLocal(fa), 9, slots9, ops9, s));
        let on9 = best(|s| churn(&mut PagodaHart(fa, 0), 9, slots9, ops9, s));
        let bs9 = best(|s| churn(&mut Bsa(&b), 9, slots9, ops9 / 4, s));
        row(
            "order-9 churn",
            &r,
            slots9 / 2,
            [hart9, on9, global9, f64::NAN, f64::NAN, bs9],
        );

        // The hot path: allocate one frame and free it at once (ns per pair).
        let n = 4_000_000;
        let hp = best(|_| pairs(&mut PagodaLocal(fa), 0, n));
        let op = best(|_| pairs(&mut PagodaHart(fa, 0), 0, n));
        let gp = best(|_| pairs(&mut PagodaGlobal(fa), 0, n));
        let bp = best(|_| pairs(&mut LockedBitmap(&bm), 0, n));
        let rp = best(|_| pairs(&mut *bm.lock(), 0, n));
        let sp = best(|_| pairs(&mut Bsa(&b), 0, n / 4));
        row("order-0 alloc+free pair", &r, 1, [hp, op, gp, bp, rp, sp]);
        fa.drain_caches();
        assert_eq!(fa.stats().free, fa.stats().total, "benchmark leaked frames");
        fa.verify()
            .expect("allocator invariants after the benchmark");
    }
}

/// Order-0 churn on one and two threads sharing one allocator.
fn scaling_table() {
    println!();
    println!(
        "scaling: order-0 churn (N = 4096 live per thread, 256 MiB), aggregate ops/us (higher is better)"
    );
    println!("  (the machine's cores are shared; two threads can at best double the figure)");
    let r = ram(256 * MIB);
    let fa = pagoda(&r);
    let bm = spin::Mutex::new(Bitmap::new(r.first_pfn, r.frames));
    let ops = 2_000_000;
    println!(
        "{:<22} {:>12} {:>12} {:>10}",
        "allocator", "1 thread", "2 threads", "2t/1t"
    );
    let slots = 8192;
    scaling("pagoda/hart", ops, &|t| {
        HART.with(|h| h.set(t + 1));
        churn(&mut PagodaLocal(fa), 0, slots, ops, SEED + t as u64);
    });
    scaling("pagoda/on", ops, &|t| {
        churn(&mut PagodaHart(fa, t), 0, slots, ops, SEED + t as u64);
    });
    scaling("pagoda/global", ops, &|t| {
        churn(&mut PagodaGlobal(fa), 0, slots, ops, SEED + t as u64);
    });
    // Machine headroom: each thread on an allocator of its own (nothing shared).
    let apart = [pagoda(&r), pagoda(&r)];
    scaling("pagoda/hart, 2 allocs", ops, &|t| {
        churn(&mut PagodaLocal(apart[t]), 0, slots, ops, SEED + t as u64);
    });
    scaling("bitmap+lock", ops, &|t| {
        churn(&mut LockedBitmap(&bm), 0, slots, ops, SEED + t as u64);
    });
    fa.drain_caches();
    assert_eq!(fa.stats().free, fa.stats().total, "benchmark leaked frames");
}
