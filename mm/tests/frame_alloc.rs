//! Unit and boundary tests of the frame allocator's public API.

#[path = "support/hart.rs"]
#[allow(dead_code, reason = "only ThreadHart is used here")]
mod hart_support;

use core::mem::MaybeUninit;
use core::ops::Range;
use std::collections::BTreeSet;

use pagoda_mm::addr::{PAGE_SIZE, Pfn, PhysAddr};
use pagoda_mm::frame::{
    AllocError, BATCH, CACHE_CAPACITY, FrameAllocator, FrameError, FrameMeta, FrameUse, InitError,
    MAX_ORDER,
};
use pagoda_mm::layout::{GIGAPAGE_SIZE, MAX_HARTS};

const RAM: usize = 0x8000_0000;

fn meta_for(ranges: &[Range<PhysAddr>]) -> &'static mut [MaybeUninit<FrameMeta>] {
    Box::leak(Box::new_uninit_slice(FrameAllocator::metadata_len(ranges)))
}

/// An initialised allocator over `ranges` (metadata leaked: it must be `'static`).
fn allocator(ranges: &[Range<PhysAddr>]) -> &'static FrameAllocator {
    let fa: &'static FrameAllocator = Box::leak(Box::new(FrameAllocator::new()));
    fa.init(ranges, meta_for(ranges)).unwrap();
    fa
}

/// `frames` frames from frame number `start`.
fn frames(start: usize, frames: usize) -> Range<PhysAddr> {
    PhysAddr(start * PAGE_SIZE)..PhysAddr((start + frames) * PAGE_SIZE)
}

fn ram_frame(i: usize) -> usize {
    RAM / PAGE_SIZE + i
}

#[test]
fn uninitialised_allocator_refuses_everything() {
    let fa = FrameAllocator::new();
    assert_eq!(
        fa.alloc(0, FrameUse::Kernel),
        Err(AllocError::Uninitialised)
    );
    assert_eq!(
        fa.alloc_on(0, 0, FrameUse::Kernel),
        Err(AllocError::Uninitialised)
    );
    assert_eq!(fa.free(Pfn(0), 0), Err(FrameError::OutOfRange));
    assert_eq!(fa.put(Pfn(0)), Err(FrameError::OutOfRange));
    assert!(fa.meta(Pfn(0)).is_none());
    assert_eq!(fa.stats().total, 0);
    fa.verify().unwrap();
}

#[test]
fn init_rejects_bad_arguments() {
    let fa = FrameAllocator::new();
    let overlapping = [frames(ram_frame(0), 16), frames(ram_frame(8), 16)];
    assert_eq!(
        fa.init(&overlapping, meta_for(&overlapping)),
        Err(InitError::Overlap(Pfn(ram_frame(8))))
    );
    let ok = [frames(ram_frame(0), 16)];
    assert_eq!(
        fa.init(&ok, Box::leak(Box::new_uninit_slice(15))),
        Err(InitError::MetadataTooSmall {
            needed: 16,
            given: 15
        })
    );
    fa.init(&ok, meta_for(&ok)).unwrap();
    assert_eq!(
        fa.init(&ok, meta_for(&ok)),
        Err(InitError::AlreadyInitialised)
    );
    assert_eq!(fa.stats().total, 16);
    let huge = [frames(0, 1), frames(1 << 33, 1)];
    assert_eq!(
        FrameAllocator::new().init(&huge, Box::leak(Box::new_uninit_slice(0))),
        Err(InitError::SpanTooLarge)
    );
    assert_eq!(FrameAllocator::metadata_bytes(&huge), ((1 << 33) + 1) * 32);
}

