//! Flush-batch tests with a recording `TlbOps`: the page-by-page threshold, targets and
//! hart masks, frees only after the flush, statistics.

mod paging_sim;

use paging_sim::{Recorded, RecordingTlb, SimMemory};
use pagoda_mm::addr::{PAGE_SIZE, PhysAddr, VirtAddr};
use pagoda_mm::paging::{Deferred, PageSize, PageTable, PteFlags, Unmapped};
use pagoda_mm::tlb::{
    AsidAllocator, AsidContext, AtomicHartMask, DEFERRED_CAPACITY, FLUSH_PAGE_THRESHOLD, Flush,
    FlushBatch, FlushTarget, HartMask, TlbCounts, TlbOps,
};

/// A space that ran on `harts` (ASIDs on, 4 harts).
fn space_on(harts: &[usize]) -> AsidContext {
    let alloc = AsidAllocator::new(16, 4);
    let ctx = AsidContext::new();
    for &hart in harts {
        alloc.asid_for(&ctx, hart);
    }
    ctx
}

fn mask(harts: &[usize]) -> HartMask {
    let mut mask = HartMask::EMPTY;
    for &hart in harts {
        mask.insert(hart);
    }
    mask
}

fn frame(i: usize) -> Deferred {
    Deferred::Frame(Unmapped {
        va: VirtAddr(i * PAGE_SIZE),
        pa: PhysAddr(i * PAGE_SIZE),
        size: PageSize::Size4K,
        flags: PteFlags::V | PteFlags::R,
    })
}

#[test]
fn page_flushes_up_to_the_threshold_then_one_asid_flush() {
    let tlb = RecordingTlb::new(0);
    let ctx = space_on(&[0]);
    let mut batch = FlushBatch::<_, Deferred>::new(&tlb, FlushTarget::Space(&ctx));
    let pages: Vec<VirtAddr> = (0..FLUSH_PAGE_THRESHOLD)
        .map(|i| VirtAddr(i * PAGE_SIZE))
        .collect();
    for &va in &pages {
        batch.flush_page(va);
    }
    batch.flush(|_| unreachable!("nothing deferred"));
    assert_eq!(
        tlb.take(),
        [Recorded::Local(Flush::Pages {
            asid: Some(ctx.asid()),
            pages: Vec::leak(pages)
        })]
    );

    for i in 0..=FLUSH_PAGE_THRESHOLD {
        batch.flush_page(VirtAddr(i * PAGE_SIZE));
    }
    batch.flush(|_| unreachable!("nothing deferred"));
    assert_eq!(tlb.take(), [Recorded::Local(Flush::Asid(ctx.asid()))]);
    batch.flush(|_| unreachable!("nothing deferred"));
    assert!(tlb.take().is_empty(), "an empty batch issues nothing");
    assert_eq!(
        tlb.stats().snapshot(),
        TlbCounts {
            pages: FLUSH_PAGE_THRESHOLD as u64,
            asid: 1,
            ..TlbCounts::default()
        }
    );
}

#[test]
fn shootdown_goes_only_to_harts_that_ran_the_space() {
    let tlb = RecordingTlb::new(1);
    // Ran on harts 0 and 3; this hart (1) never ran it: no local flush.
    let ctx = space_on(&[0, 3]);
    let mut batch = FlushBatch::<_, Deferred>::new(&tlb, FlushTarget::Space(&ctx));
    batch.flush_page(VirtAddr(0x1000));
    drop(batch);
    let flush = Flush::Pages {
        asid: Some(ctx.asid()),
        pages: &[VirtAddr(0x1000)],
    };
    assert_eq!(tlb.take(), [Recorded::Remote(mask(&[0, 3]), flush)]);
    let counts = tlb.stats().snapshot();
    assert_eq!(
        (counts.pages, counts.remote_requests, counts.remote_harts),
        (0, 1, 2)
    );

    // A space that never ran anywhere needs no flush at all.
    let idle = AsidContext::new();
    let mut batch = FlushBatch::<_, Deferred>::new(&tlb, FlushTarget::Space(&idle));
    batch.flush_space();
    drop(batch);
    assert!(tlb.take().is_empty());
}

