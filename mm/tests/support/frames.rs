//! The ownership ledger of the threaded frame-allocator stress tests: every frame an
//! allocator hands out is marked, so a frame handed out twice fails the test at once.
//! Included by `frame_stress` and `frame_local` with
//! `#[path = "support/frames.rs"] mod frames_support;`.

use std::sync::Barrier;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, Ordering};

use pagoda_mm::addr::Pfn;
use pagoda_mm::frame::{AllocError, FrameAllocator};

/// What the worker threads share.
pub struct Shared {
    /// The allocator under test.
    pub fa: &'static FrameAllocator,
    /// The first frame number the ledger covers.
    pub base: usize,
    /// One mark per frame: 1 while some thread holds it.
    pub owned: Vec<AtomicU8>,
    /// Blocks handed from one thread to another, freed by whoever takes them.
    pub mailbox: Mutex<Vec<(Pfn, usize)>>,
}

impl Shared {
    /// A ledger for `frames` frames from `base`.
    pub fn new(fa: &'static FrameAllocator, base: usize, frames: usize) -> Shared {
        Shared {
            fa,
            base,
            owned: (0..frames).map(|_| AtomicU8::new(0)).collect(),
            mailbox: Mutex::new(Vec::new()),
        }
    }

    /// Marks the block of `2^order` frames at `p` as held.
    pub fn took(&self, p: Pfn, order: usize) {
        for f in p.0..p.0 + (1 << order) {
            let prev = self.owned[f - self.base].swap(1, Ordering::AcqRel);
            assert_eq!(prev, 0, "frame {f:#x} handed out twice");
        }
    }

    /// Marks the block at `p` as given back.
    pub fn gives(&self, p: Pfn, order: usize) {
        for f in p.0..p.0 + (1 << order) {
            assert_eq!(self.owned[f - self.base].swap(0, Ordering::AcqRel), 1);
        }
    }

    /// Books an allocation's outcome: a block goes on the ledger and into `live`; out of
    /// memory (the only error a stress worker may see) returns true.
    pub fn took_or_oom(
        &self,
        res: Result<Pfn, AllocError>,
        order: usize,
        live: &mut Vec<(Pfn, usize)>,
    ) -> bool {
        match res {
            Ok(p) => {
                self.took(p, order);
                live.push((p, order));
                false
            }
            Err(e) => {
                assert_eq!(e, AllocError::OutOfMemory);
                true
            }
        }
    }

    /// Runs `worker(self, hart, start)` on `threads` threads (harts 0..threads), started
    /// together; returns the sum of what they return.
    pub fn run(&self, threads: usize, worker: fn(&Shared, usize, &Barrier) -> usize) -> usize {
        let barrier = Barrier::new(threads);
        std::thread::scope(|sc| {
            let workers: Vec<_> = (0..threads)
                .map(|hart| {
                    let b = &barrier;
                    sc.spawn(move || worker(self, hart, b))
                })
                .collect();
            workers.into_iter().map(|w| w.join().unwrap()).sum()
        })
    }
}
