//! Host tests of the Sv39 page-table library over a simulated memory: every leaf size,
//! splits, largest-leaf range mapping, boundaries, refused requests, table-page lifetime,
//! kernel-half sharing, in-place entry changes, and a property test against a model.

#[path = "support/cases.rs"]
mod cases;
mod paging_sim;

use std::collections::BTreeMap;
use std::vec::Vec;

use paging_sim::{Recorded, RecordingTlb, SimMemory};
use pagoda_mm::addr::{PAGE_SIZE, PhysAddr, VirtAddr};
use pagoda_mm::layout::{GIGAPAGE_SIZE, KERNEL_HALF_START, MEGAPAGE_SIZE, USER_END};
use pagoda_mm::paging::{PHYS_LIMIT, PageSize, PageTable, PagingError, PteFlags, Unmapped};
use pagoda_mm::tlb::{
    AsidAllocator, AsidContext, AtomicHartMask, Flush, FlushBatch, FlushTarget, TlbOps,
};
use proptest::prelude::*;

const RW: PteFlags = PteFlags::R.union(PteFlags::W);
const URW: PteFlags = RW.union(PteFlags::U);
const PA: PhysAddr = PhysAddr(0x8000_0000);

fn sim() -> SimMemory {
    SimMemory::new(4096)
}

/// A space that has run on hart 0 (the recorder's hart), for flush targets.
fn space() -> AsidContext {
    let ctx = AsidContext::new();
    AsidAllocator::new(16, 1).asid_for(&ctx, 0);
    ctx
}

/// Unmaps `va..va+len` and returns the released frames.
fn unmap_all<M: pagoda_mm::paging::PagingMemory>(
    table: &mut PageTable<M>,
    va: usize,
    len: usize,
) -> Result<Vec<Unmapped>, PagingError> {
    let tlb = RecordingTlb::new(0);
    let ctx = space();
    let mut batch = FlushBatch::new(&tlb, FlushTarget::Space(&ctx));
    let mut frames = Vec::new();
    table.unmap_range(VirtAddr(va), len, &mut batch, |f| frames.push(f))?;
    Ok(frames)
}

fn leaves<M: pagoda_mm::paging::PagingMemory>(
    table: &mut PageTable<M>,
    va: usize,
    len: usize,
) -> Vec<(usize, PageSize)> {
    let mut out = Vec::new();
    table
        .for_each_leaf(VirtAddr(va), len, |leaf| {
            out.push((leaf.va().0, leaf.size()))
        })
        .unwrap();
    out
}

#[test]
fn every_leaf_size_maps_translates_and_unmaps() {
    let mem = sim();
    let mut table = PageTable::new(&mem).unwrap();
    let cases = [
        (0x1000, PageSize::Size4K),
        (MEGAPAGE_SIZE * 3, PageSize::Size2M),
        (GIGAPAGE_SIZE * 2, PageSize::Size1G),
    ];
    for (i, &(va, size)) in cases.iter().enumerate() {
        let pa = PhysAddr(GIGAPAGE_SIZE * (i + 1));
        table.map(VirtAddr(va), pa, size, URW).unwrap();
        let offset = size.bytes() - 8;
        let (got, flags, got_size) = table.translate(VirtAddr(va + offset)).unwrap();
        assert_eq!(got, PhysAddr(pa.0 + offset));
        assert_eq!(flags, URW | PteFlags::V);
        assert_eq!(got_size, size);
        assert_eq!(table.translate(VirtAddr(va + size.bytes())), None);
    }
    let tlb = RecordingTlb::new(0);
    let ctx = space();
    for (i, &(va, size)) in cases.iter().enumerate() {
        let mut batch = FlushBatch::new(&tlb, FlushTarget::Space(&ctx));
        let removed = table.unmap(VirtAddr(va), &mut batch).unwrap();
        assert_eq!(
            (removed.pa, removed.size, removed.va),
            (PhysAddr(GIGAPAGE_SIZE * (i + 1)), size, VirtAddr(va))
        );
        assert_eq!(removed.flags, URW | PteFlags::V);
        assert_eq!(table.translate(VirtAddr(va)), None);
    }
    assert_eq!(mem.live_tables(), 1, "only the root is left");
    drop(table);
    assert_eq!(mem.live_tables(), 0);
}

#[test]
fn unmapping_a_page_inside_a_megapage_splits_it() {
    let mem = sim();
    let mut table = PageTable::new(&mem).unwrap();
    let va = 4 * MEGAPAGE_SIZE;
    table
        .map(
            VirtAddr(va),
            PA,
            PageSize::Size2M,
            RW | PteFlags::A | PteFlags::RSW0,
        )
        .unwrap();
    let hole = va + 17 * PAGE_SIZE;
    let frames = unmap_all(&mut table, hole, PAGE_SIZE).unwrap();
    assert_eq!(frames.len(), 1);
    assert_eq!(
        (frames[0].pa, frames[0].size),
        (PhysAddr(PA.0 + 17 * PAGE_SIZE), PageSize::Size4K)
    );
    assert_eq!(table.translate(VirtAddr(hole)), None);
    for page in [0, 16, 18, 511] {
        let (pa, flags, size) = table.translate(VirtAddr(va + page * PAGE_SIZE)).unwrap();
        assert_eq!(
            (pa, size),
            (PhysAddr(PA.0 + page * PAGE_SIZE), PageSize::Size4K)
        );
        assert_eq!(
            flags,
            RW | PteFlags::A | PteFlags::RSW0 | PteFlags::V,
            "flags survive the split"
        );
    }
    assert_eq!(leaves(&mut table, va, MEGAPAGE_SIZE).len(), 511);
    unmap_all(&mut table, va, MEGAPAGE_SIZE).unwrap();
    assert_eq!(mem.live_tables(), 1);
}

#[test]
fn unmapping_a_page_inside_a_gigapage_splits_twice() {
    let mem = sim();
    let mut table = PageTable::new(&mem).unwrap();
    let va = GIGAPAGE_SIZE;
    let pa = PhysAddr(4 * GIGAPAGE_SIZE);
    table.map(VirtAddr(va), pa, PageSize::Size1G, RW).unwrap();
    let hole = va + 300 * MEGAPAGE_SIZE + 5 * PAGE_SIZE;
    let frames = unmap_all(&mut table, hole, PAGE_SIZE).unwrap();
    assert_eq!(
        frames.iter().map(|f| (f.pa, f.size)).collect::<Vec<_>>(),
        [(PhysAddr(pa.0 + hole - va), PageSize::Size4K)]
    );
    let sizes = leaves(&mut table, va, GIGAPAGE_SIZE);
    assert_eq!(
        sizes.iter().filter(|l| l.1 == PageSize::Size2M).count(),
        511
    );
    assert_eq!(
        sizes.iter().filter(|l| l.1 == PageSize::Size4K).count(),
        511
    );
    assert_eq!(table.translate(VirtAddr(hole)), None);
    let probe = va + 300 * MEGAPAGE_SIZE + 6 * PAGE_SIZE + 9;
    assert_eq!(
        table.translate(VirtAddr(probe)).unwrap().0,
        PhysAddr(pa.0 + probe - va)
    );
    let probe = va + 7 * MEGAPAGE_SIZE + 9;
    assert_eq!(
        table.translate(VirtAddr(probe)).unwrap(),
        (
            PhysAddr(pa.0 + probe - va),
            RW | PteFlags::V,
            PageSize::Size2M
        )
    );
    assert_eq!(mem.live_tables(), 3);
    let frames = unmap_all(&mut table, va, GIGAPAGE_SIZE).unwrap();
    assert_eq!(frames.len(), 511 + 511);
    assert_eq!(mem.live_tables(), 1);
}

