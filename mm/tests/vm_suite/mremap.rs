//! `mremap` on both tables: growing and shrinking in place, moving with `MREMAP_MAYMOVE`,
//! `MREMAP_FIXED` and `MREMAP_DONTUNMAP` by moving entries (the same frames at the new
//! address, no page copied), swap entries and copy-on-write sharing kept, the old
//! translations flushed on every hart before the call returns, and Linux's errors.

use std::sync::Arc;

use pagoda_mm::addr::{PAGE_SIZE, VirtAddr};
use pagoda_mm::vm::abi::*;
use pagoda_mm::vm::{AddressSpace, FrameSource, Lock, MmapFile, Mmu, PteState, VmConfig, VmError};

use super::sim::{
    SimFile, SimFrames, SimMmu, Space, check_invariants, file_byte, new_space, read, write,
};

const P: usize = PAGE_SIZE;
const RW: usize = PROT_READ | PROT_WRITE;
const ANON: usize = MAP_PRIVATE | MAP_ANONYMOUS;
const MAYMOVE: usize = MREMAP_MAYMOVE;
const FIXED: usize = MREMAP_MAYMOVE | MREMAP_FIXED;
const DONTUNMAP: usize = MREMAP_MAYMOVE | MREMAP_DONTUNMAP;
const A: usize = 0x1000_0000;
const B: usize = 0x2000_0000;

/// `pages` anonymous pages at `A`, page `i` holding `i + 1`.
fn filled(frames: &Arc<SimFrames>, pages: usize) -> Space {
    let mut s = new_space(frames);
    s.mmap(A, pages * P, RW, ANON | MAP_FIXED, None, 0).unwrap();
    for i in 0..pages {
        write(&mut s, frames, A + i * P, i as u8 + 1).unwrap();
    }
    s
}

fn frame_at(s: &Space, va: usize) -> Option<usize> {
    s.mmu().query(VirtAddr(va)).present().map(|p| p.pa.0)
}

#[test]
fn shrink_unmaps_the_tail_and_grow_in_place_keeps_the_pages() {
    let frames = SimFrames::new();
    let mut s = filled(&frames, 4);
    assert_eq!(s.mremap(A, 4 * P, 2 * P, 0, 0).unwrap().addr, VirtAddr(A));
    assert_eq!(frames.live(), 2, "the tail's frames were freed");
    assert_eq!(
        s.area_containing(VirtAddr(A)).unwrap().range.end,
        VirtAddr(A + 2 * P)
    );
    let before = frame_at(&s, A + P);
    let r = s.mremap(A, 2 * P, 6 * P, 0, 0).unwrap();
    assert_eq!((r.addr, r.populate), (VirtAddr(A), None));
    assert_eq!(frame_at(&s, A + P), before, "same frame, in place");
    assert_eq!(s.area_count(), 1, "one area again");
    assert_eq!(read(&mut s, &frames, A + P), Ok(2));
    assert_eq!(
        read(&mut s, &frames, A + 5 * P),
        Ok(0),
        "the grown part is fresh"
    );
    check_invariants(&[&s], &frames);
}

#[test]
fn a_blocked_growth_moves_only_with_maymove_and_keeps_every_frame() {
    let frames = SimFrames::new();
    let mut s = filled(&frames, 3);
    s.mmap(A + 3 * P, P, PROT_READ, ANON | MAP_FIXED, None, 0)
        .unwrap();
    assert_eq!(s.mremap(A, 3 * P, 5 * P, 0, 0), Err(VmError::NoMem));
    let old: Vec<_> = (0..3).map(|i| frame_at(&s, A + i * P)).collect();
    let live = frames.live();
    let new = s.mremap(A, 3 * P, 5 * P, MAYMOVE, 0).unwrap().addr.0;
    assert_ne!(new, A);
    assert_eq!(frames.live(), live, "no page copied");
    for (i, &frame) in old.iter().enumerate() {
        assert_eq!(frame_at(&s, new + i * P), frame, "page {i} moved");
        assert_eq!(s.mmu().query(VirtAddr(A + i * P)), PteState::Absent);
        assert_eq!(read(&mut s, &frames, new + i * P), Ok(i as u8 + 1));
    }
    assert!(
        s.area_containing(VirtAddr(A)).is_none(),
        "old range unmapped"
    );
    assert_eq!(s.rss_pages(), 3);
    check_invariants(&[&s], &frames);
    drop(s);
    assert_eq!(frames.live(), 0);
}

