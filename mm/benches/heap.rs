//! Side-by-side benchmark of the slab heap against talc, buddy_system_allocator,
//! linked_list_allocator and slab_allocator_rs.
//!
//! Every allocator gets a fresh arena of the same size, aligned to its size, and runs the
//! same pre-generated operation sequence (fixed seed), through its thread-safe (locked)
//! front. The slab heap takes its pages from a small binary buddy over the same arena,
//! whose page table lives in the arena's first pages. Run with
//! `cargo bench -p pagoda-mm --bench heap`; one run prints one table.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::ptr::NonNull;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use pagoda_mm::addr::PAGE_SIZE;
use pagoda_mm::cpu::CpuLocal;
use pagoda_mm::heap::{CLASS_SIZES, ObjectCache, PageSource, SlabHeap, class_of};
use spin::Mutex;

/// Arena for the throughput workloads (slab_allocator_rs splits it in eight fixed parts).
const ARENA: usize = 64 << 20;
/// Arena for the fill workload.
const FILL_ARENA: usize = 16 << 20;
/// Operations (allocations plus frees) per throughput run.
const OPS: usize = 1_000_000;
const SEED: u64 = 0x243f_6a88_85a3_08d3;

/// xorshift64: a fixed, dependency-free generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// Log-uniform in `lo..=hi`.
    fn log_uniform(&mut self, lo: usize, hi: usize) -> usize {
        let (a, b) = (lo.ilog2(), hi.ilog2() + 1);
        let bits = a + self.below((b - a) as usize) as u32;
        (self.below(1 << bits) + (1 << bits)).clamp(lo, hi)
    }
}

/// A block of host memory aligned to its size, standing in for RAM.
struct Arena {
    base: NonNull<u8>,
    size: usize,
}

impl Arena {
    fn new(size: usize) -> Self {
        let l = Layout::from_size_align(size, size).unwrap();
        // SAFETY: non-zero size.
        let base =
            NonNull::new(unsafe { std::alloc::alloc(l) }).expect("host memory for the arena");
        // Touch every page now, so that no allocator pays the host's page faults inside a
        // timed run (and two threads do not contend in the host kernel's fault path).
        // SAFETY: the block is ours and `size` bytes long.
        unsafe { std::ptr::write_bytes(base.as_ptr(), 0, size) };
        Arena { base, size }
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe {
            std::alloc::dealloc(
                self.base.as_ptr(),
                Layout::from_size_align(self.size, self.size).unwrap(),
            )
        };
    }
}

// ---------------------------------------------------------------------------------------
// The page source of the slab heap: a binary buddy over the arena.

const NIL: usize = usize::MAX;
const BUDDY_MAX_ORDER: usize = 16;

/// Free blocks are linked through their first two words; `state[page]` is `order + 1`
/// for the first page of a free block of that order, 0 otherwise. `state` occupies the
/// arena's first pages, which are never handed out.
struct BuddyState {
    base: usize,
    pages: usize,
    heads: [usize; BUDDY_MAX_ORDER + 1],
    state: *mut u8,
}

// SAFETY: the pointers lead into the arena that the buddy owns.
unsafe impl Send for BuddyState {}

impl BuddyState {
    fn link(&self, idx: usize) -> *mut [usize; 2] {
        (self.base + idx * PAGE_SIZE) as *mut [usize; 2]
    }

    fn push(&mut self, idx: usize, order: usize) {
        let head = self.heads[order];
        // SAFETY: `idx` (and `head`, if any) are free blocks of the arena, so their first
        // words are ours to use as links; `state` has one byte per page.
        unsafe {
            *self.link(idx) = [head, NIL];
            if head != NIL {
                (*self.link(head))[1] = idx;
            }
            *self.state.add(idx) = order as u8 + 1;
        }
        self.heads[order] = idx;
    }