#[test]
fn metadata_size_follows_the_span() {
    let ranges = [frames(ram_frame(10), 5), frames(ram_frame(0), 3)];
    assert_eq!(FrameAllocator::metadata_len(&ranges), 15);
    assert_eq!(FrameAllocator::metadata_bytes(&ranges), 15 * 32);
    assert_eq!(FrameAllocator::METADATA_ALIGN, 32);
    assert_eq!(core::mem::size_of::<FrameMeta>(), 32);
    // Partial frames are trimmed inward; a range smaller than a frame vanishes.
    let partial = [PhysAddr(RAM + 1)..PhysAddr(RAM + 3 * PAGE_SIZE - 1)];
    assert_eq!(FrameAllocator::metadata_len(&partial), 1);
    let tiny = [PhysAddr(RAM + 1)..PhysAddr(RAM + 100)];
    assert_eq!(FrameAllocator::metadata_len(&tiny), 0);
    assert_eq!(FrameAllocator::metadata_len(&[]), 0);
}

#[test]
fn empty_ram_is_valid_and_always_out_of_memory() {
    let fa = allocator(&[]);
    assert_eq!(fa.alloc(0, FrameUse::Kernel), Err(AllocError::OutOfMemory));
    assert_eq!(
        fa.alloc_on(3, 0, FrameUse::Kernel),
        Err(AllocError::OutOfMemory)
    );
    assert_eq!(fa.free(Pfn(0), 0), Err(FrameError::OutOfRange));
    fa.verify().unwrap();
}

#[test]
fn one_frame_of_ram() {
    let fa = allocator(&[frames(ram_frame(7), 1)]);
    assert_eq!(fa.alloc(1, FrameUse::Kernel), Err(AllocError::OutOfMemory));
    let p = fa.alloc_on(0, 0, FrameUse::Kernel).unwrap();
    assert_eq!(p, Pfn(ram_frame(7)));
    assert_eq!(
        fa.alloc_on(1, 0, FrameUse::Kernel),
        Err(AllocError::OutOfMemory)
    );
    assert_eq!(fa.alloc(0, FrameUse::Kernel), Err(AllocError::OutOfMemory));
    fa.free_on(0, p, 0).unwrap();
    // The frame now sits in hart 0's cache; hart 1 still gets it (drain on failure).
    assert_eq!(fa.alloc_on(1, 0, FrameUse::Slab), Ok(p));
    fa.free(p, 0).unwrap();
    fa.verify().unwrap();
    let s = fa.stats();
    assert_eq!((s.total, s.free, s.used, s.peak_used), (1, 1, 0, 1));
}

#[test]
fn first_and_last_frame_and_full_coalescing() {
    // 1000 frames starting at an odd frame number: blocks of every order up to 8.
    let start = ram_frame(3);
    let fa = allocator(&[frames(start, 1000)]);
    let initial = fa.stats();
    assert_eq!(initial.total, 1000);
    let mut got = BTreeSet::new();
    while let Ok(p) = fa.alloc(0, FrameUse::Kernel) {
        assert!(got.insert(p.0), "frame {p:?} handed out twice");
    }
    assert_eq!(got.len(), 1000);
    assert_eq!(got.first(), Some(&start));
    assert_eq!(got.last(), Some(&(start + 999)));
    assert_eq!(fa.stats().used, 1000);
    fa.verify().unwrap();
    for &p in &got {
        fa.free(Pfn(p), 0).unwrap();
    }
    fa.verify().unwrap();
    assert_eq!(fa.stats().free_blocks, initial.free_blocks);
    fa.stats().check_no_leaks(&initial).unwrap();
}

