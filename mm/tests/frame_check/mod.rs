//! The frame allocator against a model of which frames are managed and which blocks
//! are live: the operations and the check after each, shared by the property test
//! (`frame_model.rs`) and the coverage-guided fuzz target (`tools/fuzz`, `frame_ops`).

use core::mem::MaybeUninit;
use core::ops::Range;
use std::collections::BTreeMap;

use pagoda_mm::addr::{PAGE_SIZE, Pfn, PhysAddr};
use pagoda_mm::frame::{AllocError, FrameAllocator, FrameError, FrameMeta, FrameUse};

/// Harts with caches in the checked allocator.
pub const HARTS: usize = 4;
/// Largest order the operations ask for.
pub const MAX_TEST_ORDER: usize = 7;

/// One operation on the allocator.
#[derive(Clone, Debug)]
pub enum Op {
    Alloc {
        order: usize,
        hart: Option<usize>,
    },
    Free {
        pick: usize,
        hart: Option<usize>,
    },
    Get {
        pick: usize,
    },
    Put {
        pick: usize,
        hart: Option<usize>,
    },
    /// Free an arbitrary frame with an arbitrary order: must fail unless it is exactly
    /// a live head of that order with one reference.
    FreeAny {
        offset: usize,
        order: usize,
    },
    Drain,
}

struct Model {
    base: usize,
    managed: Vec<bool>,
    /// Head of the live block covering each frame.
    owner: Vec<Option<usize>>,
    /// Live blocks: head -> (order, references).
    live: BTreeMap<usize, (usize, u32)>,
}

impl Model {
    fn idx(&self, pfn: usize) -> usize {
        pfn - self.base
    }

    fn used(&self) -> usize {
        self.live.values().map(|&(o, _)| 1 << o).sum()
    }

    fn pick(&self, pick: usize) -> Option<usize> {
        (!self.live.is_empty()).then(|| *self.live.keys().nth(pick % self.live.len()).unwrap())
    }

    /// Whether some naturally aligned window of 2^order frames is managed and not live.
    fn has_free_window(&self, order: usize) -> bool {
        let size = 1 << order;
        let first = self.base.div_ceil(size) * size;
        (first..self.base + self.managed.len())
            .step_by(size)
            .filter(|&w| w + size <= self.base + self.managed.len())
            .any(|w| {
                (w..w + size)
                    .all(|p| self.managed[self.idx(p)] && self.owner[self.idx(p)].is_none())
            })
    }

    fn insert(&mut self, head: usize, order: usize) {
        for p in head..head + (1 << order) {
            let i = self.idx(p);
            assert!(
                self.managed[i],
                "block {head:#x}/{order} covers unmanaged frame {p:#x}"
            );
            assert!(
                self.owner[i].is_none(),
                "block {head:#x}/{order} overlaps a live block at {p:#x}"
            );
            self.owner[i] = Some(head);
        }
        self.live.insert(head, (order, 1));
    }

    fn remove(&mut self, head: usize) {
        let (order, _) = self.live.remove(&head).unwrap();
        for p in head..head + (1 << order) {
            let i = self.idx(p);
            self.owner[i] = None;
        }
    }
}

/// Runs `ops` on an allocator over the RAM runs `ranges` (frame numbers), checking it
/// against the model after each; the allocator and its metadata are leaked (they must
/// be `'static`).
pub fn check(ranges: Vec<Range<usize>>, ops: Vec<Op>) {
    let phys = phys_ranges(&ranges);
    let fa: &'static FrameAllocator = Box::leak(Box::new(FrameAllocator::new()));
    let meta: &'static mut [MaybeUninit<FrameMeta>] =
        Box::leak(Box::new_uninit_slice(FrameAllocator::metadata_len(&phys)));
    check_in(fa, meta, ranges, ops);
}

/// The RAM runs as physical ranges.
pub fn phys_ranges(ranges: &[Range<usize>]) -> Vec<Range<PhysAddr>> {
    ranges
        .iter()
        .map(|r| PhysAddr(r.start * PAGE_SIZE)..PhysAddr(r.end * PAGE_SIZE))
        .collect()
}