    fn remove(&mut self, idx: usize, order: usize) {
        // SAFETY: `idx` is a free block of this order on its list; neighbours likewise.
        unsafe {
            let [next, prev] = *self.link(idx);
            if prev == NIL {
                self.heads[order] = next;
            } else {
                (*self.link(prev))[0] = next;
            }
            if next != NIL {
                (*self.link(next))[1] = prev;
            }
            *self.state.add(idx) = 0;
        }
    }
}

struct ArenaBuddy(Mutex<BuddyState>);

impl ArenaBuddy {
    fn new(arena: &Arena) -> Self {
        let pages = arena.size / PAGE_SIZE;
        let meta_pages = pages.div_ceil(PAGE_SIZE);
        let mut s = BuddyState {
            base: arena.base.as_ptr() as usize,
            pages,
            heads: [NIL; BUDDY_MAX_ORDER + 1],
            state: arena.base.as_ptr(),
        };
        // SAFETY: the table fits in the reserved first pages of the arena.
        unsafe { std::ptr::write_bytes(s.state, 0, pages) };
        let mut idx = meta_pages;
        while idx < pages {
            let mut order = (idx.trailing_zeros() as usize).min(BUDDY_MAX_ORDER);
            while idx + (1 << order) > pages {
                order -= 1;
            }
            s.push(idx, order);
            idx += 1 << order;
        }
        ArenaBuddy(Mutex::new(s))
    }
}

// SAFETY: blocks are disjoint parts of the arena, aligned to their size because the arena
// is aligned to its own size; the state is behind a lock; nothing here allocates.
unsafe impl PageSource for ArenaBuddy {
    fn alloc_pages(&self, order: usize) -> Option<NonNull<u8>> {
        let mut s = self.0.lock();
        let mut k = order;
        while k <= BUDDY_MAX_ORDER && s.heads[k] == NIL {
            k += 1;
        }
        if k > BUDDY_MAX_ORDER {
            return None;
        }
        let idx = s.heads[k];
        s.remove(idx, k);
        while k > order {
            k -= 1;
            s.push(idx + (1 << k), k);
        }
        NonNull::new((s.base + idx * PAGE_SIZE) as *mut u8)
    }

    unsafe fn free_pages(&self, ptr: NonNull<u8>, mut order: usize) {
        let mut s = self.0.lock();
        let mut idx = (ptr.as_ptr() as usize - s.base) / PAGE_SIZE;
        while order < BUDDY_MAX_ORDER {
            let buddy = idx ^ (1 << order);
            // SAFETY: `buddy < pages` indexes the state table.
            if buddy >= s.pages || unsafe { *s.state.add(buddy) } != order as u8 + 1 {
                break;
            }
            s.remove(buddy, order);
            idx &= !(1 << order);
            order += 1;
        }
        s.push(idx, order);
    }
}

thread_local! {
    static HART: Cell<usize> = const { Cell::new(0) };
}

/// Benchmark threads name their hart: the main thread is 0, the second worker 1.
struct ThreadHart;

// SAFETY: host threads have no interrupts and every thread that shares a heap sets a
// distinct id before using it.
unsafe impl CpuLocal for ThreadHart {
    type Pin = ();
    #[inline]
    fn pin() -> (usize, ()) {
        (HART.with(Cell::get), ())
    }
}

type Ours = SlabHeap<ArenaBuddy, ThreadHart, 2>;

// ---------------------------------------------------------------------------------------
// The contenders, each behind its own thread-safe front.

/// An allocator under test: null on failure, never a panic.
trait Contender: Sync {
    fn alloc(&self, l: Layout) -> *mut u8;
    /// # Safety
    /// `p` came from `alloc(l)` and is not used afterwards.
    unsafe fn free(&self, p: *mut u8, l: Layout);
}

struct OursOn(Box<Ours>);
impl Contender for OursOn {
    #[inline]
    fn alloc(&self, l: Layout) -> *mut u8 {
        // SAFETY: `l` has a non-zero size in every workload.
        unsafe { GlobalAlloc::alloc(&*self.0, l) }
    }
    #[inline]
    unsafe fn free(&self, p: *mut u8, l: Layout) {
        // SAFETY: the caller's promise.
        unsafe { GlobalAlloc::dealloc(&*self.0, p, l) }
    }
}