#[test]
fn protecting_a_page_inside_huge_leaves_splits_only_when_needed() {
    let mem = sim();
    let mut table = PageTable::new(&mem).unwrap();
    let tlb = RecordingTlb::new(0);
    let ctx = space();
    table
        .map(
            VirtAddr(GIGAPAGE_SIZE),
            PA,
            PageSize::Size1G,
            URW | PteFlags::D,
        )
        .unwrap();
    table
        .map(VirtAddr(MEGAPAGE_SIZE), PA, PageSize::Size2M, URW)
        .unwrap();
    let mut batch = FlushBatch::new(&tlb, FlushTarget::Space(&ctx));
    // Same permissions: nothing to split, nothing to flush.
    table
        .protect_range(
            VirtAddr(GIGAPAGE_SIZE + PAGE_SIZE),
            PAGE_SIZE,
            URW,
            &mut batch,
        )
        .unwrap();
    assert!(batch.is_empty());
    assert_eq!(mem.live_tables(), 2);
    let ro = PteFlags::R | PteFlags::U;
    for va in [
        GIGAPAGE_SIZE + 3 * MEGAPAGE_SIZE + PAGE_SIZE,
        MEGAPAGE_SIZE + 8 * PAGE_SIZE,
    ] {
        table
            .protect_range(VirtAddr(va), PAGE_SIZE, ro, &mut batch)
            .unwrap();
        let (_, flags, size) = table.translate(VirtAddr(va)).unwrap();
        assert_eq!(
            (flags & PteFlags::PERMISSIONS, size),
            (ro, PageSize::Size4K)
        );
        let (_, flags, _) = table.translate(VirtAddr(va + PAGE_SIZE)).unwrap();
        assert_eq!(flags & PteFlags::PERMISSIONS, URW);
    }
    let (_, flags, _) = table
        .translate(VirtAddr(GIGAPAGE_SIZE + 3 * MEGAPAGE_SIZE + PAGE_SIZE))
        .unwrap();
    assert!(flags.contains(PteFlags::D), "non-permission bits are kept");
    drop(batch);
    assert_eq!(
        tlb.take(),
        [Recorded::Local(Flush::Pages {
            asid: Some(ctx.asid()),
            pages: &[
                VirtAddr(GIGAPAGE_SIZE + 3 * MEGAPAGE_SIZE + PAGE_SIZE),
                VirtAddr(MEGAPAGE_SIZE + 8 * PAGE_SIZE)
            ],
        })]
    );
}

#[test]
fn map_range_uses_the_largest_leaves() {
    let mem = sim();
    let mut table = PageTable::new(&mem).unwrap();
    // From 8 KiB below a 1 GiB boundary to 2 MiB + 16 KiB past the next one.
    let va = GIGAPAGE_SIZE - 2 * PAGE_SIZE;
    let pa = PhysAddr(3 * GIGAPAGE_SIZE - 2 * PAGE_SIZE);
    let len = 2 * PAGE_SIZE + GIGAPAGE_SIZE + MEGAPAGE_SIZE + 4 * PAGE_SIZE;
    table.map_range(VirtAddr(va), pa, len, RW).unwrap();
    let got = leaves(&mut table, va, len);
    let mut want = vec![(va, PageSize::Size4K), (va + PAGE_SIZE, PageSize::Size4K)];
    want.push((GIGAPAGE_SIZE, PageSize::Size1G));
    want.push((2 * GIGAPAGE_SIZE, PageSize::Size2M));
    for i in 0..4 {
        want.push((
            2 * GIGAPAGE_SIZE + MEGAPAGE_SIZE + i * PAGE_SIZE,
            PageSize::Size4K,
        ));
    }
    assert_eq!(got, want);
    for off in [0, PAGE_SIZE + 1, 2 * PAGE_SIZE + 12345, len - 1] {
        assert_eq!(
            table.translate(VirtAddr(va + off)).unwrap().0,
            PhysAddr(pa.0 + off)
        );
    }
    // pa misaligned against va by 4 KiB: only 4 KiB leaves fit.
    let va2 = 8 * GIGAPAGE_SIZE;
    table
        .map_range(VirtAddr(va2), PhysAddr(PAGE_SIZE), 2 * MEGAPAGE_SIZE, RW)
        .unwrap();
    let got = leaves(&mut table, va2, 2 * MEGAPAGE_SIZE);
    assert_eq!(got.len(), 1024);
    assert!(got.iter().all(|l| l.1 == PageSize::Size4K));
    unmap_all(&mut table, va, len).unwrap();
    unmap_all(&mut table, va2, 2 * MEGAPAGE_SIZE).unwrap();
    assert_eq!(mem.live_tables(), 1);
}

#[test]
fn boundary_addresses() {
    let mem = sim();
    let mut kernel = PageTable::new(&mem).unwrap();
    let top_user = USER_END.0 - PAGE_SIZE;
    let top = usize::MAX - (PAGE_SIZE - 1);
    for va in [0, top_user, KERNEL_HALF_START.0, top] {
        kernel.map(VirtAddr(va), PA, PageSize::Size4K, RW).unwrap();
        assert_eq!(
            kernel.translate(VirtAddr(va + 5)).unwrap().0,
            PhysAddr(PA.0 + 5)
        );
    }
    // Ranges ending exactly at the end of each half.
    kernel
        .map_range(VirtAddr(top_user - PAGE_SIZE), PA, PAGE_SIZE, RW)
        .unwrap();
    assert_eq!(
        leaves(&mut kernel, top - PAGE_SIZE, 2 * PAGE_SIZE),
        [(top, PageSize::Size4K)]
    );
    let frames = unmap_all(&mut kernel, top - 3 * PAGE_SIZE, 4 * PAGE_SIZE).unwrap();
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].va, VirtAddr(top));
    assert_eq!(
        unmap_all(&mut kernel, top_user - PAGE_SIZE, 2 * PAGE_SIZE)
            .unwrap()
            .len(),
        2
    );

    // Non-canonical addresses and ranges through the hole.
    let hole = [
        USER_END.0,
        KERNEL_HALF_START.0 - PAGE_SIZE,
        0x0000_8000_0000_0000,
    ];
    for va in hole {
        assert_eq!(
            kernel.map(VirtAddr(va), PA, PageSize::Size4K, RW),
            Err(PagingError::NonCanonical)
        );
        assert_eq!(kernel.translate(VirtAddr(va)), None);
        assert_eq!(
            kernel.entry(VirtAddr(va)).err(),
            Some(PagingError::NonCanonical)
        );
    }
    assert_eq!(
        kernel.map_range(VirtAddr(top_user), PA, 2 * PAGE_SIZE, RW),
        Err(PagingError::NonCanonical)
    );
    assert_eq!(
        unmap_all(&mut kernel, top, 2 * PAGE_SIZE).err(),
        Some(PagingError::NonCanonical)
    );
    let across = KERNEL_HALF_START.0 + PAGE_SIZE; // 0 .. just past the kernel-half start
    assert_eq!(
        kernel.map_range(VirtAddr(0), PA, across, RW),
        Err(PagingError::NonCanonical)
    );

    // A user table owns only the user half.
    let mut user = PageTable::new_user(&mem, &kernel).unwrap();
    user.map(VirtAddr(top_user), PA, PageSize::Size4K, URW)
        .unwrap();
    for va in [KERNEL_HALF_START.0, top] {
        assert_eq!(
            user.map(VirtAddr(va), PA, PageSize::Size4K, RW),
            Err(PagingError::OutOfRange)
        );
        assert_eq!(
            user.entry(VirtAddr(va)).err(),
            Some(PagingError::OutOfRange)
        );
        assert_eq!(
            unmap_all(&mut user, va, PAGE_SIZE).err(),
            Some(PagingError::OutOfRange)
        );
    }
    assert_eq!(
        user.map_range(VirtAddr(top_user), PA, PAGE_SIZE + 1, URW),
        Err(PagingError::Misaligned)
    );
}

