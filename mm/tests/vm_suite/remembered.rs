//! The "not present, remembered" state (a swap entry in a non-present PTE), on both
//! tables: `Mmu::remember` replaces a PTE after flushing it on every hart and `query`
//! reports the entry; in an address space, `remember_page` swaps a private page out, a
//! fault there is a bus error, `fork` copies the entry (one more reference to its
//! slot), `mprotect` keeps it, and `munmap`, `madvise(MADV_DONTNEED)` and exit drop it.

use pagoda_mm::addr::{PAGE_SIZE, PhysAddr, VirtAddr};
use pagoda_mm::tlb::PendingFlush;
use pagoda_mm::vm::abi::*;
use pagoda_mm::vm::{
    Access, FaultError, FrameSource, Mmu, PagePerms, PteState, SwapEntry, VmError,
};

use super::Table;
use super::sim::{SimFrames, SimMmu, new_space, read, write};
use crate::harts::{SimHarts, Table as _};

const P: usize = PAGE_SIZE;
const VA: usize = 0x10_0000;

#[test]
fn swap_entries_encode_area_and_slot() {
    let e = SwapEntry::new(31, SwapEntry::SLOTS - 1).unwrap();
    assert_eq!((e.area(), e.slot()), (31, SwapEntry::SLOTS - 1));
    assert!(e.token() != 0 && e.token() < 1 << 62);
    assert_eq!(SwapEntry::from_token(e.token()), Some(e));
    assert_eq!(SwapEntry::new(32, 0), None);
    assert_eq!(SwapEntry::new(0, SwapEntry::SLOTS), None);
    assert_eq!(SwapEntry::from_token(0), None);
    assert_eq!(SwapEntry::from_token(2), None);
    let z = SwapEntry::new(0, 0).unwrap();
    assert_eq!((z.area(), z.slot()), (0, 0));
}

#[test]
fn remember_flushes_the_page_it_replaces_on_every_hart() {
    let harts = SimHarts::new(2);
    let mut table = Table::create(harts.clone());
    table.activate(1);
    let (va, pa) = (VirtAddr(VA), PhysAddr(0x9000_0000));
    let rw = PagePerms::READ | PagePerms::WRITE | PagePerms::USER;
    table.map(va, pa, rw, false).unwrap();
    harts.fill(1, VA, (pa, rw), false);
    let (e1, e2) = (
        SwapEntry::new(1, 42).unwrap(),
        SwapEntry::new(2, 43).unwrap(),
    );
    let old = table.remember(va, e1).unwrap().expect("a page was present");
    assert_eq!((old.pa, old.flags), (pa, rw));
    assert_eq!(
        harts.cached(1, VA),
        None,
        "flushed before the frame was handed back"
    );
    assert_eq!(table.query(va), PteState::Remembered(e1));
    assert_eq!(table.next_mapped(va, VirtAddr(VA + P)), None);
    // Remembering over a remembered or empty page replaces nothing present.
    assert_eq!(table.remember(va, e2), Ok(None));
    assert_eq!(table.query(va), PteState::Remembered(e2));
    let mut seen = Vec::new();
    table.remembered_range(VirtAddr(0), VirtAddr(VA + P), false, |va, e| {
        seen.push((va, e))
    });
    assert_eq!(seen, [(va, e2)]);
    table.unmap_range(va, VirtAddr(VA + P), |_, _| panic!("nothing present"));
    assert_eq!(table.query(va), PteState::Absent);
    assert_eq!(table.tables_below_root(), 0);
}