struct TalcOn(talc::TalcLock<spin::Mutex<()>, talc::source::Manual>);
impl Contender for TalcOn {
    #[inline]
    fn alloc(&self, l: Layout) -> *mut u8 {
        // SAFETY: non-zero size.
        unsafe { GlobalAlloc::alloc(&self.0, l) }
    }
    #[inline]
    unsafe fn free(&self, p: *mut u8, l: Layout) {
        // SAFETY: the caller's promise.
        unsafe { GlobalAlloc::dealloc(&self.0, p, l) }
    }
}

struct BuddyOn(buddy_system_allocator::LockedHeap<32>);
impl Contender for BuddyOn {
    #[inline]
    fn alloc(&self, l: Layout) -> *mut u8 {
        // SAFETY: non-zero size.
        unsafe { GlobalAlloc::alloc(&self.0, l) }
    }
    #[inline]
    unsafe fn free(&self, p: *mut u8, l: Layout) {
        // SAFETY: the caller's promise.
        unsafe { GlobalAlloc::dealloc(&self.0, p, l) }
    }
}

struct ListOn(linked_list_allocator::LockedHeap);
impl Contender for ListOn {
    #[inline]
    fn alloc(&self, l: Layout) -> *mut u8 {
        // SAFETY: non-zero size.
        unsafe { GlobalAlloc::alloc(&self.0, l) }
    }
    #[inline]
    unsafe fn free(&self, p: *mut u8, l: Layout) {
        // SAFETY: the caller's promise.
        unsafe { GlobalAlloc::dealloc(&self.0, p, l) }
    }
}