#[test]
fn refused_requests_change_nothing() {
    let mem = sim();
    let mut table = PageTable::new(&mem).unwrap();
    table
        .map(VirtAddr(MEGAPAGE_SIZE), PA, PageSize::Size2M, RW)
        .unwrap();
    table
        .map(
            VirtAddr(8 * MEGAPAGE_SIZE + PAGE_SIZE),
            PA,
            PageSize::Size4K,
            RW,
        )
        .unwrap();
    let live = mem.live_tables();
    let cases: [(usize, PhysAddr, PageSize, PteFlags, PagingError); 10] = [
        (
            PAGE_SIZE + 1,
            PA,
            PageSize::Size4K,
            RW,
            PagingError::Misaligned,
        ),
        (
            PAGE_SIZE,
            PhysAddr(PA.0 + 8),
            PageSize::Size4K,
            RW,
            PagingError::Misaligned,
        ),
        (PAGE_SIZE, PA, PageSize::Size2M, RW, PagingError::Misaligned),
        (
            MEGAPAGE_SIZE * 4,
            PhysAddr(PA.0 + PAGE_SIZE),
            PageSize::Size2M,
            RW,
            PagingError::Misaligned,
        ),
        (
            MEGAPAGE_SIZE + PAGE_SIZE,
            PA,
            PageSize::Size4K,
            RW,
            PagingError::AlreadyMapped,
        ),
        (
            8 * MEGAPAGE_SIZE,
            PA,
            PageSize::Size2M,
            RW,
            PagingError::AlreadyMapped,
        ),
        (0, PA, PageSize::Size1G, RW, PagingError::AlreadyMapped),
        (
            PAGE_SIZE,
            PA,
            PageSize::Size4K,
            PteFlags::W,
            PagingError::InvalidFlags,
        ),
        (
            PAGE_SIZE,
            PA,
            PageSize::Size4K,
            PteFlags::U,
            PagingError::InvalidFlags,
        ),
        (
            PAGE_SIZE,
            PhysAddr(PHYS_LIMIT),
            PageSize::Size4K,
            RW,
            PagingError::OutOfRange,
        ),
    ];
    for (va, pa, size, flags, err) in cases {
        assert_eq!(
            table.map(VirtAddr(va), pa, size, flags),
            Err(err),
            "map {va:#x} {size:?}"
        );
    }
    // A range overlapping a mapping in its middle maps nothing at all.
    assert_eq!(
        table.map_range(VirtAddr(0), PA, 4 * MEGAPAGE_SIZE, RW),
        Err(PagingError::AlreadyMapped)
    );
    assert_eq!(table.translate(VirtAddr(0)), None);
    assert_eq!(
        table.map_range(VirtAddr(0), PA, PAGE_SIZE + 8, RW),
        Err(PagingError::Misaligned)
    );
    assert_eq!(mem.live_tables(), live);

    let tlb = RecordingTlb::new(0);
    let ctx = space();
    let mut batch = FlushBatch::new(&tlb, FlushTarget::Space(&ctx));
    assert_eq!(
        table.unmap(VirtAddr(0), &mut batch),
        Err(PagingError::NotMapped)
    );
    assert_eq!(
        table.unmap(VirtAddr(MEGAPAGE_SIZE + PAGE_SIZE), &mut batch),
        Err(PagingError::Misaligned)
    );
    assert_eq!(
        table.protect_range(VirtAddr(0), PAGE_SIZE, PteFlags::W, &mut batch),
        Err(PagingError::InvalidFlags)
    );
    assert_eq!(
        table.protect_range(VirtAddr(0), PAGE_SIZE, RW | PteFlags::D, &mut batch),
        Err(PagingError::InvalidFlags)
    );
    assert_eq!(
        table.protect_range(VirtAddr(8), PAGE_SIZE, RW, &mut batch),
        Err(PagingError::Misaligned)
    );
    assert_eq!(table.entry(VirtAddr(0)).err(), Some(PagingError::NotMapped));
    assert!(batch.is_empty());
    assert_eq!(mem.live_tables(), live);
}

#[test]
fn running_out_of_table_pages_leaves_no_empty_table() {
    // Root + one level-1 table: a 4 KiB mapping needs two more pages, so it fails.
    let mem = SimMemory::new(2);
    let mut table = PageTable::new(&mem).unwrap();
    assert_eq!(
        table.map(VirtAddr(0), PA, PageSize::Size4K, RW),
        Err(PagingError::OutOfMemory)
    );
    assert_eq!(mem.live_tables(), 1);
    table.map(VirtAddr(0), PA, PageSize::Size2M, RW).unwrap();
    assert_eq!(mem.live_tables(), 2);
    // Splitting needs a page: the unmap fails and the leaf stays whole.
    assert_eq!(
        unmap_all(&mut table, PAGE_SIZE, PAGE_SIZE).err(),
        Some(PagingError::OutOfMemory)
    );
    assert_eq!(
        table.translate(VirtAddr(PAGE_SIZE)).unwrap().2,
        PageSize::Size2M
    );
    unmap_all(&mut table, 0, MEGAPAGE_SIZE).unwrap();
    assert_eq!(mem.live_tables(), 1);

    // map_range out of memory part-way: the prefix stays mapped, unmap_range undoes it.
    let mem = SimMemory::new(4);
    let mut table = PageTable::new(&mem).unwrap();
    let len = 2 * GIGAPAGE_SIZE;
    let va = GIGAPAGE_SIZE - MEGAPAGE_SIZE;
    assert_eq!(
        table.map_range(VirtAddr(va), PhysAddr(PAGE_SIZE), len, RW),
        Err(PagingError::OutOfMemory)
    );
    assert!(table.translate(VirtAddr(va)).is_some());
    assert_eq!(mem.live_tables(), 3);
    unmap_all(&mut table, va, len).unwrap();
    assert_eq!(mem.live_tables(), 1);
    assert_eq!(
        PageTable::new(SimMemory::new(0)).err(),
        Some(PagingError::OutOfMemory)
    );
}

#[test]
fn kernel_half_is_shared_and_never_freed_by_user_tables() {
    let mem = sim();
    let mut kernel = populated_kernel(&mem);
    let image = VirtAddr(usize::MAX - GIGAPAGE_SIZE + 1);
    let kernel_tables = mem.live_tables();
    let mut user = PageTable::new_user(&mem, &kernel).unwrap();
    user.map(
        VirtAddr(0x10000),
        PhysAddr(0x9000_0000),
        PageSize::Size4K,
        URW,
    )
    .unwrap();
    assert_eq!(
        user.translate(VirtAddr(KERNEL_HALF_START.0 + 0x1234)),
        kernel.translate(VirtAddr(KERNEL_HALF_START.0 + 0x1234))
    );
    assert_eq!(user.translate(image).unwrap().0, PA);
    assert_eq!(kernel.translate(VirtAddr(0x10000)), None);
    // Kernel mappings added below an existing root entry appear in the user table.
    kernel
        .map(
            VirtAddr(image.0 + PAGE_SIZE),
            PhysAddr(PA.0 + PAGE_SIZE),
            PageSize::Size4K,
            PteFlags::R | PteFlags::G,
        )
        .unwrap();
    assert!(user.translate(VirtAddr(image.0 + PAGE_SIZE)).is_some());
    let mut reported = Vec::new();
    user.destroy(|leaf| reported.push((leaf.va, leaf.pa, leaf.size)));
    assert_eq!(
        reported,
        [(VirtAddr(0x10000), PhysAddr(0x9000_0000), PageSize::Size4K)]
    );
    assert_eq!(mem.live_tables(), kernel_tables);
    assert!(kernel.translate(image).is_some());
}