#[test]
fn remember_deferred_owes_the_flush_until_it_is_issued() {
    let harts = SimHarts::new(2);
    let mut table = Table::create(harts.clone());
    table.activate(1);
    let rw = PagePerms::READ | PagePerms::WRITE | PagePerms::USER;
    let pages = [(VA, PhysAddr(0x9000_0000)), (VA + P, PhysAddr(0x9000_1000))];
    for (va, pa) in pages {
        table.map(VirtAddr(va), pa, rw, false).unwrap();
        harts.fill(1, va, (pa, rw), false);
    }
    let mut pending = PendingFlush::new();
    for (i, (va, pa)) in pages.into_iter().enumerate() {
        let e = SwapEntry::new(0, 7 + i as u64).unwrap();
        let old = table
            .remember_deferred(VirtAddr(va), e, &mut pending)
            .unwrap()
            .expect("a page was present");
        assert_eq!(old.pa, pa);
        assert_eq!(table.query(VirtAddr(va)), PteState::Remembered(e));
    }
    if !pending.is_empty() {
        // Deferred (the Sv39 table): hart 1 still holds both stale translations, which
        // is what the owed flush is for.
        assert!(pages.iter().all(|&(va, _)| harts.cached(1, va).is_some()));
    }
    pending.issue(&harts);
    assert!(pending.is_empty());
    for (va, _) in pages {
        assert_eq!(
            harts.cached(1, va),
            None,
            "flushed once the batch is issued"
        );
    }
}

/// A space with one private page written at VA, swapped out to a fresh slot.
fn swapped_out() -> (std::sync::Arc<SimFrames>, super::sim::Space, SwapEntry) {
    let frames = SimFrames::new();
    let mut s = new_space(&frames);
    let rw = PROT_READ | PROT_WRITE;
    s.mmap(
        VA,
        2 * P,
        rw,
        MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
        None,
        0,
    )
    .unwrap();
    write(&mut s, &frames, VA, 7).unwrap();
    write(&mut s, &frames, VA + P, 8).unwrap();
    let entry = frames.new_slot(1);
    let pa = s.mmu().query_page(VA).pa;
    frames.save_to_slot(entry, pa);
    assert_eq!(s.remember_page(VirtAddr(VA), entry), Ok(pa));
    assert_eq!(s.rss_pages(), 1);
    assert_eq!(s.swap_entries(), 1);
    assert_eq!(frames.live(), 1, "the swapped-out frame was freed");
    (frames, s, entry)
}

#[test]
fn a_fault_on_a_swapped_page_asks_for_a_swap_in_and_munmap_frees_its_slot() {
    let (frames, mut s, entry) = swapped_out();
    assert_eq!(
        s.handle_fault(VirtAddr(VA), Access::Read),
        Err(FaultError::SwappedOut(entry))
    );
    assert_eq!(s.mmu().query(VirtAddr(VA)), PteState::Remembered(entry));
    s.munmap(VA, P).unwrap();
    assert_eq!(s.mmu().query(VirtAddr(VA)), PteState::Absent);
    assert_eq!((s.swap_entries(), frames.live_slots()), (0, 0));
    assert_eq!(read(&mut s, &frames, VA + P), Ok(8));
}

#[test]
fn mprotect_keeps_a_swap_entry_and_dontneed_drops_it() {
    let (frames, mut s, entry) = swapped_out();
    s.mprotect(VA, 2 * P, PROT_READ).unwrap();
    assert_eq!(s.mmu().query(VirtAddr(VA)), PteState::Remembered(entry));
    s.mprotect(VA, 2 * P, PROT_NONE).unwrap();
    s.mprotect(VA, 2 * P, PROT_READ | PROT_WRITE).unwrap();
    assert_eq!(s.mmu().query(VirtAddr(VA)), PteState::Remembered(entry));
    assert_eq!(frames.slot_refs(entry), 1);
    s.madvise(VA, P, MADV_DONTNEED).unwrap();
    assert_eq!(frames.live_slots(), 0);
    assert_eq!(
        read(&mut s, &frames, VA),
        Ok(0),
        "anonymous memory reads back zeros"
    );
}