#[test]
fn fixed_replaces_the_target_and_dontunmap_leaves_an_empty_range() {
    let frames = SimFrames::new();
    let mut s = filled(&frames, 2);
    s.mmap(B, 4 * P, PROT_READ, ANON | MAP_FIXED, None, 0)
        .unwrap();
    write(&mut s, &frames, A, 9).unwrap();
    s.mprotect(B, 4 * P, RW).unwrap();
    write(&mut s, &frames, B + 3 * P, 5).unwrap();
    assert_eq!(
        s.mremap(A, 2 * P, 2 * P, FIXED, B).unwrap().addr,
        VirtAddr(B)
    );
    assert_eq!(read(&mut s, &frames, B), Ok(9));
    assert_eq!(
        read(&mut s, &frames, B + 3 * P),
        Ok(5),
        "the rest of the target stays"
    );
    assert_eq!(
        s.area_containing(VirtAddr(B)).unwrap().prot.bits(),
        RW as u8
    );
    let got = s.mremap(B, 2 * P, 2 * P, DONTUNMAP, 0).unwrap().addr.0;
    assert_eq!(read(&mut s, &frames, got), Ok(9));
    assert_eq!(read(&mut s, &frames, got + P), Ok(2));
    assert_eq!(
        read(&mut s, &frames, B),
        Ok(0),
        "DONTUNMAP: old range reads zeros"
    );
    check_invariants(&[&s], &frames);
}

#[test]
fn linux_errors() {
    let frames = SimFrames::new();
    let mut s = filled(&frames, 4);
    let e = |s: &mut Space, a, o, n, f, na| s.mremap(a, o, n, f, na).map(|r| r.addr.0);
    assert_eq!(
        e(&mut s, A, P, P, 8, 0),
        Err(VmError::Inval),
        "unknown flag"
    );
    assert_eq!(e(&mut s, A, P, P, MREMAP_FIXED, B), Err(VmError::Inval));
    assert_eq!(e(&mut s, A, P, P, MREMAP_DONTUNMAP, B), Err(VmError::Inval));
    assert_eq!(
        e(&mut s, A, P, 2 * P, DONTUNMAP, B),
        Err(VmError::Inval),
        "size change"
    );
    assert_eq!(
        e(&mut s, A + 1, P, P, 0, 0),
        Err(VmError::Inval),
        "misaligned"
    );
    assert_eq!(e(&mut s, A, P, 0, 0, 0), Err(VmError::Inval), "new size 0");
    assert_eq!(
        e(&mut s, A, 0, P, MAYMOVE, 0),
        Err(VmError::Inval),
        "old size 0, private"
    );
    assert_eq!(
        e(&mut s, B, P, 2 * P, MAYMOVE, 0),
        Err(VmError::Fault),
        "unmapped"
    );
    assert_eq!(
        e(&mut s, B, P, P, 0, 0),
        Err(VmError::Fault),
        "unmapped shrink"
    );
    assert_eq!(
        e(&mut s, A, 5 * P, 6 * P, MAYMOVE, 0),
        Err(VmError::Fault),
        "past the area"
    );
    assert_eq!(
        e(&mut s, A, 2 * P, 2 * P, FIXED, A + P),
        Err(VmError::Inval),
        "overlap"
    );
    assert_eq!(
        e(&mut s, A, P, P, FIXED, B + 1),
        Err(VmError::Inval),
        "misaligned target"
    );
    assert_eq!(
        e(&mut s, A, P, P, FIXED, 0),
        Err(VmError::Perm),
        "below mmap_min_addr"
    );
    check_invariants(&[&s], &frames);
    assert_eq!(s.area_count(), 1, "nothing changed");
    for i in 0..4 {
        assert_eq!(read(&mut s, &frames, A + i * P), Ok(i as u8 + 1));
    }
}

#[test]
fn a_move_short_of_table_pages_changes_nothing() {
    let frames = SimFrames::new();
    let mut s = AddressSpace::new(SimMmu::new(), frames.clone(), VmConfig::LINUX_DEFAULT);
    s.mmap(A, 4 * P, RW, ANON | MAP_FIXED, None, 0).unwrap();
    for i in 0..4 {
        write(&mut s, &frames, A + i * P, i as u8 + 1).unwrap();
    }
    s.mmu().set_map_budget(Some(2));
    assert_eq!(s.mremap(A, 4 * P, 4 * P, FIXED, B), Err(VmError::NoMem));
    s.mmu().set_map_budget(None);
    assert!(s.area_containing(VirtAddr(B)).is_none());
    for i in 0..4 {
        assert_eq!(s.mmu().query(VirtAddr(B + i * P)), PteState::Absent);
        assert_eq!(read(&mut s, &frames, A + i * P), Ok(i as u8 + 1));
    }
    check_invariants(&[&s], &frames);
}

