//! The pinned per-hart path (`alloc_local` / `put_local` / `free_local`): single-hart
//! behaviour and accounting, exhaustion and recovery with frames held in other harts'
//! pinned caches (parked, and held by a hart that answers requests), and a
//! multi-threaded stress test where every thread is pinned to its own hart id.
//!
//! `TestHart` pins a thread to the id in a thread-local. The `CpuLocal` contract wants
//! no two contexts pinned to one id at once in the whole process, so the tests of this
//! binary run one at a time (`serial`) and each thread sets an id of its own.

use core::cell::Cell;
use core::mem::MaybeUninit;
use core::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Barrier, Mutex, MutexGuard};

use pagoda_mm::addr::{PAGE_SIZE, Pfn, PhysAddr};
use pagoda_mm::cpu::{CpuLocal, Unpinned};
use pagoda_mm::frame::{
    AllocError, BATCH, CACHE_CAPACITY, FrameAllocator, FrameError, FrameMeta, FrameUse,
};

mod support;
use support::Rng;
#[path = "support/frames.rs"]
mod frames_support;
use frames_support::Shared;

const RAM: usize = 0x8000_0000;

thread_local! {
    static HART: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// Pins the calling thread to the hart id it set with `as_hart`.
struct TestHart;

// SAFETY: every thread that pins sets a hart id of its own first (`as_hart`), and the
// tests run one at a time (`serial`), so no two threads ever hold the same id at once.
unsafe impl CpuLocal for TestHart {
    type Pin = ();

    fn pin() -> (usize, ()) {
        (HART.with(Cell::get), ())
    }
}

fn as_hart(h: usize) {
    HART.with(|c| c.set(h));
}

fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn allocator(ranges: &[Range<PhysAddr>]) -> &'static FrameAllocator {
    let fa: &'static FrameAllocator = Box::leak(Box::new(FrameAllocator::new()));
    let meta: &'static mut [MaybeUninit<FrameMeta>] =
        Box::leak(Box::new_uninit_slice(FrameAllocator::metadata_len(ranges)));
    fa.init(ranges, meta).unwrap();
    fa
}

fn frames(start: usize, n: usize) -> Range<PhysAddr> {
    PhysAddr(start * PAGE_SIZE)..PhysAddr((start + n) * PAGE_SIZE)
}