#[test]
fn fork_copies_a_swap_entry_and_each_exit_drops_one_reference() {
    let (frames, mut s, entry) = swapped_out();
    let mut child = s.fork(SimMmu::new()).unwrap();
    assert_eq!(child.mmu().query(VirtAddr(VA)), PteState::Remembered(entry));
    assert_eq!((child.swap_entries(), frames.slot_refs(entry)), (1, 2));
    assert_eq!(read(&mut child, &frames, VA + P), Ok(8));
    drop(s);
    assert_eq!(frames.slot_refs(entry), 1);
    assert_eq!(
        child.handle_fault(VirtAddr(VA), Access::Write),
        Err(FaultError::SwappedOut(entry))
    );
    drop(child);
    assert_eq!((frames.live_slots(), frames.live()), (0, 0));
}

#[test]
fn only_present_private_pages_can_be_swapped_out() {
    let frames = SimFrames::new();
    let mut s = new_space(&frames);
    let rw = PROT_READ | PROT_WRITE;
    let a = s
        .mmap(0, P, rw, MAP_PRIVATE | MAP_ANONYMOUS, None, 0)
        .unwrap()
        .0;
    let sh = s
        .mmap(0, P, rw, MAP_SHARED | MAP_ANONYMOUS, None, 0)
        .unwrap()
        .0;
    let entry = frames.new_slot(1);
    assert_eq!(
        s.remember_page(VirtAddr(a), entry),
        Err(VmError::Inval),
        "not present"
    );
    read(&mut s, &frames, a).unwrap();
    assert_eq!(
        s.remember_page(VirtAddr(a), entry),
        Err(VmError::Inval),
        "the zero page"
    );
    write(&mut s, &frames, sh, 1).unwrap();
    assert_eq!(
        s.remember_page(VirtAddr(sh), entry),
        Err(VmError::Inval),
        "shared"
    );
    assert_eq!(s.swap_entries(), 0);
    frames.drop_slot(entry);
}

#[test]
fn a_swapped_page_comes_back_and_fork_keeps_the_copies_apart() {
    let (frames, mut s, entry) = swapped_out();
    let mut child = s.fork(SimMmu::new()).unwrap();
    assert_eq!(frames.slot_refs(entry), 2);
    // The child brings the page in (read-only, copy-on-write) and writes it: a copy.
    assert_eq!(read(&mut child, &frames, VA), Ok(7));
    assert_eq!(frames.slot_refs(entry), 1);
    assert_eq!((child.swap_entries(), child.rss_pages()), (0, 2));
    write(&mut child, &frames, VA, 9).unwrap();
    // The parent still reads its own value from the slot.
    assert_eq!(read(&mut s, &frames, VA), Ok(7));
    assert_eq!(frames.live_slots(), 0);
    write(&mut s, &frames, VA, 5).unwrap();
    assert_eq!(read(&mut child, &frames, VA), Ok(9));
    assert_eq!(read(&mut s, &frames, VA), Ok(5));
    drop((s, child));
    assert_eq!((frames.live_slots(), frames.live()), (0, 0));
}