/// [`check`] on a fresh allocator `fa` with metadata storage `meta` (of
/// `FrameAllocator::metadata_len` entries for `ranges`).
pub fn check_in(
    fa: &'static FrameAllocator,
    meta: &'static mut [MaybeUninit<FrameMeta>],
    ranges: Vec<Range<usize>>,
    ops: Vec<Op>,
) {
    let phys = phys_ranges(&ranges);
    fa.init(&phys, meta).unwrap();

    let base = ranges.iter().map(|r| r.start).min().unwrap();
    let top = ranges.iter().map(|r| r.end).max().unwrap();
    let mut model = Model {
        base,
        managed: vec![false; top - base],
        owner: vec![None; top - base],
        live: BTreeMap::new(),
    };
    for r in &ranges {
        for p in r.clone() {
            model.managed[p - base] = true;
        }
    }
    let initial = fa.stats();
    assert_eq!(initial.total, model.managed.iter().filter(|&&m| m).count());
    fa.verify().unwrap();

    for op in ops {
        match op {
            Op::Alloc { order, hart } => {
                let r = match hart {
                    Some(h) => fa.alloc_on(h, order, FrameUse::UserAnon),
                    None => fa.alloc(order, FrameUse::Kernel),
                };
                match r {
                    Ok(p) => {
                        assert_eq!(p.0 % (1 << order), 0, "misaligned {p:?} order {order}");
                        assert!(
                            p.0 >= base && p.0 + (1 << order) <= top,
                            "{p:?} outside the span"
                        );
                        model.insert(p.0, order);
                    }
                    Err(e) => {
                        assert_eq!(e, AllocError::OutOfMemory);
                        assert!(
                            !model.has_free_window(order),
                            "order {order} refused although a free aligned window exists"
                        );
                        assert_eq!(fa.stats().cached, 0, "caches not drained before failing");
                    }
                }
            }
            Op::Free { pick, hart } => {
                let Some(head) = model.pick(pick) else {
                    continue;
                };
                let (order, refs) = model.live[&head];
                let r = match hart {
                    Some(h) => fa.free_on(h, Pfn(head), order),
                    None => fa.free(Pfn(head), order),
                };
                if refs == 1 {
                    r.unwrap();
                    model.remove(head);
                    assert_eq!(fa.free(Pfn(head), order), Err(FrameError::NotAllocated));
                } else {
                    assert_eq!(r, Err(FrameError::Shared { refs }));
                }
            }
            Op::Get { pick } => {
                let Some(head) = model.pick(pick) else {
                    continue;
                };
                let e = model.live.get_mut(&head).unwrap();
                e.1 += 1;
                assert_eq!(fa.get(Pfn(head)), Ok(e.1));
            }
            Op::Put { pick, hart } => {
                let Some(head) = model.pick(pick) else {
                    continue;
                };
                let e = model.live.get_mut(&head).unwrap();
                e.1 -= 1;
                let last = e.1 == 0;
                let r = match hart {
                    Some(h) => fa.put_on(h, Pfn(head)),
                    None => fa.put(Pfn(head)),
                };
                assert_eq!(r, Ok(last));
                if last {
                    model.remove(head);
                }
            }
            Op::FreeAny { offset, order } => {
                let pfn = base + offset % (top - base + 2);
                let r = fa.free(Pfn(pfn), order);
                match model.live.get(&pfn) {
                    Some(&(o, 1)) if o == order => {
                        r.unwrap();
                        model.remove(pfn);
                    }
                    _ => assert!(r.is_err(), "bad free of {pfn:#x}/{order} accepted"),
                }
            }
            Op::Drain => {
                fa.drain_caches();
                assert_eq!(fa.stats().cached, 0);
            }
        }
        fa.verify().unwrap();
        let s = fa.stats();
        assert_eq!(s.used, model.used());
        // The lock-free count is the frames on the lists: the free ones outside caches.
        assert_eq!(fa.free_on_lists(), s.free - s.cached);
    }

    let heads: Vec<usize> = model.live.keys().copied().collect();
    for head in heads {
        while !fa.put(Pfn(head)).unwrap() {}
        model.remove(head);
    }
    fa.drain_caches();
    fa.verify().unwrap();
    let end = fa.stats();
    assert_eq!(end.free_blocks, initial.free_blocks, "not fully coalesced");
    end.check_no_leaks(&initial).unwrap();
    assert!(end.peak_used <= end.total);
}