#[test]
fn blocks_are_naturally_aligned_and_never_cross_gaps() {
    // Odd sizes, unaligned addresses, gaps, given out of order.
    let ranges = [
        PhysAddr(RAM + 5 * PAGE_SIZE + 17)..PhysAddr(RAM + 300 * PAGE_SIZE),
        frames(ram_frame(512), 512),
        frames(ram_frame(1100), 77),
        frames(ram_frame(1024), 76), // touches the next one: they merge
    ];
    let fa = allocator(&ranges);
    let managed = |p: usize| {
        (ram_frame(6)..ram_frame(300)).contains(&p)
            || (ram_frame(512)..ram_frame(1177)).contains(&p)
    };
    assert_eq!(fa.stats().total, 294 + 512 + 153);
    assert_eq!(
        fa.stats().reserved,
        FrameAllocator::metadata_len(&ranges) - fa.stats().total
    );
    for order in 0..=10 {
        let initial = fa.stats();
        let mut blocks = Vec::new();
        while let Ok(p) = fa.alloc(order, FrameUse::UserAnon) {
            assert_eq!(
                p.0 % (1 << order),
                0,
                "order {order} block {p:?} misaligned"
            );
            assert!(
                (p.0..p.0 + (1 << order)).all(managed),
                "block {p:?} crosses a gap"
            );
            blocks.push(p);
        }
        fa.verify().unwrap();
        for p in blocks {
            fa.free(p, order).unwrap();
        }
        assert_eq!(fa.stats().free_blocks, initial.free_blocks);
    }
    // The touching ranges 1024..1100 and 1100..1177 form one run, so 1024..1152 is one
    // order-7 block; the only other one is 128..256 (then the order-9 block at 512).
    let a = fa.alloc(7, FrameUse::Kernel).unwrap();
    let b = fa.alloc(7, FrameUse::Kernel).unwrap();
    let mut got = [a.0, b.0];
    got.sort();
    assert_eq!(got, [ram_frame(128), ram_frame(1024)]);
    assert_eq!(fa.alloc(7, FrameUse::Kernel).unwrap().0, ram_frame(512));
    assert_eq!(fa.alloc(10, FrameUse::Kernel), Err(AllocError::OutOfMemory));
}

#[test]
fn maximum_order_needs_an_aligned_gigabyte() {
    let gib_frames = GIGAPAGE_SIZE / PAGE_SIZE;
    // 2 GiB from a 2 MiB-aligned (not 1 GiB-aligned) start: only one aligned 1 GiB.
    let start = 0x4000_0000 / PAGE_SIZE + 512;
    let fa = allocator(&[frames(start, 2 * gib_frames)]);
    assert_eq!(
        fa.alloc(MAX_ORDER + 1, FrameUse::Kernel),
        Err(AllocError::InvalidOrder)
    );
    let g = fa.alloc(MAX_ORDER, FrameUse::UserAnon).unwrap();
    assert_eq!(g.0, 0x8000_0000 / PAGE_SIZE);
    assert_eq!(
        fa.alloc(MAX_ORDER, FrameUse::UserAnon),
        Err(AllocError::OutOfMemory)
    );
    let m = fa.alloc(9, FrameUse::UserAnon).unwrap();
    assert_eq!(m.0 % 512, 0);
    assert_eq!(
        fa.free(g, 17),
        Err(FrameError::WrongOrder {
            allocated: MAX_ORDER
        })
    );
    fa.free(g, MAX_ORDER).unwrap();
    fa.free(m, 9).unwrap();
    fa.verify().unwrap();
    let s = fa.stats();
    assert_eq!(s.free_blocks[MAX_ORDER], 1);
    assert_eq!(s.free, 2 * gib_frames);
}