#[test]
fn entries_change_in_place() {
    let mem = sim();
    let mut table = PageTable::new(&mem).unwrap();
    table
        .map(
            VirtAddr(0x5000),
            PhysAddr(0x9000_0000),
            PageSize::Size4K,
            URW | PteFlags::A | PteFlags::D,
        )
        .unwrap();
    table
        .map(VirtAddr(MEGAPAGE_SIZE), PA, PageSize::Size2M, URW)
        .unwrap();
    let cow = PteFlags::RSW0;
    {
        let entry = table.entry(VirtAddr(0x5abc)).unwrap();
        assert_eq!(
            (entry.va(), entry.size()),
            (VirtAddr(0x5000), PageSize::Size4K)
        );
        let old = entry
            .update_flags(|f| f.difference(PteFlags::W | PteFlags::A).union(cow))
            .unwrap();
        assert_eq!(old.flags(), URW | PteFlags::A | PteFlags::D | PteFlags::V);
        assert_eq!(
            entry.pte().flags(),
            PteFlags::R | PteFlags::U | PteFlags::D | cow | PteFlags::V
        );
        assert_eq!(
            entry.update_flags(|f| f.difference(PteFlags::R)),
            Err(PagingError::InvalidFlags)
        );
        let old = entry.set_frame(PhysAddr(0x9100_0000), URW).unwrap();
        assert_eq!(old.pa(), PhysAddr(0x9000_0000));
        assert_eq!(
            entry.set_frame(PhysAddr(0x9100_0008), URW),
            Err(PagingError::Misaligned)
        );
    }
    assert_eq!(
        table.translate(VirtAddr(0x5abc)).unwrap().0,
        PhysAddr(0x9100_0abc)
    );
    let entry = table.entry(VirtAddr(MEGAPAGE_SIZE + 0x3000)).unwrap();
    assert_eq!(
        (entry.va(), entry.size()),
        (VirtAddr(MEGAPAGE_SIZE), PageSize::Size2M)
    );
    assert_eq!(
        entry.set_frame(PhysAddr(PA.0 + PAGE_SIZE), URW),
        Err(PagingError::Misaligned)
    );
}

#[test]
fn satp_encodes_mode_asid_and_root() {
    let mem = sim();
    let table = PageTable::new(&mem).unwrap();
    let satp = table.satp(0x1234);
    assert_eq!(satp >> 60, 8);
    assert_eq!((satp >> 44) & 0xffff, 0x1234);
    assert_eq!(satp & ((1 << 44) - 1), table.root().0 >> 12);
}

#[test]
fn unmap_flushes_before_releasing_and_frees_tables() {
    let mem = sim();
    let mut table = PageTable::new(&mem).unwrap();
    let tlb = RecordingTlb::new(0);
    let alloc = AsidAllocator::new(16, 3);
    let ctx = AsidContext::new();
    alloc.asid_for(&ctx, 0);
    alloc.asid_for(&ctx, 2);
    table
        .map_range(VirtAddr(0x10000), PA, 3 * PAGE_SIZE, URW)
        .unwrap();
    table
        .map(VirtAddr(0x40000), PA, PageSize::Size4K, URW)
        .unwrap();
    let mut batch = FlushBatch::new(&tlb, FlushTarget::Space(&ctx));
    let mut released = 0;
    table
        .unmap_range(VirtAddr(0x10000), 3 * PAGE_SIZE, &mut batch, |_| {
            assert_eq!(tlb.stats().snapshot().pages, 3, "released before the flush");
            released += 1;
        })
        .unwrap();
    assert_eq!(released, 3);
    let mut remote = pagoda_mm::tlb::HartMask::EMPTY;
    remote.insert(2);
    // Page flushes only (the level-0 table still holds 0x40000), locally and to hart 2.
    let pages = Flush::Pages {
        asid: Some(ctx.asid()),
        pages: &[VirtAddr(0x10000), VirtAddr(0x11000), VirtAddr(0x12000)],
    };
    assert_eq!(
        tlb.take(),
        [Recorded::Local(pages), Recorded::Remote(remote, pages)]
    );
    let mut batch = FlushBatch::new(&tlb, FlushTarget::Space(&ctx));
    table.unmap(VirtAddr(0x40000), &mut batch).unwrap();
    assert_eq!(
        tlb.take(),
        [
            Recorded::Local(Flush::Asid(ctx.asid())),
            Recorded::Remote(remote, Flush::Asid(ctx.asid()))
        ],
        "emptied tables force a whole-ASID flush"
    );
    assert_eq!(mem.live_tables(), 1);

    // Kernel target: global flushes.
    let online = AtomicHartMask::new();
    online.insert(0);
    table
        .map(
            VirtAddr(KERNEL_HALF_START.0),
            PA,
            PageSize::Size4K,
            RW | PteFlags::G,
        )
        .unwrap();
    table
        .map(
            VirtAddr(KERNEL_HALF_START.0 + PAGE_SIZE),
            PA,
            PageSize::Size4K,
            RW | PteFlags::G,
        )
        .unwrap();
    let mut batch = FlushBatch::new(&tlb, FlushTarget::Kernel { harts: &online });
    let mut frames = Vec::new();
    table
        .unmap_range(VirtAddr(KERNEL_HALF_START.0), PAGE_SIZE, &mut batch, |f| {
            frames.push(f)
        })
        .unwrap();
    assert_eq!(frames.len(), 1);
    assert_eq!(
        tlb.take(),
        [Recorded::Local(Flush::Pages {
            asid: None,
            pages: &[KERNEL_HALF_START]
        })]
    );
}

#[test]
fn large_unmaps_flush_in_bounded_batches() {
    let mem = sim();
    let mut table = PageTable::new(&mem).unwrap();
    let tlb = RecordingTlb::new(0);
    let ctx = space();
    let pages = pagoda_mm::tlb::DEFERRED_CAPACITY * 2 + 10;
    table
        .map_range(VirtAddr(0), PhysAddr(PAGE_SIZE), pages * PAGE_SIZE, URW)
        .unwrap();
    let mut batch = FlushBatch::new(&tlb, FlushTarget::Space(&ctx));
    let mut seen = Vec::new();
    table
        .unmap_range(VirtAddr(0), pages * PAGE_SIZE, &mut batch, |f| {
            seen.push((f.pa, tlb.stats().snapshot().asid))
        })
        .unwrap();
    assert_eq!(seen.len(), pages);
    // Every frame was released after at least one flush, and more than one flush happened.
    assert!(seen.iter().all(|&(_, flushes)| flushes >= 1));
    assert!(tlb.stats().snapshot().asid >= 3);
    seen.sort();
    seen.dedup_by_key(|s| s.0);
    assert_eq!(seen.len(), pages, "each frame released exactly once");
    assert_eq!(mem.live_tables(), 1);
}

// ---- property test against a model ----

const WINDOW_PAGES: usize = 2048; // 8 MiB: four megapages, many table boundaries
const WINDOW_BASE: usize = GIGAPAGE_SIZE - 2 * MEGAPAGE_SIZE; // straddles a 1 GiB boundary

#[derive(Clone, Debug)]
enum Op {
    Map {
        page: usize,
        pages: usize,
        pa_shift: bool,
        flags: PteFlags,
    },
    Unmap {
        page: usize,
        pages: usize,
    },
    Protect {
        page: usize,
        pages: usize,
        perms: PteFlags,
    },
}