/// Its `GlobalAlloc` panics when out of memory, so the locked heap is called directly.
struct SlabRsOn(slab_allocator_rs::LockedHeap);
impl Contender for SlabRsOn {
    #[inline]
    fn alloc(&self, l: Layout) -> *mut u8 {
        let mut g = self.0.lock();
        g.as_mut()
            .and_then(|h| h.allocate(l).ok())
            .map_or(std::ptr::null_mut(), NonNull::as_ptr)
    }
    #[inline]
    unsafe fn free(&self, p: *mut u8, l: Layout) {
        if let (Some(h), Some(p)) = (self.0.lock().as_mut(), NonNull::new(p)) {
            // SAFETY: the caller's promise.
            unsafe { h.deallocate(p, l) };
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Ours,
    Talc,
    Buddy,
    List,
    SlabRs,
}

const KINDS: [Kind; 5] = [
    Kind::Ours,
    Kind::Talc,
    Kind::Buddy,
    Kind::List,
    Kind::SlabRs,
];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Ours => "pagoda slab",
            Kind::Talc => "talc",
            Kind::Buddy => "buddy_system",
            Kind::List => "linked_list",
            Kind::SlabRs => "slab_alloc_rs",
        }
    }

    /// Builds this allocator over `arena` and hands it to `f`.
    fn with<R>(self, arena: &Arena, f: impl FnOnce(&dyn Contender) -> R) -> R {
        let (base, size) = (arena.base.as_ptr(), arena.size);
        match self {
            Kind::Ours => f(&OursOn(Box::new(SlabHeap::new(ArenaBuddy::new(arena))))),
            Kind::Talc => {
                let t = talc::TalcLock::<spin::Mutex<()>, _>::new(talc::source::Manual);
                // SAFETY: the arena is ours, unused, and outlives the allocator.
                unsafe { t.lock().claim(base, size) }.expect("talc claims the arena");
                f(&TalcOn(t))
            }
            Kind::Buddy => {
                let b = buddy_system_allocator::LockedHeap::<32>::new();
                // SAFETY: as above.
                unsafe { b.lock().init(base as usize, size) };
                f(&BuddyOn(b))
            }
            Kind::List => {
                let l = linked_list_allocator::LockedHeap::empty();
                // SAFETY: as above.
                unsafe { l.lock().init(base, size) };
                f(&ListOn(l))
            }
            Kind::SlabRs => {
                // SAFETY: as above; the arena is page aligned and a multiple of 32 KiB.
                let h = unsafe { slab_allocator_rs::LockedHeap::new(base as usize, size) };
                f(&SlabRsOn(h))
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Workloads: pre-generated scripts, identical for every allocator.

/// Allocate `initial`, then for each step free the object in `slot` and allocate `layout`
/// in its place; or (bursts) allocate `burst` objects and free them LIFO or FIFO.
enum Script {
    Churn {
        initial: Vec<Layout>,
        steps: Vec<(u32, Layout)>,
    },
    Bursts {
        layout: Layout,
        burst: usize,
        rounds: usize,
        lifo: bool,
    },
}

fn layout(size: usize, align: usize) -> Layout {
    Layout::from_size_align(size, align).unwrap()
}

fn churn_script(
    seed: u64,
    live: usize,
    ops: usize,
    mut draw: impl FnMut(&mut Rng) -> Layout,
) -> Script {
    let mut rng = Rng(seed);
    let initial = (0..live).map(|_| draw(&mut rng)).collect();
    let steps = (0..ops / 2)
        .map(|_| (rng.below(live) as u32, draw(&mut rng)))
        .collect();
    Script::Churn { initial, steps }
}

fn small(rng: &mut Rng) -> Layout {
    layout(rng.log_uniform(8, 512), 8)
}

/// Kernel-like mix: mostly small objects, page-aligned page-table pages, a few multi-page
/// buffers.
fn kernel_mix(rng: &mut Rng) -> Layout {
    match rng.below(100) {
        0..55 => layout(16 + rng.below(113), 8),
        55..75 => layout(129 + rng.below(384), 8 << rng.below(2)),
        75..87 => layout(
            513 + rng.below(1536),
            if rng.below(4) == 0 { 64 } else { 8 },
        ),
        87..95 => layout(4096, 4096),
        _ => layout(
            4097 + rng.below(12288),
            if rng.below(2) == 0 { 8 } else { 4096 },
        ),
    }
}

/// Runs a script; `None` if an allocation failed.
fn run(a: &dyn Contender, script: &Script) -> Option<Duration> {
    match script {
        Script::Churn { initial, steps } => {
            let mut live: Vec<(*mut u8, Layout)> =
                initial.iter().map(|&l| (a.alloc(l), l)).collect();
            let mut ok = live.iter().all(|(p, _)| !p.is_null());
            let t = Instant::now();
            for &(slot, l) in steps {
                let (p, old) = live[slot as usize];
                // SAFETY: allocated with `old`, freed once.
                unsafe { a.free(p, old) };
                let q = a.alloc(l);
                if q.is_null() {
                    ok = false;
                    live[slot as usize] = (q, l);
                    break;
                }
                // SAFETY: a fresh allocation of at least one byte.
                unsafe { q.write(slot as u8) };
                live[slot as usize] = (q, l);
            }
            let d = t.elapsed();
            for (p, l) in live {
                if !p.is_null() {
                    // SAFETY: allocated with `l`, freed once.
                    unsafe { a.free(p, l) };
                }
            }
            ok.then_some(d)
        }
        &Script::Bursts {
            layout: l,
            burst,
            rounds,
            lifo,
        } => {
            let mut objs = Vec::with_capacity(burst);
            let t = Instant::now();
            for _ in 0..rounds {
                for i in 0..burst {
                    let p = a.alloc(l);
                    if p.is_null() {
                        return None;
                    }
                    // SAFETY: a fresh allocation of `l.size()` bytes.
                    unsafe { p.write(i as u8) };
                    objs.push(p);
                }
                if lifo {
                    while let Some(p) = objs.pop() {
                        // SAFETY: allocated with `l`, freed once.
                        unsafe { a.free(p, l) };
                    }
                } else {
                    for p in objs.drain(..) {
                        // SAFETY: allocated with `l`, freed once.
                        unsafe { a.free(p, l) };
                    }
                }
            }
            Some(t.elapsed())
        }
    }
}

/// Best of up to three runs (fresh arena each), in ns per operation; `None` if it ran out
/// of memory.
fn ns_per_op(kind: Kind, script: &Script, ops: usize) -> Option<f64> {
    let mut best: Option<Duration> = None;
    let start = Instant::now();
    for _ in 0..3 {
        let arena = Arena::new(ARENA);
        let d = kind.with(&arena, |a| run(a, script))?;
        best = Some(best.map_or(d, |b| b.min(d)));
        if start.elapsed() > Duration::from_secs(2) {
            break;
        }
    }
    best.map(|d| d.as_nanos() as f64 / ops as f64)
}

/// Two threads (harts 0 and 1), each running its own churn script, on one shared
/// allocator of `kind`, or (`kind == None`) on one slab heap each, which shows how much
/// parallelism the machine offers in this run. Returns total operations per microsecond
/// (the slower thread's time counts), best of up to `reps` runs.
fn two_threads(kind: Option<Kind>, scripts: &[Script; 2], ops: usize, reps: usize) -> Option<f64> {
    let mut best: Option<f64> = None;
    let start = Instant::now();
    for _ in 0..reps {
        let t = match kind {
            Some(k) => {
                let arena = Arena::new(ARENA);
                k.with(&arena, |a| pair_run([a, a], scripts))?
            }
            None => {
                let arenas = [Arena::new(ARENA), Arena::new(ARENA)];
                let heaps = arenas
                    .each_ref()
                    .map(|a| OursOn(Box::new(SlabHeap::new(ArenaBuddy::new(a)))));
                pair_run([&heaps[0], &heaps[1]], scripts)?
            }
        };
        let v = 2.0 * ops as f64 / t.as_nanos() as f64 * 1000.0;
        best = Some(best.map_or(v, |b| b.max(v)));
        if start.elapsed() > Duration::from_secs(2) {
            break;
        }
    }
    best
}

/// Runs `scripts[i]` on `allocs[i]` in thread `i` (hart `i`), started together; returns
/// the slower thread's time.
fn pair_run(allocs: [&dyn Contender; 2], scripts: &[Script; 2]) -> Option<Duration> {
    let barrier = Barrier::new(2);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..2)
            .map(|hart| {
                let (barrier, a, script) = (&barrier, allocs[hart], &scripts[hart]);
                s.spawn(move || {
                    HART.with(|h| h.set(hart));
                    // Spin a while first: a new thread starts on its parent's core, and the
                    // host scheduler needs some milliseconds to move one of the two away,
                    // longer than a short timed run.
                    let spin = Instant::now();
                    while spin.elapsed() < Duration::from_millis(20) {
                        std::hint::spin_loop();
                    }
                    barrier.wait();
                    run(a, script)
                })
            })
            .collect();
        let times: Option<Vec<Duration>> = workers.into_iter().map(|w| w.join().unwrap()).collect();
        times?.into_iter().max()
    })
}

