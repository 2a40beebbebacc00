//! Multi-threaded stress test: threads acting as harts hammer their caches and the buddy
//! lists, share frames by reference count, hand frames to each other to free on another
//! hart, and run the allocator out of memory. Every frame handed out is marked in a
//! shared ownership array, so two owners of one frame at once are caught. At the end the
//! counters must be back at the baseline and the free lists fully coalesced.

use core::mem::MaybeUninit;

use std::sync::Barrier;

use pagoda_mm::addr::{PAGE_SIZE, Pfn, PhysAddr};
use pagoda_mm::frame::{FrameAllocator, FrameMeta, FrameUse};

mod support;
use support::Rng;
#[path = "support/frames.rs"]
mod frames_support;
use frames_support::Shared;

const THREADS: usize = 4;
const OPS_PER_THREAD: usize = 100_000;

/// Returns how many allocations ran out of memory.
fn worker(s: &Shared, hart: usize, start: &Barrier) -> usize {
    let mut out_of_memory = 0;
    start.wait();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (hart as u64 + 1));
    let mut live: Vec<(Pfn, usize)> = Vec::new();
    for _ in 0..OPS_PER_THREAD {
        let r = rng.below(100);
        if r < 50 || live.is_empty() {
            let order = if rng.below(20) == 0 {
                1 + rng.below(3)
            } else {
                0
            };
            let res = if order == 0 {
                s.fa.alloc_on(hart, 0, FrameUse::UserAnon)
            } else {
                s.fa.alloc(order, FrameUse::Kernel)
            };
            if s.took_or_oom(res, order, &mut live) {
                out_of_memory += 1;
            }
        } else if r < 88 {
            let (p, order) = live.swap_remove(rng.below(live.len()));
            s.gives(p, order);
            s.fa.free_on(hart, p, order).unwrap();
        } else if r < 94 {
            // Share a frame for a while, as copy-on-write would; the sharer drops first.
            let (p, _) = live[rng.below(live.len())];
            assert!(s.fa.get(p).unwrap() >= 2);
            assert_eq!(s.fa.put_on(hart, p), Ok(false));
        } else if r < 97 {
            let item = live.swap_remove(rng.below(live.len()));
            s.mailbox.lock().unwrap().push(item);
        } else if let Some((p, order)) = s.mailbox.lock().unwrap().pop() {
            s.gives(p, order);
            assert_eq!(s.fa.put_on(hart, p), Ok(true));
        }
    }
    for (p, order) in live {
        s.gives(p, order);
        s.fa.free_on(hart, p, order).unwrap();
    }
    out_of_memory
}

/// Runs the workers over `frames` frames of RAM; returns how many allocations failed.
fn run(frames: usize) -> usize {
    let start = 0x8020_0000 / PAGE_SIZE;
    let ranges = [
        PhysAddr(start * PAGE_SIZE)..PhysAddr((start + frames / 2) * PAGE_SIZE),
        PhysAddr((start + frames / 2 + 3) * PAGE_SIZE)..PhysAddr((start + frames + 3) * PAGE_SIZE),
    ];
    let fa: &'static FrameAllocator = Box::leak(Box::new(FrameAllocator::new()));
    let meta: &'static mut [MaybeUninit<FrameMeta>] =
        Box::leak(Box::new_uninit_slice(FrameAllocator::metadata_len(&ranges)));
    fa.init(&ranges, meta).unwrap();
    let baseline = fa.stats();
    let shared = Shared::new(fa, start, frames + 3);
    let failed = shared.run(THREADS, worker);
    for (p, order) in shared.mailbox.into_inner().unwrap() {
        fa.free(p, order).unwrap();
    }
    fa.verify().unwrap();
    fa.stats().check_no_leaks(&baseline).unwrap();
    fa.drain_caches();
    fa.verify().unwrap();
    let end = fa.stats();
    assert_eq!(end.free_blocks, baseline.free_blocks, "not fully coalesced");
    assert_eq!(end.free, end.total);
    failed
}

#[test]
fn threads_with_hart_caches_plenty_of_memory() {
    assert_eq!(run(1 << 16), 0);
}

#[test]
fn threads_with_hart_caches_running_out_of_memory() {
    // Fewer frames than the threads want at their peak: allocations fail and drain the
    // other harts' caches while those harts are working.
    assert!(run(1500) > 0);
}