fn flags_strategy() -> impl Strategy<Value = PteFlags> {
    prop_oneof![
        Just(URW),
        Just(PteFlags::R | PteFlags::X | PteFlags::U),
        Just(PteFlags::R | PteFlags::RSW0),
        Just(RW | PteFlags::A | PteFlags::D)
    ]
}

fn range_strategy() -> impl Strategy<Value = (usize, usize)> {
    // Ranges aligned to megapages half the time, so huge leaves appear.
    prop_oneof![
        (0..WINDOW_PAGES, 1usize..600).prop_map(|(p, n)| (p, n.min(WINDOW_PAGES - p))),
        (0..4usize, 1usize..4).prop_map(|(m, n)| (m * 512, (n * 512).min(WINDOW_PAGES - m * 512))),
    ]
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        (range_strategy(), any::<bool>(), flags_strategy()).prop_map(
            |((page, pages), pa_shift, flags)| Op::Map {
                page,
                pages,
                pa_shift,
                flags
            }
        ),
        range_strategy().prop_map(|(page, pages)| Op::Unmap { page, pages }),
        (
            range_strategy(),
            prop_oneof![
                Just(PteFlags::R),
                Just(PteFlags::R | PteFlags::U),
                Just(URW | PteFlags::X)
            ]
        )
            .prop_map(|((page, pages), perms)| Op::Protect { page, pages, perms }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases::cases(64)))]

    #[test]
    fn random_operations_agree_with_a_model(ops in proptest::collection::vec(op_strategy(), 1..24)) {
        let mem = sim();
        let mut table = PageTable::new(&mem).unwrap();
        let tlb = RecordingTlb::new(0);
        let ctx = space();
        let mut model: BTreeMap<usize, (usize, PteFlags)> = BTreeMap::new();
        let va = |page: usize| VirtAddr(WINDOW_BASE + page * PAGE_SIZE);
        for op in ops {
            match op {
                Op::Map { page, pages, pa_shift, flags } => {
                    let pa = 0x10_0000_0000 + page * PAGE_SIZE + if pa_shift { PAGE_SIZE } else { 0 };
                    let result = table.map_range(va(page), PhysAddr(pa), pages * PAGE_SIZE, flags);
                    let busy = (page..page + pages).any(|p| model.contains_key(&p));
                    prop_assert_eq!(result.is_err(), busy);
                    if !busy {
                        for i in 0..pages {
                            model.insert(page + i, (pa + i * PAGE_SIZE, flags | PteFlags::V));
                        }
                    }
                }
                Op::Unmap { page, pages } => {
                    let mut batch = FlushBatch::new(&tlb, FlushTarget::Space(&ctx));
                    let mut freed = Vec::new();
                    table.unmap_range(va(page), pages * PAGE_SIZE, &mut batch, |f| freed.push(f)).unwrap();
                    let mut freed_pages: Vec<(usize, usize)> = freed
                        .iter()
                        .flat_map(|f| (0..f.size.pages()).map(move |i| ((f.va.0 - WINDOW_BASE) / PAGE_SIZE + i, f.pa.0 + i * PAGE_SIZE)))
                        .collect();
                    freed_pages.sort();
                    let expected: Vec<(usize, usize)> = (page..page + pages)
                        .filter_map(|p| model.remove(&p).map(|(pa, _)| (p, pa)))
                        .collect();
                    prop_assert_eq!(freed_pages, expected);
                }
                Op::Protect { page, pages, perms } => {
                    let mut batch = FlushBatch::new(&tlb, FlushTarget::Space(&ctx));
                    table.protect_range(va(page), pages * PAGE_SIZE, perms, &mut batch).unwrap();
                    for p in page..page + pages {
                        if let Some(entry) = model.get_mut(&p) {
                            entry.1 = entry.1.difference(PteFlags::PERMISSIONS).union(perms);
                        }
                    }
                }
            }
            for p in 0..WINDOW_PAGES {
                let got = table.translate(va(p)).map(|(pa, flags, _)| (pa.0, flags));
                prop_assert_eq!(got, model.get(&p).copied(), "page {}", p);
            }
        }
        unmap_all(&mut table, WINDOW_BASE, WINDOW_PAGES * PAGE_SIZE).unwrap();
        prop_assert_eq!(mem.live_tables(), 1);
        drop(table);
        prop_assert_eq!(mem.live_tables(), 0);
    }
}

#[test]
fn map_after_unmap_does_not_reuse_a_freed_table() {
    let mem = sim();
    let mut table = PageTable::new(&mem).unwrap();
    table
        .map(VirtAddr(0x1000), PA, PageSize::Size4K, RW)
        .unwrap();
    unmap_all(&mut table, 0x1000, PAGE_SIZE).unwrap();
    assert_eq!(mem.live_tables(), 1);
    // The level-0 table that took the first leaf is gone: this must walk again (the
    // simulated memory panics on any access to a freed table).
    table
        .map(VirtAddr(0x2000), PA, PageSize::Size4K, RW)
        .unwrap();
    assert_eq!(table.translate(VirtAddr(0x2000)).unwrap().0, PA);
    assert_eq!(mem.live_tables(), 3);
}

proptest! {
    /// `next_leaf` visits exactly the leaves `for_each_leaf` does, in order, from any
    /// starting point, in a user table whose kernel half is populated.
    #[test]
    fn next_leaf_agrees_with_a_full_walk(
        pages in proptest::collection::btree_set(0usize..(1 << 19), 0..40),
        huge in proptest::collection::btree_set(1usize..64, 0..4),
        from in 0usize..(1 << 19),
    ) {
        let mem = sim();
        let mut kernel = PageTable::new(&mem).unwrap();
        kernel.map(KERNEL_HALF_START, PA, PageSize::Size4K, RW).unwrap();
        let mut table = PageTable::new_user(&mem, &kernel).unwrap();
        for &g in &huge {
            table.map(VirtAddr(g * GIGAPAGE_SIZE), PA, PageSize::Size2M, URW).unwrap();
        }
        for &p in &pages {
            // Spread over the user half: page p at p * 512 + p % 512.
            let va = (p * 512 + p % 512) * PAGE_SIZE;
            let _ = table.map(VirtAddr(va), PA, PageSize::Size4K, URW);
        }
        let all = leaves(&mut table, 0, USER_END.0);
        let from_va = from * 512 * PAGE_SIZE;
        let mut got = Vec::new();
        let mut cursor = VirtAddr(from_va);
        while let Some((va, _, size)) = table.next_leaf(cursor, USER_END) {
            got.push((va.0, size));
            cursor = VirtAddr(va.0 + size.bytes());
        }
        let want: Vec<_> = all.into_iter().filter(|&(va, size)| va + size.bytes() > from_va).collect();
        prop_assert_eq!(got, want);
        prop_assert!(table.next_leaf(VirtAddr(0), VirtAddr(0)).is_none());
    }
}