#[test]
fn free_rejects_every_bad_request() {
    let ranges = [frames(ram_frame(0), 64), frames(ram_frame(128), 64)];
    let fa = allocator(&ranges);
    let a = fa.alloc(3, FrameUse::Kernel).unwrap();
    assert_eq!(fa.free(a, 2), Err(FrameError::WrongOrder { allocated: 3 }));
    assert_eq!(fa.free(Pfn(a.0 + 1), 0), Err(FrameError::NotHead));
    assert_eq!(fa.free(a, MAX_ORDER + 1), Err(FrameError::InvalidOrder));
    assert_eq!(fa.free(Pfn(ram_frame(100)), 0), Err(FrameError::Reserved));
    assert_eq!(fa.free(Pfn(ram_frame(192)), 0), Err(FrameError::OutOfRange));
    assert_eq!(
        fa.free(Pfn(ram_frame(0) - 1), 0),
        Err(FrameError::OutOfRange)
    );
    assert_eq!(fa.free_on(MAX_HARTS, a, 3), Err(FrameError::InvalidHart));
    assert_eq!(fa.get(Pfn(a.0 + 2)), Err(FrameError::NotHead));
    fa.free(a, 3).unwrap();
    // Double frees, before and after the block merged with its buddies.
    assert_eq!(fa.free(a, 3), Err(FrameError::NotAllocated));
    assert_eq!(fa.free(Pfn(a.0 + 1), 0), Err(FrameError::NotAllocated));
    let b = fa.alloc_on(2, 0, FrameUse::Kernel).unwrap();
    fa.free_on(2, b, 0).unwrap();
    assert_eq!(fa.free_on(2, b, 0), Err(FrameError::NotAllocated)); // cached frame
    assert_eq!(fa.free(b, 0), Err(FrameError::NotAllocated));
    assert_eq!(fa.put(b), Err(FrameError::NotAllocated));
    assert_eq!(fa.get(b), Err(FrameError::NotAllocated));
    assert_eq!(fa.alloc(0, FrameUse::Free), Err(AllocError::InvalidUse));
    assert_eq!(fa.alloc(0, FrameUse::Tail), Err(AllocError::InvalidUse));
    assert_eq!(
        fa.alloc_on(0, 0, FrameUse::Reserved),
        Err(AllocError::InvalidUse)
    );
    assert_eq!(
        fa.alloc_on(MAX_HARTS, 0, FrameUse::Kernel),
        Err(AllocError::InvalidHart)
    );
    assert_eq!(fa.drain_hart(MAX_HARTS), Err(FrameError::InvalidHart));
    fa.verify().unwrap();
}

#[test]
fn reference_counts_share_and_free_at_zero() {
    let fa = allocator(&[frames(ram_frame(0), 64)]);
    let base = fa.stats();
    let p = fa.alloc(2, FrameUse::UserAnon).unwrap();
    assert_eq!(fa.meta(p).unwrap().refcount(), 1);
    assert_eq!(fa.get(p), Ok(2));
    assert_eq!(fa.get(p), Ok(3));
    assert_eq!(fa.free(p, 2), Err(FrameError::Shared { refs: 3 }));
    assert_eq!(fa.put(p), Ok(false));
    assert_eq!(fa.put_on(1, p), Ok(false));
    assert_eq!(fa.stats().used, 4);
    assert_eq!(fa.put_on(1, p), Ok(true)); // order 2: straight to the buddy lists
    assert_eq!(fa.put(p), Err(FrameError::NotAllocated));
    assert_eq!(fa.stats().cached, 0);
    fa.stats().check_no_leaks(&base).unwrap();
    let q = fa.alloc_on(1, 0, FrameUse::UserAnon).unwrap();
    assert_eq!(fa.put_on(1, q), Ok(true));
    assert_eq!(fa.meta(q).unwrap().frame_use(), FrameUse::Free);
    fa.verify().unwrap();
    fa.stats().check_no_leaks(&base).unwrap();
}