#[test]
fn a_hart_that_switched_away_is_not_shot_down_and_flushes_on_return() {
    let alloc = AsidAllocator::new(16, 4);
    let ctx = AsidContext::new();
    for hart in [0, 3] {
        alloc.asid_for(&ctx, hart);
    }
    ctx.leave(3);
    assert_eq!(ctx.running(), mask(&[0]));
    let tlb = RecordingTlb::new(1);
    let mut batch = FlushBatch::<_, Deferred>::new(&tlb, FlushTarget::Space(&ctx));
    batch.flush_page(VirtAddr(0x1000));
    drop(batch);
    let flush = Flush::Pages {
        asid: Some(ctx.asid()),
        pages: &[VirtAddr(0x1000)],
    };
    assert_eq!(tlb.take(), [Recorded::Remote(mask(&[0]), flush)]);
    // Hart 3 owes the space one ASID flush, once; hart 0 (shot down) owes none beyond
    // the mark every shootdown leaves (harmless: one extra local flush at most).
    let back = alloc.asid_for(&ctx, 3);
    assert!(back.flush_asid && !back.flush_all);
    assert!(!alloc.asid_for(&ctx, 3).flush_asid);
    // With every hart away, a change reaches nobody now.
    ctx.leave(0);
    ctx.leave(3);
    let mut batch = FlushBatch::<_, Deferred>::new(&tlb, FlushTarget::Space(&ctx));
    batch.flush_space();
    drop(batch);
    assert!(tlb.take().is_empty());
    assert!(alloc.asid_for(&ctx, 0).flush_asid);
}

#[test]
fn kernel_target_flushes_every_address_space() {
    let tlb = RecordingTlb::new(0);
    let online = AtomicHartMask::new();
    for hart in 0..3 {
        online.insert(hart);
    }
    let mut batch = FlushBatch::<_, Deferred>::new(&tlb, FlushTarget::Kernel { harts: &online });
    batch.flush_page(VirtAddr(usize::MAX & !0xfff));
    batch.flush(|_| {});
    let flush = Flush::Pages {
        asid: None,
        pages: &[VirtAddr(usize::MAX & !0xfff)],
    };
    assert_eq!(
        tlb.take(),
        [
            Recorded::Local(flush),
            Recorded::Remote(mask(&[1, 2]), flush)
        ]
    );
    batch.flush_space();
    batch.flush(|_| {});
    assert_eq!(
        tlb.take(),
        [
            Recorded::Local(Flush::All),
            Recorded::Remote(mask(&[1, 2]), Flush::All)
        ]
    );
}

#[test]
fn deferred_items_are_released_after_the_flush_and_the_batch_is_bounded() {
    let tlb = RecordingTlb::new(0);
    let ctx = space_on(&[0]);
    let mut batch = FlushBatch::<_, Deferred>::new(&tlb, FlushTarget::Space(&ctx));
    batch.flush_page(VirtAddr(0));
    for i in 0..DEFERRED_CAPACITY {
        batch.defer(frame(i)).unwrap();
    }
    assert_eq!(batch.room(), 0);
    assert_eq!(batch.defer(frame(999)), Err(frame(999)));
    let mut released = Vec::new();
    batch.flush(|item| {
        assert_eq!(
            tlb.stats().snapshot().pages,
            1,
            "flush issued before release"
        );
        released.push(item);
    });
    assert_eq!(
        released,
        (0..DEFERRED_CAPACITY).map(frame).collect::<Vec<_>>()
    );
    assert!(batch.is_empty());
    assert_eq!(batch.room(), DEFERRED_CAPACITY);
}

#[test]
fn without_asids_the_space_is_flushed_as_asid_zero() {
    let tlb = RecordingTlb::new(0);
    let alloc = AsidAllocator::new(0, 1);
    let ctx = AsidContext::new();
    assert!(alloc.asid_for(&ctx, 0).flush_all);
    let mut batch = FlushBatch::<_, Deferred>::new(&tlb, FlushTarget::Space(&ctx));
    batch.flush_space();
    drop(batch);
    assert_eq!(tlb.take(), [Recorded::Local(Flush::Asid(0))]);
}

#[test]
fn unmap_from_a_hart_outside_the_space_only_shoots_down() {
    let mem = SimMemory::new(64);
    let mut table = PageTable::new(&mem).unwrap();
    table
        .map_range(
            VirtAddr(0x20_0000),
            PhysAddr(0x20_0000),
            0x40_0000,
            PteFlags::R | PteFlags::U,
        )
        .unwrap();
    let tlb = RecordingTlb::new(2);
    let ctx = space_on(&[0, 1]);
    let mut batch = FlushBatch::<_, Deferred>::new(&tlb, FlushTarget::Space(&ctx));
    let mut released = Vec::new();
    table
        .unmap_range(VirtAddr(0x20_0000), 0x40_0000, &mut batch, |f| {
            assert_eq!(tlb.stats().snapshot().remote_requests, 1);
            released.push((f.va, f.size));
        })
        .unwrap();
    assert_eq!(
        released,
        [
            (VirtAddr(0x20_0000), PageSize::Size2M),
            (VirtAddr(0x40_0000), PageSize::Size2M)
        ]
    );
    // The level-1 table emptied: whole-ASID flush, to harts 0 and 1 only.
    assert_eq!(
        tlb.take(),
        [Recorded::Remote(mask(&[0, 1]), Flush::Asid(ctx.asid()))]
    );
    assert_eq!(mem.live_tables(), 1);
}