#[test]
fn single_hart_cache_accounting_and_errors() {
    let _g = serial();
    as_hart(0);
    let fa = allocator(&[frames(RAM / PAGE_SIZE, 1024)]);
    let base = fa.stats();

    // The first allocation takes a batch into the pinned cache.
    let p = fa.alloc_local::<TestHart>(0, FrameUse::PageTable).unwrap();
    let s = fa.stats();
    assert_eq!(s.cached, BATCH - 1);
    assert_eq!(s.used, 1);
    assert_eq!(s.used_for(FrameUse::PageTable), 1);
    let m = fa.meta(p).unwrap();
    assert_eq!(
        (m.refcount(), m.frame_use(), m.order()),
        (1, FrameUse::PageTable, Some(0))
    );
    fa.verify().unwrap();

    // Shared: the first put only drops a reference.
    assert_eq!(fa.get(p), Ok(2));
    assert_eq!(fa.put_local::<TestHart>(p), Ok(false));
    assert_eq!(fa.put_local::<TestHart>(p), Ok(true));
    assert_eq!(fa.put_local::<TestHart>(p), Err(FrameError::NotAllocated));
    assert_eq!(
        fa.free_local::<TestHart>(p, 0),
        Err(FrameError::NotAllocated)
    );
    assert_eq!(fa.stats().cached, BATCH);
    fa.stats().check_no_leaks(&base).unwrap();

    // LIFO: the warmest frame comes back first.
    let q = fa.alloc_local::<TestHart>(0, FrameUse::UserAnon).unwrap();
    assert_eq!(q, p);
    assert_eq!(
        fa.free_local::<TestHart>(q, 1),
        Err(FrameError::WrongOrder { allocated: 0 })
    );
    assert_eq!(fa.get(q), Ok(2));
    assert_eq!(
        fa.free_local::<TestHart>(q, 0),
        Err(FrameError::Shared { refs: 2 })
    );
    assert_eq!(fa.put(q), Ok(false));
    fa.free_local::<TestHart>(q, 0).unwrap();

    // Larger orders go to the buddy lists both ways.
    let big = fa.alloc_local::<TestHart>(3, FrameUse::Kernel).unwrap();
    assert_eq!(big.0 % 8, 0);
    assert_eq!(
        fa.free_local::<TestHart>(big, 0),
        Err(FrameError::WrongOrder { allocated: 3 })
    );
    assert_eq!(fa.put_local::<TestHart>(big), Ok(true));
    assert_eq!(fa.stats().cached, BATCH);
    assert_eq!(
        fa.alloc_local::<TestHart>(0, FrameUse::Free),
        Err(AllocError::InvalidUse)
    );
    assert_eq!(
        fa.alloc_local::<TestHart>(19, FrameUse::Kernel),
        Err(AllocError::InvalidOrder)
    );

    // The cache never holds more than its capacity: frees past it drain a batch.
    let held: Vec<Pfn> = (0..3 * CACHE_CAPACITY)
        .map(|_| fa.alloc_local::<TestHart>(0, FrameUse::Kernel).unwrap())
        .collect();
    assert_eq!(fa.stats().used_for(FrameUse::Kernel), 3 * CACHE_CAPACITY);
    for &p in &held {
        fa.put_local::<TestHart>(p).unwrap();
        assert!(fa.stats().cached <= CACHE_CAPACITY);
    }
    fa.verify().unwrap();
    fa.stats().check_no_leaks(&base).unwrap();

    // The other paths still work beside it and keep their own caches.
    let a = fa.alloc_on(0, 0, FrameUse::Kernel).unwrap();
    let b = fa.alloc(0, FrameUse::Kernel).unwrap();
    fa.free_on(0, a, 0).unwrap();
    fa.put_local::<TestHart>(b).unwrap();
    fa.verify().unwrap();

    // The hart holds its cache: draining from outside asks instead of taking...
    fa.drain_caches();
    let left = fa.stats().cached;
    assert!(left > 0 && left <= CACHE_CAPACITY);
    // ...and the hart answers at its next pinned operation (or `service_local`).
    assert_eq!(fa.service_local::<TestHart>(), left);
    assert_eq!(fa.service_local::<TestHart>(), 0);
    let s = fa.stats();
    assert_eq!((s.cached, s.free), (0, s.total));
    assert_eq!(s.free_blocks, base.free_blocks, "not fully coalesced");

    // Parked, the cache can be drained from outside at once.
    let p = fa.alloc_local::<TestHart>(0, FrameUse::Kernel).unwrap();
    fa.put_local::<TestHart>(p).unwrap();
    fa.park_local::<TestHart>();
    assert_eq!(fa.drain_caches(), BATCH);
    assert_eq!(fa.stats().cached, 0);
    // And taken back by the next pinned operation.
    let p = fa.alloc_local::<TestHart>(0, FrameUse::Kernel).unwrap();
    fa.put_local::<TestHart>(p).unwrap();
    assert_eq!(fa.drain_hart(0), Ok(0));
    assert_eq!(
        fa.alloc_local::<TestHart>(0, FrameUse::Kernel).map(|_| ()),
        Ok(())
    );
    assert_eq!(
        fa.stats().cached,
        0,
        "the request emptied the cache, no refill"
    );
    assert_eq!(fa.stats().used, 1);
    fa.verify().unwrap();
}

#[test]
fn unpinned_ids_take_the_buddy_lists() {
    let _g = serial();
    let fa = allocator(&[frames(RAM / PAGE_SIZE, 64)]);
    let p = fa.alloc_local::<Unpinned>(0, FrameUse::Kernel).unwrap();
    assert_eq!(fa.stats().cached, 0);
    assert_eq!(fa.put_local::<Unpinned>(p), Ok(true));
    assert_eq!(fa.stats().free, 64);
    assert_eq!(fa.stats().cached, 0);
    fa.verify().unwrap();
}

#[test]
fn uninitialised_allocator_refuses_the_pinned_path() {
    let _g = serial();
    as_hart(0);
    let fa = FrameAllocator::new();
    assert_eq!(
        fa.alloc_local::<TestHart>(0, FrameUse::Kernel),
        Err(AllocError::Uninitialised)
    );
    assert_eq!(
        fa.put_local::<TestHart>(Pfn(1)),
        Err(FrameError::OutOfRange)
    );
    assert_eq!(fa.service_local::<TestHart>(), 0);
    fa.park_local::<TestHart>();
}

