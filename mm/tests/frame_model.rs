//! Property tests: the frame allocator against a simple model of which frames are managed
//! and which blocks are live, over random non-contiguous RAM layouts.
//!
//! Checked after every operation: blocks are naturally aligned, inside managed memory and
//! disjoint from every live block (no overlap); an allocation fails only when no free,
//! managed, aligned window of that size exists (no loss: full coalescing); error results
//! exactly where the model says the request is invalid; `verify` holds; the used count
//! matches. At the end everything is freed and the free lists must equal the initial
//! block structure.

use core::mem::MaybeUninit;
use core::ops::Range;
use std::collections::BTreeMap;

use pagoda_mm::addr::{PAGE_SIZE, Pfn, PhysAddr};
use pagoda_mm::frame::{AllocError, FrameAllocator, FrameError, FrameMeta, FrameUse};
use proptest::prelude::*;

const HARTS: usize = 4;
const MAX_TEST_ORDER: usize = 7;

#[derive(Clone, Debug)]
enum Op {
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

fn op() -> impl Strategy<Value = Op> {
    let hart = proptest::option::of(0..HARTS);
    prop_oneof![
        6 => (0..=MAX_TEST_ORDER, hart.clone()).prop_map(|(o, hart)| Op::Alloc {
            // Mostly small orders, like a kernel.
            order: if o > 4 { o - 4 } else { o },
            hart,
        }),
        2 => (0..=MAX_TEST_ORDER, hart.clone()).prop_map(|(order, hart)| Op::Alloc { order, hart }),
        5 => (any::<usize>(), hart.clone()).prop_map(|(pick, hart)| Op::Free { pick, hart }),
        2 => any::<usize>().prop_map(|pick| Op::Get { pick }),
        2 => (any::<usize>(), hart).prop_map(|(pick, hart)| Op::Put { pick, hart }),
        1 => (any::<usize>(), 0..4usize).prop_map(|(offset, order)| Op::FreeAny { offset, order }),
        1 => Just(Op::Drain),
    ]
}

/// A RAM layout: 1 to 4 runs of 1..700 frames separated by gaps of 0..80 frames (a gap of
/// 0 makes two touching ranges), from an arbitrary start frame, given in shuffled order.
fn layout() -> impl Strategy<Value = Vec<Range<usize>>> {
    (
        0x80000usize..0x80000 + 1024,
        proptest::collection::vec((1usize..700, 0usize..80), 1..5),
        any::<u64>(),
    )
        .prop_map(|(start, runs, shuffle)| {
            let mut out = Vec::new();
            let mut p = start;
            for (len, gap) in runs {
                out.push(p..p + len);
                p += len + gap;
            }
            let n = out.len() as u64;
            out.rotate_left((shuffle % n) as usize);
            out
        })
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

fn check(ranges: Vec<Range<usize>>, ops: Vec<Op>) {
    let phys: Vec<Range<PhysAddr>> = ranges
        .iter()
        .map(|r| PhysAddr(r.start * PAGE_SIZE)..PhysAddr(r.end * PAGE_SIZE))
        .collect();
    let fa: &'static FrameAllocator = Box::leak(Box::new(FrameAllocator::new()));
    let meta: &'static mut [MaybeUninit<FrameMeta>] =
        Box::leak(Box::new_uninit_slice(FrameAllocator::metadata_len(&phys)));
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

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn allocator_matches_model(ranges in layout(), ops in proptest::collection::vec(op(), 1..160)) {
        check(ranges, ops);
    }
}

#[test]
fn model_handles_a_fully_fragmented_layout() {
    // Single-frame runs separated by single-frame gaps: nothing above order 0 exists.
    let ranges: Vec<Range<usize>> = (0..64)
        .map(|i| 0x80000 + 2 * i..0x80000 + 2 * i + 1)
        .collect();
    let mut ops: Vec<Op> = (0..70)
        .map(|i| Op::Alloc {
            order: i % 2,
            hart: Some(i % HARTS),
        })
        .collect();
    ops.extend((0..64).map(|pick| Op::Free {
        pick,
        hart: Some(pick % HARTS),
    }));
    check(ranges, ops);
}