#[test]
fn metadata_reports_use_and_blocks() {
    let fa = allocator(&[frames(ram_frame(0), 64), frames(ram_frame(100), 28)]);
    let p = fa.alloc(4, FrameUse::PageTable).unwrap();
    let m = fa.meta(p).unwrap();
    assert_eq!(m.frame_use(), FrameUse::PageTable);
    assert_eq!(m.order(), Some(4));
    assert_eq!(m.mapcount(), 0);
    assert_eq!(fa.meta(Pfn(p.0 + 5)).unwrap().frame_use(), FrameUse::Tail);
    assert_eq!(fa.meta(Pfn(p.0 + 5)).unwrap().order(), None);
    assert_eq!(fa.block_of(Pfn(p.0 + 5)), Some((p, 4)));
    assert_eq!(fa.block_of(p), Some((p, 4)));
    assert_eq!(
        fa.meta(Pfn(ram_frame(80))).unwrap().frame_use(),
        FrameUse::Reserved
    );
    assert_eq!(fa.block_of(Pfn(ram_frame(80))), None);
    assert_eq!(fa.block_of(Pfn(ram_frame(500))), None);
    let i = fa.index_of(p).unwrap();
    assert_eq!(fa.pfn_at(i), Some(p));
    assert_eq!(fa.pfn_at(128), None);
    assert_eq!(fa.index_of(Pfn(ram_frame(128))), None);
    // Free memory: heads report Free, the rest of a free block Tail.
    let (h, k) = fa.block_of(Pfn(ram_frame(40))).unwrap();
    assert_eq!(fa.meta(h).unwrap().frame_use(), FrameUse::Free);
    assert!(h.0 <= ram_frame(40) && ram_frame(40) < h.0 + (1 << k));
    fa.free(p, 4).unwrap();
}

#[test]
fn set_use_moves_the_accounting() {
    let fa = allocator(&[frames(ram_frame(0), 64)]);
    let base = fa.stats();
    let p = fa.alloc_on(0, 0, FrameUse::UserAnon).unwrap();
    let q = fa.alloc(3, FrameUse::Kernel).unwrap();
    let s = fa.stats();
    assert_eq!(s.used_for(FrameUse::UserAnon), 1);
    assert_eq!(s.used_for(FrameUse::Kernel), 8);
    assert_eq!(fa.set_use(p, FrameUse::SwapCache), Ok(FrameUse::UserAnon));
    assert_eq!(fa.set_use(q, FrameUse::Free), Err(FrameError::InvalidUse));
    assert_eq!(
        fa.set_use(Pfn(q.0 + 1), FrameUse::Slab),
        Err(FrameError::NotHead)
    );
    assert_eq!(fa.set_use(q, FrameUse::Slab), Ok(FrameUse::Kernel));
    let s = fa.stats();
    assert_eq!(s.used_for(FrameUse::UserAnon), 0);
    assert_eq!(s.used_for(FrameUse::SwapCache), 1);
    assert_eq!(s.used_for(FrameUse::Slab), 8);
    assert_eq!(s.used_for(FrameUse::Kernel), 0);
    assert_eq!(s.used_by_use.iter().sum::<usize>(), s.used);
    // A leak is reported with its use.
    let leak = s.check_no_leaks(&base).unwrap_err();
    assert_eq!(leak.frames, 9);
    assert_eq!(leak.by_use[FrameUse::Slab.index()], 8);
    assert!(leak.to_string().contains("Slab +8"));
    fa.free_on(5, p, 0).unwrap(); // freed on another hart than it was allocated on
    fa.free(q, 3).unwrap();
    assert_eq!(fa.set_use(q, FrameUse::Slab), Err(FrameError::NotAllocated));
    fa.stats().check_no_leaks(&base).unwrap();
    fa.verify().unwrap();
}

#[test]
fn hart_caches_refill_in_batches_and_drain_when_full() {
    let fa = allocator(&[frames(ram_frame(0), 1024)]);
    let base = fa.stats();
    let p = fa.alloc_on(0, 0, FrameUse::Kernel).unwrap();
    assert_eq!(fa.stats().cached, BATCH - 1);
    let mut held: Vec<Pfn> = (0..300)
        .map(|_| fa.alloc_on(0, 0, FrameUse::Kernel).unwrap())
        .collect();
    held.push(p);
    for p in held.drain(..) {
        fa.free_on(1, p, 0).unwrap();
        assert!(fa.stats().cached <= CACHE_CAPACITY * 2);
    }
    let s = fa.stats();
    assert!(s.cached <= 2 * CACHE_CAPACITY, "cached {}", s.cached);
    fa.verify().unwrap();
    assert_eq!(fa.drain_hart(1).unwrap() + fa.drain_caches(), s.cached);
    assert_eq!(fa.stats().free_blocks, base.free_blocks);
    fa.stats().check_no_leaks(&base).unwrap();
}