/// Fork's copy: one walk write-protects the parent's leaves and fills the child's tables;
/// skipped leaves stay; a child that already maps the range is refused; running out of
/// table pages stops before the leaf that needed one.
#[test]
fn copy_leaves_for_fork() {
    let mem = sim();
    let kernel = PageTable::new(&mem).unwrap();
    let mut parent = PageTable::new_user(&mem, &kernel).unwrap();
    let base = 0x10_0000;
    let pages = [0usize, 1, 2, 511, 512, 513, 2000];
    for &p in &pages {
        let pa = PhysAddr(PA.0 + p * PAGE_SIZE);
        parent
            .map(
                VirtAddr(base + p * PAGE_SIZE),
                pa,
                PageSize::Size4K,
                URW | PteFlags::A,
            )
            .unwrap();
    }
    let mut child = PageTable::new_user(&mem, &kernel).unwrap();
    let mut seen = Vec::new();
    let ro = PteFlags::R | PteFlags::U | PteFlags::RSW0;
    parent
        .copy_leaves(
            &mut child,
            VirtAddr(base),
            4096 * PAGE_SIZE,
            |va, pte, _| {
                seen.push(va.0);
                if va.0 == base + PAGE_SIZE {
                    return None; // skipped: neither side changes
                }
                let child_pte = pagoda_mm::paging::Pte::leaf(pte.pa(), ro);
                Some((ro, Some(child_pte)))
            },
        )
        .unwrap();
    let want: Vec<usize> = pages.iter().map(|p| base + p * PAGE_SIZE).collect();
    assert_eq!(seen, want, "every leaf, in order");
    for &p in &pages {
        let va = VirtAddr(base + p * PAGE_SIZE);
        let (ppa, pflags, _) = parent.translate(va).unwrap();
        if p == 1 {
            assert!(pflags.contains(PteFlags::W));
            assert!(child.translate(va).is_none());
            continue;
        }
        let (cpa, cflags, _) = child.translate(va).unwrap();
        assert_eq!(ppa, cpa);
        assert!(!pflags.contains(PteFlags::W) && pflags.contains(PteFlags::RSW0));
        assert!(pflags.contains(PteFlags::A), "hardware bits kept");
        assert_eq!(cflags.difference(PteFlags::V), ro);
    }
    // The child maps the range now: a second copy is refused.
    let again = parent.copy_leaves(&mut child, VirtAddr(base), PAGE_SIZE, |_, pte, _| {
        Some((pte.flags().difference(PteFlags::V), Some(pte)))
    });
    assert_eq!(again, Err(PagingError::AlreadyMapped));
    // Out of table pages for a fresh child: nothing is decided for the leaf that needed one.
    let tight = SimMemory::new(1);
    let mut small = PageTable::new_user(&tight, &kernel).unwrap();
    let mut calls = 0;
    let r = parent.copy_leaves(&mut small, VirtAddr(base), 4096 * PAGE_SIZE, |_, pte, _| {
        calls += 1;
        Some((pte.flags().difference(PteFlags::V), Some(pte)))
    });
    assert_eq!(r, Err(PagingError::OutOfMemory));
    assert_eq!(calls, 0);
}

/// Teardown in one walk: `clear` reports every leaf once (huge ones too), frees every
/// table page below the root, and leaves an empty table that maps again.
#[test]
fn clear_reports_every_leaf_and_frees_tables() {
    let mem = sim();
    let kernel = PageTable::new(&mem).unwrap();
    let before = mem.live_tables();
    let mut table = PageTable::new_user(&mem, &kernel).unwrap();
    let mut want = Vec::new();
    for p in [0usize, 1, 700, 5000, 1 << 18] {
        let va = 0x10_0000 + p * PAGE_SIZE;
        table.map(VirtAddr(va), PA, PageSize::Size4K, URW).unwrap();
        want.push((va, PageSize::Size4K));
    }
    table
        .map(VirtAddr(8 * GIGAPAGE_SIZE), PA, PageSize::Size2M, URW)
        .unwrap();
    want.push((8 * GIGAPAGE_SIZE, PageSize::Size2M));
    want.sort();
    let mut got = Vec::new();
    table.clear(|u| got.push((u.va.0, u.size)));
    assert_eq!(got, want);
    assert_eq!(mem.live_tables(), before + 1, "only the root is left");
    assert!(leaves(&mut table, 0, USER_END.0).is_empty());
    table
        .map(VirtAddr(0x10_0000), PA, PageSize::Size4K, URW)
        .unwrap();
    assert!(table.translate(VirtAddr(0x10_0000)).is_some());
}

// ---- table pages go back all zero ----
//
// `PagingMemory`'s contract: every page the table code frees is all zero, so a memory may
// hand it out again without zeroing it. The simulated memory asserts it on every
// `free_table` (in every test above too, in debug and release builds); the tests below go
// through each path that frees a table page and check, by the count of live pages, that
// it did free them.

/// A kernel table with its half populated as the kernel's is: a gigapage leaf in the
/// root, and tables below the image's root entry.
fn populated_kernel(mem: &SimMemory) -> PageTable<&SimMemory> {
    let mut kernel = PageTable::new(mem).unwrap();
    kernel
        .map(
            KERNEL_HALF_START,
            PhysAddr(0),
            PageSize::Size1G,
            RW | PteFlags::G | PteFlags::A | PteFlags::D,
        )
        .unwrap();
    let image = VirtAddr(usize::MAX - GIGAPAGE_SIZE + 1);
    kernel
        .map(
            image,
            PA,
            PageSize::Size4K,
            PteFlags::R | PteFlags::X | PteFlags::G,
        )
        .unwrap();
    kernel
}

/// Every path that frees table pages, one by one, each freeing what it should.
#[test]
fn every_freed_table_page_is_zero() {
    let mem = sim();
    let kernel = populated_kernel(&mem);
    let kernel_tables = mem.live_tables();
    let mut table = PageTable::new_user(&mem, &kernel).unwrap();
    let base = mem.live_tables();
    let added = || mem.live_tables() - base;
    // Leaves with every kind of bit the hardware or the VM layer sets.
    let busy = URW | PteFlags::A | PteFlags::D | PteFlags::RSW0 | PteFlags::RSW1;

    // A covered range: its level-0 and level-1 tables.
    table
        .map_range(VirtAddr(0x10_0000), PA, 8 * PAGE_SIZE, busy)
        .unwrap();
    assert_eq!(added(), 2);
    unmap_all(&mut table, 0x10_0000, 8 * PAGE_SIZE).unwrap();
    assert_eq!(added(), 0);

    // Single leaves, the last one emptying its tables.
    for p in [3usize, 200, 511] {
        let pa = PhysAddr(PA.0 + p * PAGE_SIZE);
        let va = VirtAddr(0x20_0000 + p * PAGE_SIZE);
        table.map(va, pa, PageSize::Size4K, busy).unwrap();
    }
    assert_eq!(added(), 2);
    let tlb = RecordingTlb::new(0);
    let ctx = space();
    for p in [200usize, 3, 511] {
        let mut batch = FlushBatch::new(&tlb, FlushTarget::Space(&ctx));
        let va = VirtAddr(0x20_0000 + p * PAGE_SIZE);
        table.unmap(va, &mut batch).unwrap();
    }
    assert_eq!(added(), 0);

    // A split megapage (a table of 512 leaves), unmapped in two pieces.
    table
        .map(VirtAddr(0x40_0000), PA, PageSize::Size2M, busy)
        .unwrap();
    unmap_all(&mut table, 0x40_0000 + 5 * PAGE_SIZE, PAGE_SIZE).unwrap();
    assert_eq!(added(), 2);
    unmap_all(&mut table, 0x40_0000, MEGAPAGE_SIZE).unwrap();
    assert_eq!(added(), 0);

    // A gigapage split twice, then unmapped whole.
    let giga = 2 * GIGAPAGE_SIZE;
    table
        .map(
            VirtAddr(giga),
            PhysAddr(GIGAPAGE_SIZE),
            PageSize::Size1G,
            busy,
        )
        .unwrap();
    unmap_all(&mut table, giga + MEGAPAGE_SIZE + PAGE_SIZE, PAGE_SIZE).unwrap();
    assert_eq!(added(), 2);
    unmap_all(&mut table, giga, GIGAPAGE_SIZE).unwrap();
    assert_eq!(added(), 0);

    // `clear`: every table below the root; the root (holding the kernel half) stays.
    for p in [0usize, 1 << 9, 1 << 18, 1 << 20] {
        let va = VirtAddr(p * PAGE_SIZE);
        table.map(va, PA, PageSize::Size4K, busy).unwrap();
    }
    assert_eq!(added(), 3 + 4);
    table.clear(|_| {});
    assert_eq!(added(), 0);

    // Dropping and destroying user tables: the root goes back with its kernel half
    // cleared.
    table
        .map(VirtAddr(0x10_0000), PA, PageSize::Size4K, busy)
        .unwrap();
    drop(table);
    assert_eq!(mem.live_tables(), kernel_tables);
    let mut table = PageTable::new_user(&mem, &kernel).unwrap();
    table
        .map(VirtAddr(MEGAPAGE_SIZE), PA, PageSize::Size2M, busy)
        .unwrap();
    assert_eq!(mem.live_tables(), kernel_tables + 2);
    table.destroy(|_| {});
    assert_eq!(mem.live_tables(), kernel_tables);
    assert!(
        kernel.translate(KERNEL_HALF_START).is_some(),
        "kernel half intact"
    );

    // Dropping the kernel table: root leaves and tables alike.
    assert_eq!(kernel_tables, 3);
    drop(kernel);
    assert_eq!(mem.live_tables(), 0);
}