/// Random sizes into a fresh arena until 64 allocations in a row fail. Returns the
/// requested bytes and (for the slab heap) the class-rounded bytes handed out, as
/// percentages of the arena.
fn fill(kind: Kind) -> (f64, f64) {
    let arena = Arena::new(FILL_ARENA);
    // FILL_SEED=n varies the sequence, to see how much the end state moves the figure.
    let extra = std::env::var("FILL_SEED")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(0);
    let mut rng = Rng(SEED ^ 0xf111 ^ extra);
    kind.with(&arena, |a| {
        let (mut requested, mut rounded, mut misses) = (0usize, 0usize, 0);
        let mut live = Vec::new();
        while misses < 64 {
            let l = layout(rng.log_uniform(8, 4096), 8);
            let p = a.alloc(l);
            if p.is_null() {
                misses += 1;
                continue;
            }
            misses = 0;
            requested += l.size();
            rounded += class_of(l.size(), l.align()).map_or(l.size(), |c| CLASS_SIZES[c]);
            live.push((p, l));
        }
        for (p, l) in live {
            // SAFETY: allocated with `l`, freed once.
            unsafe { a.free(p, l) };
        }
        let pct = |b: usize| 100.0 * b as f64 / FILL_ARENA as f64;
        (pct(requested), pct(rounded))
    })
}