#[test]
fn exhaustion_drains_every_cache_and_recovers() {
    let fa = allocator(&[frames(ram_frame(0), 256)]);
    let base = fa.stats();
    // Fill several hart caches, then free everything into them.
    let mut held = Vec::new();
    for hart in 0..4 {
        for _ in 0..20 {
            held.push((hart, fa.alloc_on(hart, 0, FrameUse::Kernel).unwrap()));
        }
    }
    for (hart, p) in held.drain(..) {
        fa.free_on(hart, p, 0).unwrap();
    }
    assert!(fa.stats().cached > 0);
    // The whole RAM as one block exists only once the caches are drained.
    let all = fa.alloc(8, FrameUse::UserAnon).unwrap();
    assert_eq!(fa.stats().cached, 0);
    assert_eq!(
        fa.alloc_on(7, 0, FrameUse::Kernel),
        Err(AllocError::OutOfMemory)
    );
    fa.free(all, 8).unwrap();
    // Exhaust with single frames from many harts, then recover.
    let mut n = 0;
    for hart in (0..MAX_HARTS).cycle() {
        match fa.alloc_on(hart, 0, FrameUse::UserAnon) {
            Ok(p) => held.push((hart, p)),
            Err(e) => {
                assert_eq!(e, AllocError::OutOfMemory);
                break;
            }
        }
        n += 1;
    }
    assert_eq!(n, 256);
    fa.verify().unwrap();
    for (hart, p) in held.drain(..) {
        fa.free_on(hart, p, 0).unwrap();
    }
    fa.drain_caches();
    assert_eq!(fa.stats().free_blocks, base.free_blocks);
    assert_eq!(
        fa.alloc(8, FrameUse::Kernel).map(|p| fa.free(p, 8)),
        Ok(Ok(()))
    );
    let s = fa.stats();
    s.check_no_leaks(&base).unwrap();
    assert_eq!(s.peak_used, 256);
}

#[test]
fn frame_handles_free_on_last_drop() {
    let fa = allocator(&[frames(ram_frame(0), 64)]);
    let base = fa.stats();
    {
        let f = fa.alloc_frame_on(3, 0, FrameUse::UserAnon).unwrap();
        let g = f.try_clone().unwrap();
        assert_eq!(f.meta().refcount(), 2);
        assert_eq!(g.pfn(), f.pfn());
        assert_eq!(f.addr(), f.pfn().addr());
        assert_eq!(f.size(), PAGE_SIZE);
        drop(f);
        assert_eq!(g.meta().refcount(), 1);
        let big = fa.alloc_frame(5, FrameUse::Kernel).unwrap();
        assert_eq!((big.order(), big.size()), (5, 32 * PAGE_SIZE));
        let pfn = big.into_pfn();
        let again = fa.frame(pfn).unwrap();
        assert_eq!(again.order(), 5);
        assert_eq!(fa.meta(pfn).unwrap().refcount(), 2);
        drop(again);
        assert_eq!(fa.put(pfn), Ok(true));
        assert!(fa.frame(pfn).is_err());
        assert!(format!("{g:?}").contains("Frame"));
    }
    fa.stats().check_no_leaks(&base).unwrap();
    fa.verify().unwrap();
}

#[test]
fn replacement_words_are_reset_on_allocation() {
    let fa = allocator(&[frames(ram_frame(0), 8)]);
    let p = fa.alloc_on(0, 0, FrameUse::UserFile).unwrap();
    let m = fa.meta(p).unwrap();
    m.set_owner(0xdead_beef);
    m.insert_flags(pagoda_mm::frame::FrameFlags::DIRTY);
    assert_eq!(m.inc_mapcount(), Some(1));
    m.set_lru_links([1, 2]).unwrap();
    fa.free_on(0, p, 0).unwrap();
    assert!(m.set_lru_links([3, 4]).is_err());
    let q = fa.alloc_on(0, 0, FrameUse::UserAnon).unwrap();
    assert_eq!(q, p, "the hart cache is LIFO");
    assert_eq!(m.owner(), 0);
    assert!(m.flags().is_empty());
    assert_eq!(m.mapcount(), 0);
    assert_eq!(m.lru_links(), Some([pagoda_mm::frame::NO_FRAME; 2]));
    fa.free(q, 0).unwrap();
}