/// Running out of memory part-way through a fork: the child's tables go back all zero
/// (a path that could not be completed is `running_out_of_table_pages_leaves_no_empty_table`,
/// whose frees `SimMemory` checks the same way).
#[test]
fn freed_table_pages_are_zero_after_running_out() {
    // A fork whose child memory runs out after some tables: the child drops them all.
    let mem = sim();
    let kernel = populated_kernel(&mem);
    let mut parent = PageTable::new_user(&mem, &kernel).unwrap();
    for p in 0..4usize {
        let va = VirtAddr(p * MEGAPAGE_SIZE);
        parent.map(va, PA, PageSize::Size4K, URW).unwrap();
    }
    let tight = SimMemory::new(4);
    let mut child = PageTable::new_user(&tight, &kernel).unwrap();
    let copied = parent.copy_leaves(&mut child, VirtAddr(0), 4 * MEGAPAGE_SIZE, |_, pte, _| {
        Some((pte.flags().difference(PteFlags::V), Some(pte)))
    });
    assert_eq!(copied, Err(PagingError::OutOfMemory));
    assert_eq!(tight.live_tables(), 4);
    drop(child);
    assert_eq!(tight.live_tables(), 0);
}

/// What the property test below does to a user table.
#[derive(Clone, Debug)]
enum ZeroOp {
    /// A map, unmap or protect of the model test.
    Range(Op),
    /// A gigapage at 4 GiB (if that gigabyte is free), then one 4 KiB page inside it
    /// unmapped (two splits).
    Giga { page: usize },
    /// A fork of the window into a child whose memory holds `pages` table pages (it may
    /// run out), dropped or destroyed afterwards.
    Fork { pages: usize, destroy: bool },
    /// Everything removed (the root stays).
    Clear,
}

fn zero_op_strategy() -> impl Strategy<Value = ZeroOp> {
    prop_oneof![
        6 => op_strategy().prop_map(ZeroOp::Range),
        1 => (0..GIGAPAGE_SIZE / PAGE_SIZE).prop_map(|page| ZeroOp::Giga { page }),
        1 => (1usize..12, any::<bool>()).prop_map(|(pages, destroy)| ZeroOp::Fork { pages, destroy }),
        1 => Just(ZeroOp::Clear),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases::cases(64)))]

    /// Random sequences of every operation on a user table sharing a populated kernel
    /// half: every table page freed on the way (and at the end, when everything is
    /// dropped) is all zero, and every page is freed.
    #[test]
    fn random_operations_free_only_zero_pages(ops in proptest::collection::vec(zero_op_strategy(), 1..24)) {
        let mem = sim();
        let kernel = populated_kernel(&mem);
        let mut table = PageTable::new_user(&mem, &kernel).unwrap();
        let tlb = RecordingTlb::new(0);
        let ctx = space();
        let va = |page: usize| VirtAddr(WINDOW_BASE + page * PAGE_SIZE);
        let giga = 4 * GIGAPAGE_SIZE;
        for op in ops {
            match op {
                ZeroOp::Range(Op::Map { page, pages, pa_shift, flags }) => {
                    let pa = 0x10_0000_0000 + page * PAGE_SIZE + if pa_shift { PAGE_SIZE } else { 0 };
                    let _ = table.map_range(va(page), PhysAddr(pa), pages * PAGE_SIZE, flags);
                }
                ZeroOp::Range(Op::Unmap { page, pages }) => {
                    let mut batch = FlushBatch::new(&tlb, FlushTarget::Space(&ctx));
                    table.unmap_range(va(page), pages * PAGE_SIZE, &mut batch, |_| {}).unwrap();
                }
                ZeroOp::Range(Op::Protect { page, pages, perms }) => {
                    let mut batch = FlushBatch::new(&tlb, FlushTarget::Space(&ctx));
                    table.protect_range(va(page), pages * PAGE_SIZE, perms, &mut batch).unwrap();
                }
                ZeroOp::Giga { page } => {
                    let _ = table.map(VirtAddr(giga), PhysAddr(GIGAPAGE_SIZE), PageSize::Size1G, URW);
                    unmap_all(&mut table, giga + page * PAGE_SIZE, PAGE_SIZE).unwrap();
                }
                ZeroOp::Fork { pages, destroy } => {
                    let child_mem = SimMemory::new(pages);
                    let Ok(mut child) = PageTable::new_user(&child_mem, &kernel) else {
                        continue;
                    };
                    let _ = table.copy_leaves(&mut child, VirtAddr(0), USER_END.0, |_, pte, _| {
                        Some((pte.flags().difference(PteFlags::V), Some(pte)))
                    });
                    if destroy {
                        child.destroy(|_| {});
                    } else {
                        drop(child);
                    }
                    prop_assert_eq!(child_mem.live_tables(), 0);
                }
                ZeroOp::Clear => table.clear(|_| {}),
            }
        }
        drop(table);
        drop(kernel);
        prop_assert_eq!(mem.live_tables(), 0);
    }
}

#[test]
fn remembered_entries_are_not_present_and_go_with_their_range() {
    let mem = sim();
    let mut table = PageTable::new(&mem).unwrap();
    let va = VirtAddr(0x4000_0000);
    let next = VirtAddr(va.0 + PAGE_SIZE);
    table.map(va, PA, PageSize::Size4K, URW).unwrap();
    // Replacing a leaf returns it (its frame is the caller's to flush and release).
    let old = table.remember(va, 0x5eed).unwrap();
    assert!(old.is_leaf() && old.pa() == PA);
    let (pte, size) = table.lookup(va).unwrap();
    assert_eq!(
        (pte.remembered_token(), pte.is_valid(), size),
        (Some(0x5eed), false, PageSize::Size4K)
    );
    assert_eq!(table.translate(va), None, "not present");
    assert_eq!(table.next_leaf(va, next), None, "not a leaf");
    assert_eq!(table.remember(next, 0), Err(PagingError::InvalidFlags));
    assert_eq!(
        table.remember(next, 1 << 63),
        Err(PagingError::InvalidFlags)
    );
    // Nothing maps over it, alone or in a range.
    let refused = Err(PagingError::AlreadyMapped);
    assert_eq!(table.map(va, PA, PageSize::Size4K, URW), refused);
    assert_eq!(table.map_range(va, PA, 2 * PAGE_SIZE, URW), refused);
    // A range removal clears it (nothing to flush or release) and frees the tables it
    // kept alive: only the root is left.
    let before = mem.live_tables();
    table.remember(next, 7).unwrap();
    assert_eq!(mem.live_tables(), before, "same leaf table");
    assert_eq!(unmap_all(&mut table, va.0, 2 * PAGE_SIZE).unwrap(), []);
    assert_eq!(table.lookup(va), None);
    assert_eq!(mem.live_tables(), 1);
    // `clear` and dropping clear them too (the simulated memory checks that every freed
    // page is all zero).
    table.remember(va, 9).unwrap();
    table.clear(|_| panic!("no leaf"));
    assert_eq!(mem.live_tables(), 1);
    table.remember(va, 9).unwrap();
    drop(table);
    assert_eq!(mem.live_tables(), 0);
}