/// A figure with one decimal, or "oom" for a run that ran out of memory.
fn fmt_ns(v: Option<f64>) -> String {
    v.map_or("oom".into(), |v| format!("{v:.1}"))
}

fn main() {
    // `cargo bench --bench heap -- fill` runs only the sections whose names are given
    // (throughput, fill, threads, typed); no name runs everything.
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let run_section = |name: &str| only.is_empty() || only.iter().any(|o| o == name);
    let churn = churn_script(SEED, 10_000, OPS, small);
    let mix = churn_script(SEED ^ 1, 2_000, OPS, kernel_mix);
    let burst = 1000;
    let rounds = OPS / (2 * burst);
    let lifo = Script::Bursts {
        layout: layout(64, 8),
        burst,
        rounds,
        lifo: true,
    };
    let fifo = Script::Bursts {
        layout: layout(64, 8),
        burst,
        rounds,
        lifo: false,
    };
    let workloads: [(&str, &Script); 4] = [
        ("churn 8-512 B, 10k live", &churn),
        ("kernel mix 16 B-16 KiB, align<=4096", &mix),
        ("LIFO bursts 1000 x 64 B", &lifo),
        ("FIFO bursts 1000 x 64 B", &fifo),
    ];

    println!(
        "pagoda slab heap vs competitors: {} MiB arena, {OPS} ops per run, seed {SEED:#x}",
        ARENA >> 20
    );
    if run_section("throughput") {
        throughput_table(&workloads);
    }
    if run_section("fill") {
        fill_table();
    }
    if run_section("threads") {
        threads_table();
    }
    if run_section("typed") {
        typed_table();
    }
}

/// Objects of the sizes of three hot kernel types, for the typed-cache comparison.
struct Typed<const N: usize>([u64; N]);

/// ns per allocation + free of one `Typed<N>` (the value written in full both ways),
/// bursts of 64 live, through `GlobalAlloc`
/// with the layout known only at run time (as `Box::new` reaches a `#[global_allocator]`:
/// through the allocator shim) and through an `ObjectCache` (class fixed at compile time).
fn typed_pair<const N: usize>(heap: &Ours) -> (f64, f64) {
    const BURST: usize = 64;
    let rounds = OPS / BURST;
    let layout = std::hint::black_box(Layout::new::<Typed<N>>());
    let mut ptrs = [std::ptr::null_mut::<u8>(); BURST];
    let t = Instant::now();
    for r in 0..rounds {
        for p in ptrs.iter_mut() {
            // SAFETY: a non-zero size.
            *p = unsafe { GlobalAlloc::alloc(heap, layout) };
            assert!(!p.is_null());
            let mut v = Typed([0; N]);
            v.0[0] = r as u64;
            // SAFETY: a fresh object with the size and alignment of `Typed<N>`.
            unsafe { p.cast::<Typed<N>>().write(v) };
        }
        for &p in &ptrs {
            // SAFETY: allocated just above with `layout`, freed once.
            unsafe { GlobalAlloc::dealloc(heap, p, layout) };
        }
    }
    let global = t.elapsed().as_nanos() as f64 / (rounds * BURST) as f64;
    let cache = ObjectCache::<Typed<N>, _, _, 2>::new(heap);
    let t = Instant::now();
    for r in 0..rounds {
        let boxes = [(); BURST].map(|_| {
            let mut v = Typed([0; N]);
            v.0[0] = r as u64;
            cache.alloc(v).ok().expect("arena large enough")
        });
        drop(boxes);
    }
    let typed = t.elapsed().as_nanos() as f64 / (rounds * BURST) as f64;
    (global, typed)
}