#[test]
fn a_moved_page_stays_copy_on_write_with_a_child_and_swap_entries_move() {
    let frames = SimFrames::new();
    let mut s = filled(&frames, 3);
    let entry = frames.new_slot(1);
    let pa = s.mmu().query_page(A + 2 * P).pa;
    frames.save_to_slot(entry, pa);
    s.remember_page(VirtAddr(A + 2 * P), entry).unwrap();
    let mut child = s.fork(SimMmu::new()).unwrap();
    assert_eq!(frames.slot_refs(entry), 2);
    s.mremap(A, 3 * P, 3 * P, FIXED, B).unwrap();
    let pte = s.mmu().query_page(B);
    assert!(pte.cow, "still copy-on-write");
    assert_eq!(
        Some(pte.pa.0),
        frame_at(&child, A),
        "still shared with the child"
    );
    assert_eq!(frames.refcount(pte.pa), 2);
    assert_eq!(
        s.mmu().query(VirtAddr(B + 2 * P)),
        PteState::Remembered(entry)
    );
    assert_eq!((s.swap_entries(), frames.slot_refs(entry)), (1, 2));
    check_invariants(&[&s, &child], &frames);
    write(&mut s, &frames, B, 50).unwrap();
    write(&mut child, &frames, A + P, 60).unwrap();
    assert_eq!(read(&mut s, &frames, B), Ok(50));
    assert_eq!(read(&mut child, &frames, A), Ok(1));
    assert_eq!(read(&mut s, &frames, B + P), Ok(2));
    assert_eq!(read(&mut child, &frames, A + P), Ok(60));
    assert_eq!(
        read(&mut s, &frames, B + 2 * P),
        Ok(3),
        "swapped in at the new address"
    );
    assert_eq!(read(&mut child, &frames, A + 2 * P), Ok(3));
    check_invariants(&[&s, &child], &frames);
    drop((s, child));
    assert_eq!((frames.live(), frames.live_slots()), (0, 0));
}

#[test]
fn a_moved_file_mapping_keeps_its_offset_and_a_locked_one_its_lock() {
    let frames = SimFrames::new();
    let file = SimFile::patterned(&frames, 8 * P);
    let fd = MmapFile {
        file: Some(file.object()),
        readable: true,
        writable: false,
    };
    let mut s = new_space(&frames);
    s.mmap(
        A,
        4 * P,
        PROT_READ,
        MAP_PRIVATE | MAP_FIXED,
        Some(fd),
        2 * P,
    )
    .unwrap();
    assert_eq!(read(&mut s, &frames, A + P), Ok(file_byte(3 * P)));
    s.mremap(A + P, 3 * P, 3 * P, FIXED, B).unwrap();
    assert_eq!(read(&mut s, &frames, B), Ok(file_byte(3 * P)));
    assert_eq!(
        read(&mut s, &frames, B + 2 * P),
        Ok(file_byte(5 * P)),
        "never touched"
    );
    s.mmap(A + 8 * P, 2 * P, RW, ANON | MAP_FIXED | MAP_LOCKED, None, 0)
        .unwrap();
    let r = s
        .mremap(A + 8 * P, 2 * P, 4 * P, FIXED, B + 16 * P)
        .unwrap();
    assert_eq!(r.populate, Some(VirtAddr(B + 18 * P)..VirtAddr(B + 20 * P)));
    assert_eq!(
        s.area_containing(VirtAddr(B + 16 * P)).unwrap().lock,
        Lock::Locked
    );
    assert_eq!(s.rss_pages(), 4, "locked pages moved with their area");
    check_invariants(&[&s], &frames);
}

/// Two harts run the space and cache the page; `mremap` moves it to `B`. Returns the
/// space, whose hart 1 must then hold no entry for the old address.
fn moved_on_two_harts(frames: &Arc<SimFrames>, skip_remote: bool) -> Space {
    let mut s = AddressSpace::new(SimMmu::on_harts(2), frames.clone(), VmConfig::LINUX_DEFAULT);
    s.mmap(A, P, RW, ANON | MAP_FIXED, None, 0).unwrap();
    write(&mut s, frames, A, 7).unwrap();
    s.mmu().run_on(1);
    assert_eq!(read(&mut s, frames, A), Ok(7));
    s.mmu().run_on(0);
    assert!(s.mmu().harts().cached(1, A).is_some());
    s.mmu().harts().skip_remote_fences(skip_remote);
    s.mremap(A, P, P, FIXED, B).unwrap();
    s
}

#[test]
fn a_move_flushes_the_old_translation_on_every_hart_before_it_returns() {
    let frames = SimFrames::new();
    let mut s = moved_on_two_harts(&frames, false);
    assert!(
        s.mmu().harts().cached(1, A).is_none(),
        "old translation flushed"
    );
    let harts = s.mmu().harts().clone();
    frames.on_free(move |pa| {
        let holders: Vec<_> = harts
            .entries()
            .iter()
            .filter(|e| e.2 == pa)
            .map(|e| e.1)
            .collect();
        assert!(
            holders.is_empty(),
            "frame {pa:?} freed while cached at {holders:x?}"
        );
    });
    // Unmapping at the new address flushes only that address: the frame may go.
    s.munmap(B, P).unwrap();
    assert_eq!(frames.live(), 0);
}