/// Allocates single frames on the calling hart's pinned path until one fails.
fn exhaust(fa: &FrameAllocator) -> Vec<Pfn> {
    let mut got = Vec::new();
    while let Ok(p) = fa.alloc_local::<TestHart>(0, FrameUse::UserAnon) {
        got.push(p);
    }
    got
}

#[test]
fn exhaustion_takes_every_cache_and_recovers() {
    let _g = serial();
    // Two runs with a gap, odd sizes.
    let start = RAM / PAGE_SIZE;
    let ranges = [frames(start, 301), frames(start + 400, 77)];
    let fa = allocator(&ranges);
    let base = fa.stats();
    let total = base.total;

    // Frames sit in other harts' caches: hart 1's pinned cache (then parked, as a hart
    // going idle does), hart 2's `_on` cache, and our own pinned cache.
    std::thread::scope(|sc| {
        sc.spawn(|| {
            as_hart(1);
            let ps: Vec<Pfn> = (0..40)
                .map(|_| fa.alloc_local::<TestHart>(0, FrameUse::Kernel).unwrap())
                .collect();
            for p in ps {
                fa.put_local::<TestHart>(p).unwrap();
            }
            fa.park_local::<TestHart>();
        });
    });
    let q = fa.alloc_on(2, 0, FrameUse::Kernel).unwrap();
    fa.free_on(2, q, 0).unwrap();
    as_hart(0);
    let mine = fa.alloc_local::<TestHart>(0, FrameUse::Kernel).unwrap();
    fa.put_local::<TestHart>(mine).unwrap();
    assert!(fa.stats().cached >= 40 + BATCH);

    // Nothing is lost: every managed frame can be allocated, then allocation fails
    // with an error value, again and again.
    let got = exhaust(fa);
    assert_eq!(got.len(), total);
    let s = fa.stats();
    assert_eq!((s.free, s.cached, s.used), (0, 0, total));
    for _ in 0..3 {
        assert_eq!(
            fa.alloc_local::<TestHart>(0, FrameUse::Kernel),
            Err(AllocError::OutOfMemory)
        );
        assert_eq!(fa.alloc(1, FrameUse::Kernel), Err(AllocError::OutOfMemory));
        assert_eq!(
            fa.alloc_local::<TestHart>(2, FrameUse::Kernel),
            Err(AllocError::OutOfMemory)
        );
    }
    fa.verify().unwrap();

    // Recovery: free everything (on the pinned path), and it all comes back together.
    for p in got {
        fa.put_local::<TestHart>(p).unwrap();
    }
    fa.verify().unwrap();
    fa.stats().check_no_leaks(&base).unwrap();
    let big = fa.alloc_local::<TestHart>(8, FrameUse::Kernel).unwrap();
    fa.put_local::<TestHart>(big).unwrap();
    fa.park_local::<TestHart>();
    fa.drain_caches();
    let s = fa.stats();
    assert_eq!(s.free, total);
    assert_eq!(s.free_blocks, base.free_blocks, "not fully coalesced");
    fa.verify().unwrap();
}

#[test]
fn exhaustion_asks_a_working_hart_for_its_cache() {
    let _g = serial();
    let fa = allocator(&[frames(RAM / PAGE_SIZE, 200)]);
    let base = fa.stats();
    let filled = Barrier::new(2);
    let stop = AtomicBool::new(false);
    std::thread::scope(|sc| {
        sc.spawn(|| {
            // Hart 1 keeps its cache and keeps working (answering at each operation).
            as_hart(1);
            let ps: Vec<Pfn> = (0..50)
                .map(|_| fa.alloc_local::<TestHart>(0, FrameUse::Kernel).unwrap())
                .collect();
            for p in ps {
                fa.put_local::<TestHart>(p).unwrap();
            }
            filled.wait();
            while !stop.load(Ordering::Acquire) {
                fa.service_local::<TestHart>();
                std::thread::yield_now();
            }
            fa.park_local::<TestHart>();
        });
        filled.wait();
        as_hart(0);
        assert!(fa.stats().cached >= 50);
        // An allocation may fail if hart 1 does not answer within the bounded wait (it
        // is a thread the host may not run); frames are never lost, so retrying while
        // frames are still cached elsewhere ends with all of them allocated.
        let mut got = exhaust(fa);
        while fa.stats().cached != 0 {
            got.extend(exhaust(fa));
        }
        assert_eq!(got.len(), 200);
        for p in got {
            fa.free_local::<TestHart>(p, 0).unwrap();
        }
        stop.store(true, Ordering::Release);
    });
    fa.park_local::<TestHart>();
    fa.drain_caches();
    fa.verify().unwrap();
    let s = fa.stats();
    s.check_no_leaks(&base).unwrap();
    assert_eq!((s.free, s.cached), (s.total, 0));
    assert_eq!(s.free_blocks, base.free_blocks);
}