/// A simulated memory whose leaf tables fork may share: holders counted per table page,
/// and the frame references leaves copied out of a shared table take (and give back).
struct SharingMemory {
    mem: SimMemory,
    holders: std::cell::RefCell<BTreeMap<usize, usize>>,
    frame_refs: std::cell::RefCell<BTreeMap<usize, i64>>,
    copies: std::cell::Cell<usize>,
}

// SAFETY: forwards the page calls to `SimMemory`, which upholds the contract; the
// sharing hooks only count.
unsafe impl pagoda_mm::paging::PagingMemory for SharingMemory {
    fn alloc_table(&self) -> Option<PhysAddr> {
        self.mem.alloc_table()
    }
    unsafe fn free_table(&self, pa: PhysAddr) {
        self.holders.borrow_mut().remove(&pa.0);
        // SAFETY: the caller upholds `free_table`'s contract.
        unsafe { self.mem.free_table(pa) }
    }
    fn table_ptr(&self, pa: PhysAddr) -> std::ptr::NonNull<pagoda_mm::paging::TablePage> {
        self.mem.table_ptr(pa)
    }
    fn share_table(&self, pa: PhysAddr) -> bool {
        *self.holders.borrow_mut().entry(pa.0).or_insert(1) += 1;
        true
    }
    fn table_shared(&self, pa: PhysAddr) -> bool {
        self.holders.borrow().get(&pa.0).is_some_and(|&n| n > 1)
    }
    fn leave_table(&self, pa: PhysAddr) -> bool {
        let mut holders = self.holders.borrow_mut();
        let n = holders
            .get_mut(&pa.0)
            .expect("leaving a table never shared");
        if *n > 1 {
            *n -= 1;
            true
        } else {
            false
        }
    }
    fn leaf_copied(&self, leaf: pagoda_mm::paging::Pte) {
        *self.frame_refs.borrow_mut().entry(leaf.pa().0).or_insert(0) += 1;
    }
    fn table_copied(&self) {
        self.copies.set(self.copies.get() + 1);
    }
    fn leaf_released(&self, leaf: pagoda_mm::paging::Pte) {
        *self.frame_refs.borrow_mut().entry(leaf.pa().0).or_insert(0) -= 1;
    }
}

/// Fork's shared leaf tables: tables wholly inside the range are detached from both
/// trees (reads look through them), the first change in one tree copies the table
/// write-protected (one frame reference per leaf) and protects the shared one in place,
/// the last holder links it back without a copy, and teardown lets go of a table still
/// shared and empties one no other tree holds. Every table page is freed at the end.
#[test]
fn shared_tables_detach_copy_attach_and_release() {
    const COW: PteFlags = PteFlags::RSW0;
    let mem = SharingMemory {
        mem: SimMemory::new(64),
        holders: Default::default(),
        frame_refs: Default::default(),
        copies: Default::default(),
    };
    let kernel_mem = sim();
    let kernel = PageTable::new(&kernel_mem).unwrap();
    let mut parent = PageTable::new_user(&mem, &kernel).unwrap();
    let mut child = PageTable::new_user(&mem, &kernel).unwrap();
    let protect = |flags: PteFlags| flags.difference(PteFlags::W).union(COW);
    parent.enable_sharing(PteFlags::W, COW);
    child.enable_sharing(PteFlags::W, COW);
    let base = 0x4000_0000;
    let va = |page: usize| VirtAddr(base + page * PAGE_SIZE);
    let pa = |page: usize| PhysAddr(PA.0 + page * PAGE_SIZE);
    // Two tables wholly inside the copied range, one page in a third one that is not.
    let pages: Vec<usize> = (0..600).chain([1100]).collect();
    for &p in &pages {
        parent
            .map(
                va(p),
                pa(p),
                PageSize::Size4K,
                URW | PteFlags::A | PteFlags::D,
            )
            .unwrap();
    }
    // A swap entry in the third table.
    parent.remember(va(1101), 77).unwrap();
    let mut copied = Vec::new();
    let shared = parent
        .copy_leaves_shared(&mut child, va(0), 1101 * PAGE_SIZE, |va, pte, _| {
            copied.push(va.0);
            let ro = protect(pte.flags().difference(PteFlags::V));
            Some((ro, Some(pagoda_mm::paging::Pte::leaf(pte.pa(), ro))))
        })
        .unwrap();
    assert_eq!(shared, 2);
    assert_eq!(
        copied,
        vec![va(1100).0],
        "only the leaf outside the shared tables"
    );
    for table in [&parent, &child] {
        for p in [0, 511, 512, 599] {
            let (pte, size, shared) = table.lookup_shared(va(p)).unwrap();
            assert!(shared && size == PageSize::Size4K && pte.pa() == pa(p));
        }
        assert!(!table.lookup_shared(va(1100)).unwrap().2);
        assert_eq!(
            table.next_leaf(va(1), va(2000)).unwrap().0,
            va(1),
            "read through"
        );
    }
    // Fork's walk for swap entries (after sharing) finds the parent's one and leaves the
    // shared tables detached (it attached them all once: a regression).
    let mut tokens = Vec::new();
    parent
        .remembered_range(va(0), 1200 * PAGE_SIZE, false, |va, token| {
            tokens.push((va, token))
        })
        .unwrap();
    assert_eq!(tokens, vec![(va(1101), 77)]);
    assert!(parent.lookup_shared(va(0)).unwrap().2 && parent.lookup_shared(va(512)).unwrap().2);
    // A change in the child copies the first table, protected on both sides.
    child.entry(va(5)).unwrap();
    assert_eq!(mem.copies.get(), 1);
    assert_eq!(
        mem.frame_refs.borrow().len(),
        512,
        "one reference per copied leaf"
    );
    let (_, flags, _) = child.translate(va(5)).unwrap();
    assert!(!flags.contains(PteFlags::W) && flags.contains(COW));
    assert!(!child.lookup_shared(va(5)).unwrap().2);
    // The parent is now the table's last holder: it links it back, protected in place.
    parent.entry(va(5)).unwrap();
    assert_eq!(mem.copies.get(), 1, "no second copy");
    let (_, flags, _) = parent.translate(va(5)).unwrap();
    assert!(!flags.contains(PteFlags::W) && flags.contains(COW));
    // The second table: still shared by both. The child lets go of it; the parent
    // empties it, reporting each leaf once.
    child.clear(|_| {});
    assert!(parent.lookup_shared(va(512)).unwrap().2);
    let mut released = 0;
    parent
        .remembered_range(va(0), 1200 * PAGE_SIZE, true, |_, _| {})
        .unwrap();
    parent.clear(|_| released += 1);
    assert_eq!(released, pages.len());
    assert_eq!(mem.mem.live_tables(), 2, "the two roots");
    drop(child);
    drop(parent);
    assert_eq!(mem.mem.live_tables(), 0);
}