#[test]
fn without_the_remote_fence_a_moved_frame_stays_reachable_at_its_old_address() {
    let frames = SimFrames::new();
    let s = moved_on_two_harts(&frames, true);
    // The check above is not vacuous: only the remote fence removes hart 1's entry.
    assert!(s.mmu().harts().cached(1, A).is_some());
    // The space would fail its own drop check (a stale translation): leave it.
    std::mem::forget(s);
}

/// The test's spaces as the reverse map sees them.
struct Spaces<'a>(Vec<&'a mut Space>);

impl pagoda_mm::vm::SpaceSet<SimMmu, Arc<SimFrames>> for Spaces<'_> {
    fn with_space(
        &mut self,
        id: pagoda_mm::vm::SpaceId,
        f: &mut dyn FnMut(&mut AddressSpace<SimMmu, Arc<SimFrames>>),
    ) {
        if let Some(space) = self.0.iter_mut().find(|s| s.id() == id) {
            f(space);
        }
    }
}

#[test]
fn the_reverse_map_finds_a_moved_page_at_its_new_address_in_parent_and_child() {
    let frames = SimFrames::new();
    let mut s = filled(&frames, 2);
    let mut child = s.fork(SimMmu::new()).unwrap();
    s.mremap(A, 2 * P, 2 * P, FIXED, B).unwrap();
    // A new mapping at the old address gets the same page indices: the walk must
    // still tell the frames apart.
    s.mmap(A, 2 * P, RW, ANON | MAP_FIXED, None, 0).unwrap();
    write(&mut s, &frames, A, 99).unwrap();
    let shared = s.mmu().query_page(B).pa;
    let mut seen = Vec::new();
    let (sid, cid) = (s.id(), child.id());
    pagoda_mm::vm::for_each_mapping(
        &frames,
        shared,
        &mut Spaces(vec![&mut s, &mut child]),
        |sp, va, _| seen.push((sp.id(), va.0)),
    );
    seen.sort();
    let mut want = vec![(sid, B), (cid, A)];
    want.sort();
    assert_eq!(seen, want);
    // Swap it out through the walk, as reclaim does: both entries, read back in both.
    let entry = frames.new_slot(2);
    frames.save_to_slot(entry, shared);
    pagoda_mm::vm::for_each_mapping(
        &frames,
        shared,
        &mut Spaces(vec![&mut s, &mut child]),
        |sp, va, _| assert_eq!(sp.remember_page(va, entry), Ok(shared)),
    );
    assert_eq!(s.mmu().query(VirtAddr(B)), PteState::Remembered(entry));
    assert_eq!(read(&mut s, &frames, B), Ok(1));
    assert_eq!(read(&mut child, &frames, A), Ok(1));
    assert_eq!(read(&mut s, &frames, A), Ok(99));
    check_invariants(&[&s, &child], &frames);
    drop((s, child));
    assert_eq!((frames.live(), frames.live_slots()), (0, 0));
}

/// `mremap` with old size 0 of a shared mapping makes a second mapping of the same
/// pages (the old one stays; writes through either are seen through both), only with
/// `MREMAP_MAYMOVE` (else `ENOMEM`, the pages after it being the mapping itself); from
/// the middle of the area it starts at that page of the object.
#[test]
fn old_size_zero_duplicates_a_shared_mapping() {
    let frames = SimFrames::new();
    let mut s = new_space(&frames);
    s.mmap(
        A,
        4 * P,
        RW,
        MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED,
        None,
        0,
    )
    .unwrap();
    for i in 0..4 {
        write(&mut s, &frames, A + i * P, 10 + i as u8).unwrap();
    }
    assert_eq!(s.mremap(A, 0, 2 * P, 0, 0), Err(VmError::NoMem));
    let dup = s.mremap(A + P, 0, 2 * P, MAYMOVE, 0).unwrap().addr.0;
    assert_ne!(dup, A + P);
    assert_eq!(
        read(&mut s, &frames, dup).unwrap(),
        11,
        "the object's page 1"
    );
    assert_eq!(read(&mut s, &frames, dup + P).unwrap(), 12);
    write(&mut s, &frames, dup + P, 99).unwrap();
    assert_eq!(
        read(&mut s, &frames, A + 2 * P).unwrap(),
        99,
        "one page, two mappings"
    );
    assert_eq!(
        read(&mut s, &frames, A).unwrap(),
        10,
        "the old mapping stays"
    );
    check_invariants(&[&s], &frames);
    s.munmap(A, 4 * P).unwrap();
    assert_eq!(
        read(&mut s, &frames, dup).unwrap(),
        11,
        "the duplicate outlives it"
    );
    check_invariants(&[&s], &frames);
}