#[test]
fn swapoff_walks_every_remembered_page_and_brings_it_back_counting_no_fault() {
    let frames = SimFrames::new();
    let mut s = new_space(&frames);
    let rw = PROT_READ | PROT_WRITE;
    let anon = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
    // Two areas with a hole between them; pages 0, 2, 3 of the first and 1 of the
    // second swapped out.
    s.mmap(VA, 4 * P, rw, anon, None, 0).unwrap();
    s.mmap(VA + 8 * P, 2 * P, rw, anon, None, 0).unwrap();
    let out = [VA, VA + 2 * P, VA + 3 * P, VA + 9 * P];
    for (i, &a) in out.iter().enumerate() {
        write(&mut s, &frames, a, 10 + i as u8).unwrap();
    }
    write(&mut s, &frames, VA + P, 99).unwrap();
    let mut entries = Vec::new();
    for &a in &out {
        let entry = frames.new_slot(1);
        let pa = s.mmu().query_page(a).pa;
        frames.save_to_slot(entry, pa);
        s.remember_page(VirtAddr(a), entry).unwrap();
        entries.push((VirtAddr(a), entry));
    }
    // The whole walk, in address order.
    let mut seen = Vec::new();
    assert_eq!(
        s.remembered_pages(VirtAddr(0), |va, e| {
            seen.push((va, e));
            true
        }),
        None
    );
    assert_eq!(seen, entries);
    // Declining the third stops there and resumes at it; from inside an area, only
    // what lies above.
    let mut taken = 0;
    let resume = s.remembered_pages(VirtAddr(0), |_, _| {
        taken += 1;
        taken <= 2
    });
    assert_eq!(resume, Some(VirtAddr(VA + 3 * P)));
    let mut rest = Vec::new();
    s.remembered_pages(resume.unwrap(), |va, _| {
        rest.push(va);
        true
    });
    assert_eq!(rest, [VirtAddr(VA + 3 * P), VirtAddr(VA + 9 * P)]);
    // Bringing each back: mapped, the slot's reference dropped, no major fault.
    let faults = s.stats().major_faults;
    for &(va, e) in &entries {
        let owner = s.private_owner_of(va).unwrap();
        let pa = frames.read_slot(e, owner).unwrap();
        assert_eq!(s.swap_in_page(va, e, pa, false), Ok(true));
        assert_eq!(s.swap_in_page(va, e, pa, false), Ok(false), "already back");
        frames.put(pa);
    }
    assert_eq!((s.swap_entries(), frames.live_slots()), (0, 0));
    assert_eq!(s.stats().major_faults, faults);
    assert_eq!(s.remembered_pages(VirtAddr(0), |_, _| true), None);
    for (i, &a) in out.iter().enumerate() {
        assert_eq!(read(&mut s, &frames, a), Ok(10 + i as u8));
    }
    assert_eq!(read(&mut s, &frames, VA + P), Ok(99));
}

#[test]
fn private_pages_walks_present_private_pages_in_order_and_resumes() {
    let frames = SimFrames::new();
    let mut s = new_space(&frames);
    let rw = PROT_READ | PROT_WRITE;
    let anon = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
    // A private area with pages 0, 2 written and page 1 only read (the zero page), a
    // shared area written (not private: skipped), a second private area with page 1
    // written and page 0 swapped out.
    s.mmap(VA, 3 * P, rw, anon, None, 0).unwrap();
    s.mmap(
        VA + 4 * P,
        2 * P,
        rw,
        MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED,
        None,
        0,
    )
    .unwrap();
    s.mmap(VA + 8 * P, 2 * P, rw, anon, None, 0).unwrap();
    for a in [VA, VA + 2 * P, VA + 4 * P, VA + 8 * P, VA + 9 * P] {
        write(&mut s, &frames, a, 7).unwrap();
    }
    read(&mut s, &frames, VA + P).unwrap();
    let entry = frames.new_slot(1);
    let pa = s.mmu().query_page(VA + 8 * P).pa;
    frames.save_to_slot(entry, pa);
    s.remember_page(VirtAddr(VA + 8 * P), entry).unwrap();
    let want = [VA, VA + 2 * P, VA + 9 * P];
    let mut seen = Vec::new();
    assert_eq!(
        s.private_pages(VirtAddr(0), |va, pa| {
            seen.push((va.0, pa));
            true
        }),
        None
    );
    assert_eq!(seen.iter().map(|&(va, _)| va).collect::<Vec<_>>(), want);
    for &(va, pa) in &seen {
        assert_eq!(pa, s.mmu().query_page(va).pa, "the frame mapped at {va:#x}");
    }
    // Declining the second stops there; resuming from it sees the rest.
    let mut taken = 0;
    let resume = s.private_pages(VirtAddr(0), |_, _| {
        taken += 1;
        taken < 2
    });
    assert_eq!(resume, Some(VirtAddr(VA + 2 * P)));
    let mut rest = Vec::new();
    s.private_pages(resume.unwrap(), |va, _| {
        rest.push(va.0);
        true
    });
    assert_eq!(rest, [VA + 2 * P, VA + 9 * P]);
}