fn typed_table() {
    println!(
        "\ntyped caches: ns per alloc+free, bursts of 64, GlobalAlloc (run-time layout) vs ObjectCache<T>"
    );
    let arena = Arena::new(ARENA);
    let heap = Box::new(Ours::new(ArenaBuddy::new(&arena)));
    for (name, (g, t)) in [
        ("64 B (an area)", typed_pair::<8>(&heap)),
        ("256 B (a process)", typed_pair::<32>(&heap)),
        ("4096 B (a table page)", typed_pair::<512>(&heap)),
    ] {
        println!("{name:<24}{g:>10.1}{t:>10.1}   typed/global {:.2}", t / g);
    }
}

fn throughput_table(workloads: &[(&str, &Script); 4]) {
    println!("ns/op (best of up to 3 runs); ratio = ours / theirs (below 1 = ours faster)\n");
    print!("{:<38}", "workload");
    for k in KINDS {
        print!("{:>14}", k.name());
    }
    println!("   ratios vs talc / buddy / list / slab_rs");
    for &(name, script) in workloads {
        let ns: Vec<Option<f64>> = KINDS.iter().map(|&k| ns_per_op(k, script, OPS)).collect();
        print!("{name:<38}");
        for v in &ns {
            print!("{:>14}", fmt_ns(*v));
        }
        let ratios: Vec<String> = ns[1..]
            .iter()
            .map(|v| match (ns[0], v) {
                (Some(o), Some(t)) => format!("{:.2}", o / t),
                _ => "-".into(),
            })
            .collect();
        println!("   {}", ratios.join(" / "));
    }
}

fn fill_table() {
    println!(
        "\nfill: random 8 B-4 KiB requests into a {} MiB arena until 64 fail in a row",
        FILL_ARENA >> 20
    );
    print!("{:<38}", "requested bytes / arena (%)");
    let fills: Vec<(f64, f64)> = KINDS.iter().map(|&k| fill(k)).collect();
    for (r, _) in &fills {
        print!("{r:>14.1}");
    }
    println!();
    println!(
        "{:<38}{:>14.1}",
        "pagoda: class-rounded bytes / arena (%)", fills[0].1
    );
}

fn threads_table() {
    let per_thread = OPS;
    let pair = [
        churn_script(SEED ^ 2, 5_000, per_thread, small),
        churn_script(SEED ^ 3, 5_000, per_thread, small),
    ];
    println!(
        "\ntwo threads (harts 0, 1) sharing one allocator, churn 8-512 B, 5k live and {per_thread} ops per thread"
    );
    print!("{:<38}", "2-thread throughput (Mops/s)");
    let two: Vec<Option<f64>> = KINDS
        .iter()
        .map(|&k| two_threads(Some(k), &pair, per_thread, 7))
        .collect();
    for v in &two {
        print!("{:>14}", fmt_ns(*v));
    }
    println!();
    // The machine is shared with other work: measure one thread, two threads on one heap
    // and two threads on a heap each, interleaved over several rounds, and keep the best
    // figure of each (the least disturbed run).
    let (mut one, mut shared, mut apart) = (0.0f64, 0.0f64, 0.0f64);
    for _ in 0..7 {
        if let Some(ns) = ns_per_op(Kind::Ours, &pair[0], per_thread) {
            one = one.max(1000.0 / ns);
        }
        shared = shared.max(two_threads(Some(Kind::Ours), &pair, per_thread, 1).unwrap_or(0.0));
        apart = apart.max(two_threads(None, &pair, per_thread, 1).unwrap_or(0.0));
    }
    println!("{:<38}{:>14.1}", "pagoda 1 thread (Mops/s)", one);
    println!(
        "{:<38}{:>14.1}",
        "pagoda 2 threads, shared heap (Mops/s)", shared
    );
    println!(
        "{:<38}{:>14.1}",
        "pagoda 2 threads, 2 heaps (Mops/s)", apart
    );
    println!(
        "{:<38}{:>14.2}",
        "pagoda shared 2 threads / 1 thread",
        shared / one
    );
    println!(
        "{:<38}{:>14.2}",
        "machine headroom: 2 heaps / 1 thread",
        apart / one
    );
}