const THREADS: usize = 4;
const OPS: usize = 100_000;

/// One thread pinned to hart `hart`; returns how many allocations ran out of memory.
fn worker(s: &Shared, hart: usize, start: &Barrier) -> usize {
    as_hart(hart);
    start.wait();
    let fa = s.fa;
    let mut oom = 0;
    let mut rng = Rng(0x2545_f491_4f6c_dd1d ^ ((hart as u64 + 1) * 0x9e37_79b9));
    let mut live: Vec<(Pfn, usize)> = Vec::new();
    for _ in 0..OPS {
        let r = rng.below(100);
        if r < 50 || live.is_empty() {
            let order = if rng.below(20) == 0 {
                1 + rng.below(3)
            } else {
                0
            };
            let res = match rng.below(10) {
                // Mostly the pinned path; sometimes the others beside it.
                0 => fa.alloc_on(hart, order, FrameUse::Kernel),
                1 => fa.alloc(order, FrameUse::Kernel),
                _ => fa.alloc_local::<TestHart>(order, FrameUse::UserAnon),
            };
            if s.took_or_oom(res, order, &mut live) {
                oom += 1;
            }
        } else if r < 85 {
            let (p, order) = live.swap_remove(rng.below(live.len()));
            s.gives(p, order);
            if rng.below(2) == 0 {
                fa.free_local::<TestHart>(p, order).unwrap();
            } else {
                assert_eq!(fa.put_local::<TestHart>(p), Ok(true));
            }
        } else if r < 91 {
            // Shared for a while (copy-on-write); the sharer drops first.
            let (p, _) = live[rng.below(live.len())];
            assert!(fa.get(p).unwrap() >= 2);
            assert_eq!(fa.put_local::<TestHart>(p), Ok(false));
        } else if r < 95 {
            let item = live.swap_remove(rng.below(live.len()));
            s.mailbox.lock().unwrap().push(item);
        } else if r < 99 {
            // A frame allocated on another hart, freed on this one.
            if let Some((p, order)) = s.mailbox.lock().unwrap().pop() {
                s.gives(p, order);
                assert_eq!(fa.put_local::<TestHart>(p), Ok(true));
            }
        } else {
            fa.service_local::<TestHart>();
            if rng.below(8) == 0 {
                fa.park_local::<TestHart>();
            }
        }
    }
    for (p, order) in live {
        s.gives(p, order);
        fa.free_local::<TestHart>(p, order).unwrap();
    }
    fa.park_local::<TestHart>();
    oom
}

fn stress(n: usize) -> usize {
    let start = RAM / PAGE_SIZE;
    let ranges = [frames(start, n / 2), frames(start + n / 2 + 5, n - n / 2)];
    let fa = allocator(&ranges);
    let base = fa.stats();
    let shared = Shared::new(fa, start, n + 5);
    let oom = shared.run(THREADS, worker);
    for (p, _) in shared.mailbox.into_inner().unwrap() {
        assert_eq!(fa.put(p), Ok(true));
    }
    fa.verify().unwrap();
    fa.stats().check_no_leaks(&base).unwrap();
    fa.drain_caches();
    fa.verify().unwrap();
    let s = fa.stats();
    assert_eq!((s.free, s.cached), (s.total, 0));
    assert_eq!(s.free_blocks, base.free_blocks, "not fully coalesced");
    oom
}

#[test]
fn threads_pinned_to_harts_plenty_of_memory() {
    let _g = serial();
    assert_eq!(stress(1 << 16), 0);
}

#[test]
fn threads_pinned_to_harts_running_out_of_memory() {
    let _g = serial();
    // Fewer frames than the threads want at their peak: allocations fail, ask the other
    // harts for their pinned caches while they work, and nothing is lost.
    assert!(stress(1200) > 0);
}