/// A user huge page: a 2 MiB block counted as one (a reference to any of its frames
/// counts on the block), until it is split into 512 single frames of their own.
#[test]
fn a_block_counts_references_to_its_frames_and_splits_into_single_frames() {
    let ranges = [frames(ram_frame(0), 2048)];
    let fa = allocator(&ranges);
    let before = fa.stats();
    let h = fa.alloc(9, FrameUse::UserHuge).unwrap();
    assert_eq!(fa.stats().used_for(FrameUse::UserHuge), 512);
    // Plain get/put refuse a frame inside the block; the block-counting ones count it on
    // the block.
    assert_eq!(fa.get(Pfn(h.0 + 7)), Err(FrameError::NotHead));
    assert_eq!(fa.get_in_block(Pfn(h.0 + 7)), Ok(2));
    assert_eq!(fa.get_in_block(h), Ok(3));
    assert_eq!(fa.meta(h).unwrap().refcount(), 3);
    // A shared block does not split.
    assert_eq!(
        fa.split_block(h, FrameUse::UserAnon, |i| i as u64),
        Err(FrameError::Shared { refs: 3 })
    );
    assert_eq!(
        fa.put_in_block_local_with::<hart_support::ThreadHart>(Pfn(h.0 + 511), |_, _| {}),
        Ok(false)
    );
    assert_eq!(
        fa.put_in_block_local_with::<hart_support::ThreadHart>(Pfn(h.0 + 3), |_, _| {}),
        Ok(false)
    );
    assert_eq!(fa.meta(h).unwrap().refcount(), 1);
    fa.verify().unwrap();
    // Alone: 512 single frames, one reference each, owners by index, moved to UserAnon.
    fa.split_block(h, FrameUse::UserAnon, |i| 1000 + i as u64)
        .unwrap();
    assert_eq!(fa.stats().used_for(FrameUse::UserHuge), 0);
    assert_eq!(fa.stats().used_for(FrameUse::UserAnon), 512);
    for i in 0..512 {
        let m = fa.meta(Pfn(h.0 + i)).unwrap();
        assert_eq!(
            (m.refcount(), m.owner(), m.order()),
            (1, 1000 + i as u64, Some(0))
        );
    }
    fa.verify().unwrap();
    for i in (0..512).rev() {
        assert_eq!(fa.put(Pfn(h.0 + i)), Ok(true));
    }
    fa.verify().unwrap();
    assert_eq!(fa.stats().free, before.free);
}

#[test]
fn the_last_reference_through_a_frame_inside_frees_the_whole_block() {
    let ranges = [frames(ram_frame(0), 2048)];
    let fa = allocator(&ranges);
    let free = fa.stats().free;
    let h = fa.alloc(9, FrameUse::UserHuge).unwrap();
    assert_eq!(fa.get_in_block(Pfn(h.0 + 100)), Ok(2));
    assert_eq!(
        fa.put_in_block_local_with::<hart_support::ThreadHart>(h, |_, _| {}),
        Ok(false)
    );
    let mut last = None;
    assert_eq!(
        fa.put_in_block_local_with::<hart_support::ThreadHart>(Pfn(h.0 + 200), |_, idx| last =
            Some(idx)),
        Ok(true)
    );
    assert!(last.is_some(), "the block's head went through `last`");
    fa.verify().unwrap();
    assert_eq!(fa.stats().free, free);
    // Frames of no allocated block are refused as before.
    assert_eq!(fa.get_in_block(Pfn(h.0 + 5)), Err(FrameError::NotAllocated));
}
