//! Locked memory and residency (`mm/src/vm/mlock.rs`): the lock belongs to the area,
//! is split and merged with it, survives `mprotect` and partial `munmap`, is not
//! inherited by `fork`; the locked and resident counts stay exact; `RLIMIT_MEMLOCK`
//! and Linux's errors; `mincore` tells resident pages from untouched and swapped ones;
//! the reverse map finds a frame any locked area maps.

use std::sync::Arc;

use pagoda_mm::addr::{PAGE_SIZE, VirtAddr};
use pagoda_mm::layout::USER_END;
use pagoda_mm::vm::abi::*;
use pagoda_mm::vm::{
    AddressSpace, FaultError, FrameSource, Lock, MmapFile, Mmu, SpaceId, SpaceSet, VmConfig,
    VmError, mapped_by_locked_area,
};

use super::sim::{
    SimFile, SimFrames, SimMmu, Space, check_invariants, new_space, new_space_with, read, write,
};

const P: usize = PAGE_SIZE;
const RW: usize = PROT_READ | PROT_WRITE;
const ANON: usize = MAP_PRIVATE | MAP_ANONYMOUS;
/// Enough pages for any range of these tests in one `fault_in` call.
const ALL: usize = 1 << 20;

fn anon(s: &mut Space, len: usize) -> usize {
    s.mmap(0, len, RW, ANON, None, 0).unwrap().0
}

/// (start, end, lock) of every area.
fn locks(s: &Space) -> Vec<(usize, usize, Lock)> {
    s.areas()
        .map(|a| (a.range.start.0, a.range.end.0, a.lock))
        .collect()
}

/// `mlock(addr, len)` as the kernel does it: lock, then fault the range in.
fn mlock(s: &mut Space, addr: usize, len: usize) -> Result<(), VmError> {
    let range = s.mlock(addr, len, 0)?;
    match s.fault_in(range.start, range.end, ALL, false) {
        Ok(None) => Ok(()),
        Ok(Some(_)) => panic!("budget ran out"),
        Err(_) => Err(VmError::NoMem),
    }
}

#[test]
fn mlock_rounds_the_range_to_pages_and_faults_it_in() {
    let frames = SimFrames::new();
    let mut s = new_space(&frames);
    let a = anon(&mut s, 8 * P);
    // An unaligned start and a length that ends inside the third page: pages 0..3.
    let range = s.mlock(a + 100, 2 * P, 0).unwrap();
    assert_eq!(range, VirtAddr(a)..VirtAddr(a + 3 * P));
    assert_eq!(
        locks(&s),
        [
            (a, a + 3 * P, Lock::Locked),
            (a + 3 * P, a + 8 * P, Lock::Unlocked)
        ]
    );
    assert_eq!((s.locked_bytes(), s.locked_resident_pages()), (3 * P, 0));
    assert_eq!(s.fault_in(range.start, range.end, ALL, false), Ok(None));
    // Written, not the zero page: copy-on-write is broken ahead of time, as Linux does.
    assert_eq!((s.rss_pages(), s.locked_resident_pages()), (3, 3));
    assert!((0..3).all(|i| {
        s.mmu()
            .query_page(a + i * P)
            .flags
            .contains(pagoda_mm::vm::PagePerms::WRITE)
    }));
    assert!(s.is_locked(VirtAddr(a + 2 * P)) && !s.is_locked(VirtAddr(a + 3 * P)));
    // A small budget stops where it ran out; calling again goes on from there.
    s.munlock(a, 8 * P).unwrap();
    let range = s.mlock(a, 8 * P, 0).unwrap();
    assert_eq!(
        s.fault_in(range.start, range.end, 2, false),
        Ok(Some(VirtAddr(a + 2 * P)))
    );
    assert_eq!(
        s.fault_in(VirtAddr(a + 2 * P), range.end, ALL, false),
        Ok(None)
    );
    assert_eq!((s.rss_pages(), s.locked_resident_pages()), (8, 8));
    check_invariants(&[&s], &frames);
}

#[test]
fn the_lock_is_split_and_merged_with_its_area_and_counts_stay_exact() {
    let frames = SimFrames::new();
    let mut s = new_space(&frames);
    let a = anon(&mut s, 8 * P);
    mlock(&mut s, a + 2 * P, 4 * P).unwrap();
    assert_eq!(s.area_count(), 3);
    // mprotect inside the locked part: split in three, all still locked.
    s.mprotect(a + 3 * P, P, PROT_READ).unwrap();
    assert_eq!(
        locks(&s),
        [
            (a, a + 2 * P, Lock::Unlocked),
            (a + 2 * P, a + 3 * P, Lock::Locked),
            (a + 3 * P, a + 4 * P, Lock::Locked),
            (a + 4 * P, a + 6 * P, Lock::Locked),
            (a + 6 * P, a + 8 * P, Lock::Unlocked),
        ]
    );
    check_invariants(&[&s], &frames);
    // Back to RW: the three locked pieces are one again, the unlocked ones stay apart.
    s.mprotect(a + 3 * P, P, RW).unwrap();
    assert_eq!(s.area_count(), 3);
    // munmap of part of the locked area: the rest stays locked, the counts follow.
    s.munmap(a + 3 * P, P).unwrap();
    assert_eq!((s.locked_bytes(), s.locked_resident_pages()), (3 * P, 3));
    // Touching unlocked pages changes nothing locked.
    write(&mut s, &frames, a, 1).unwrap();
    write(&mut s, &frames, a + 7 * P, 1).unwrap();
    assert_eq!((s.locked_resident_pages(), s.rss_pages()), (3, 5));
    // MAP_FIXED over a locked page replaces it with an unlocked mapping.
    s.mmap(a + 2 * P, P, RW, ANON | MAP_FIXED, None, 0).unwrap();
    assert_eq!((s.locked_bytes(), s.locked_resident_pages()), (2 * P, 2));
    // munlock of the middle of a locked area splits it; unlocking the rest merges all.
    mlock(&mut s, a + 2 * P, 4 * P).unwrap_err(); // the hole at a + 3P
    assert_eq!(s.locked_bytes(), 3 * P, "locked up to the hole, as Linux");
    s.munlock(a + 4 * P, P).unwrap();
    assert_eq!(s.locked_bytes(), 2 * P);
    s.munlock(a, 3 * P).unwrap();
    s.munlock(a + 5 * P, 3 * P).unwrap();
    assert_eq!((s.locked_bytes(), s.locked_resident_pages()), (0, 0));
    assert_eq!(
        locks(&s),
        [
            (a, a + 3 * P, Lock::Unlocked),
            (a + 4 * P, a + 8 * P, Lock::Unlocked)
        ]
    );
    check_invariants(&[&s], &frames);
}

#[test]
fn linux_errors_of_mlock_and_munlock() {
    let frames = SimFrames::new();
    let mut s = new_space(&frames);
    let a = anon(&mut s, 4 * P);
    assert_eq!(s.mlock(a, P, 2), Err(VmError::Inval), "unknown mlock2 flag");
    assert_eq!(s.mlock(a, P, 3), Err(VmError::Inval));
    assert_eq!(s.mlock(0, P, 0), Err(VmError::NoMem), "nothing mapped");
    assert_eq!(s.munlock(0, P), Err(VmError::NoMem));
    assert_eq!(s.mlock(a + 4 * P, P, 0), Err(VmError::NoMem));
    // Length 0, even at an unmapped address, and a length that wraps to 0 pages: done.
    assert_eq!(s.mlock(0, 0, 0), Ok(VirtAddr(0)..VirtAddr(0)));
    assert!(s.mlock(a + P, usize::MAX, 0).is_ok());
    assert_eq!(s.locked_bytes(), 0);
    // A rounded range that wraps past the top is EINVAL.
    assert_eq!(
        s.mlock(a + P, usize::MAX - 2 * P + 1, 0),
        Err(VmError::Inval)
    );
    assert_eq!(
        s.munlock(a + P, usize::MAX - 2 * P + 1),
        Err(VmError::Inval)
    );
    // Past the user half: ENOMEM (no area), as Linux.
    assert_eq!(s.mlock(USER_END.0, P, 0), Err(VmError::NoMem));
    // A hole after the first area: ENOMEM, the first area locked.
    let b = s
        .mmap(a + 5 * P, P, RW, ANON | MAP_FIXED, None, 0)
        .unwrap()
        .0;
    assert_eq!(s.mlock(a, 6 * P, 0), Err(VmError::NoMem));
    assert_eq!(s.locked_bytes(), 4 * P);
    assert!(!s.is_locked(VirtAddr(b)));
    assert_eq!(s.munlock(a, 6 * P), Err(VmError::NoMem));
    assert_eq!(s.locked_bytes(), 0);
    check_invariants(&[&s], &frames);
}

#[test]
fn a_split_refused_at_the_area_limit_is_enomem() {
    let frames = SimFrames::new();
    let config = VmConfig {
        max_map_count: 2,
        ..VmConfig::LINUX_DEFAULT
    };
    let mut s = new_space_with(&frames, config);
    let a = anon(&mut s, 4 * P);
    s.mprotect(a, P, PROT_READ).unwrap();
    assert_eq!(s.area_count(), 2);
    assert_eq!(s.mlock(a + 2 * P, P, 0), Err(VmError::NoMem));
    assert_eq!(s.locked_bytes(), 0);
    // Whole areas need no split.
    assert!(s.mlock(a, P, 0).is_ok());
    assert_eq!(s.locked_bytes(), P);
}

#[test]
fn mlock_onfault_keeps_pages_as_they_come() {
    let frames = SimFrames::new();
    let mut s = new_space(&frames);
    let a = anon(&mut s, 4 * P);
    let range = s.mlock(a, 4 * P, MLOCK_ONFAULT).unwrap();
    assert_eq!(range.start, range.end, "nothing to fault in");
    assert_eq!(locks(&s), [(a, a + 4 * P, Lock::OnFault)]);
    assert_eq!(
        s.fault_in(VirtAddr(a), VirtAddr(a + 4 * P), ALL, false),
        Ok(None)
    );
    assert_eq!((s.rss_pages(), s.locked_bytes()), (0, 4 * P));
    write(&mut s, &frames, a + P, 3).unwrap();
    assert_eq!(s.locked_resident_pages(), 1);
    // mlock without the flag turns it into a plain lock (and faults everything in).
    mlock(&mut s, a, 4 * P).unwrap();
    assert_eq!(locks(&s), [(a, a + 4 * P, Lock::Locked)]);
    assert_eq!(s.locked_resident_pages(), 4);
    assert_eq!(read(&mut s, &frames, a + P), Ok(3));
    check_invariants(&[&s], &frames);
}

#[test]
fn prot_none_is_locked_but_cannot_be_faulted_in() {
    let frames = SimFrames::new();
    let mut s = new_space(&frames);
    let a = s.mmap(0, 2 * P, PROT_NONE, ANON, None, 0).unwrap().0;
    let range = s.mlock(a, 2 * P, 0).unwrap();
    assert_eq!(
        s.fault_in(range.start, range.end, ALL, false),
        Err((VirtAddr(a), FaultError::AccessDenied))
    );
    // Linux: mlock returns ENOMEM and the area stays locked.
    assert_eq!(s.locked_bytes(), 2 * P);
    // Ignoring errors (mlockall) skips it.
    assert_eq!(s.fault_in(range.start, range.end, ALL, true), Ok(None));
    // Read-only and execute-only areas are faulted in for reading and executing.
    let r = s.mmap(0, P, PROT_READ, ANON, None, 0).unwrap().0;
    let x = s.mmap(0, P, PROT_EXEC, ANON, None, 0).unwrap().0;
    mlock(&mut s, r, P).unwrap();
    mlock(&mut s, x, P).unwrap();
    assert_eq!(s.mmu().query_page(r).pa, frames.zero_page());
    assert_eq!(s.mmu().query_page(x).pa, frames.zero_page());
    assert_eq!(s.locked_resident_pages(), 0, "the zero page is not counted");
    check_invariants(&[&s], &frames);
}

#[test]
fn rlimit_memlock_as_linux_checks_it_without_cap_ipc_lock() {
    let frames = SimFrames::new();
    let zero = VmConfig {
        memlock_limit: Some(0),
        ..VmConfig::LINUX_DEFAULT
    };
    let mut s = new_space_with(&frames, zero);
    let a = anon(&mut s, 4 * P);
    assert_eq!(s.mlock(a, P, 0), Err(VmError::Perm));
    assert_eq!(s.mlockall(MCL_CURRENT), Err(VmError::Perm));
    assert_eq!(
        s.mmap(0, P, RW, ANON | MAP_LOCKED, None, 0),
        Err(VmError::Perm)
    );
    // Unlocking needs no right.
    assert_eq!(s.munlock(a, P), Ok(()));
    s.munlockall();

    let four = VmConfig {
        memlock_limit: Some(4 * P),
        ..VmConfig::LINUX_DEFAULT
    };
    let mut s = new_space_with(&frames, four);
    let a = anon(&mut s, 8 * P);
    mlock(&mut s, a, 3 * P).unwrap();
    assert_eq!(s.mlock(a + 3 * P, 2 * P, 0), Err(VmError::NoMem));
    // Pages already locked count once: relocking the whole locked range and one more
    // page is within the limit.
    mlock(&mut s, a, 4 * P).unwrap();
    assert_eq!(s.locked_bytes(), 4 * P);
    assert_eq!(
        s.mmap(0, P, RW, ANON | MAP_LOCKED, None, 0),
        Err(VmError::Again)
    );
    assert_eq!(
        s.mlockall(MCL_CURRENT),
        Err(VmError::NoMem),
        "8 pages mapped"
    );
    // MCL_FUTURE alone is not checked against the limit; the mappings after it are.
    assert_eq!(s.mlockall(MCL_FUTURE), Ok(false));
    assert_eq!(s.mmap(0, P, RW, ANON, None, 0), Err(VmError::Again));
    let brk_start = a + 16 * P;
    s.init_brk(VirtAddr(brk_start)).unwrap();
    assert_eq!(
        s.brk(brk_start + P).0,
        brk_start,
        "a locked heap past the limit"
    );
    s.munlockall();
    assert!(s.mmap(0, P, RW, ANON, None, 0).is_ok());
    assert_eq!(s.brk(brk_start + P).0, brk_start + P);
    check_invariants(&[&s], &frames);
}

#[test]
fn mlockall_current_future_and_onfault() {
    let frames = SimFrames::new();
    let mut s = new_space(&frames);
    for bad in [0, MCL_ONFAULT, 8, MCL_CURRENT | 16] {
        assert_eq!(s.mlockall(bad), Err(VmError::Inval), "flags {bad:#x}");
    }
    let a = anon(&mut s, 2 * P);
    let b = s.mmap(0, P, PROT_READ, ANON, None, 0).unwrap().0;
    // MCL_CURRENT: every area, to be faulted in by the caller.
    assert_eq!(s.mlockall(MCL_CURRENT), Ok(true));
    assert!(s.areas().all(|x| x.lock == Lock::Locked));
    assert_eq!(
        s.fault_in(VirtAddr(0), USER_END, ALL, true),
        Ok(None),
        "holes skipped"
    );
    assert_eq!(s.locked_resident_pages(), 2);
    assert!(s.mmu().query(VirtAddr(b)).present().is_some());
    // Not MCL_FUTURE: a new mapping is not locked.
    let c = anon(&mut s, P);
    assert!(!s.is_locked(VirtAddr(c)));
    // MCL_FUTURE: new mappings are locked and populated, the heap too.
    assert_eq!(s.mlockall(MCL_FUTURE), Ok(false));
    let d = anon(&mut s, 2 * P);
    assert!(s.is_locked(VirtAddr(d)));
    assert_ne!(s.mmu().query_page(d + P).pa, frames.zero_page());
    s.init_brk(VirtAddr(0x40_0000)).unwrap();
    s.brk(0x40_0000 + 2 * P);
    assert!(s.is_locked(VirtAddr(0x40_0000)));
    assert!(s.mmu().query(VirtAddr(0x40_0000 + P)).present().is_some());
    // MCL_FUTURE | MCL_ONFAULT: locked, nothing faulted in.
    assert_eq!(s.mlockall(MCL_FUTURE | MCL_ONFAULT), Ok(false));
    let e = anon(&mut s, P);
    assert_eq!(
        locks(&s).iter().find(|x| x.0 == e).unwrap().2,
        Lock::OnFault
    );
    assert!(s.mmu().query(VirtAddr(e)).present().is_none());
    // MCL_CURRENT alone ends MCL_FUTURE; MCL_CURRENT | MCL_ONFAULT asks for no fault-in.
    assert_eq!(s.mlockall(MCL_CURRENT | MCL_ONFAULT), Ok(false));
    assert!(s.areas().all(|x| x.lock == Lock::OnFault));
    let f = anon(&mut s, P);
    assert!(!s.is_locked(VirtAddr(f)));
    // munlockall: nothing locked, and no more MCL_FUTURE.
    s.mlockall(MCL_CURRENT | MCL_FUTURE).unwrap();
    s.munlockall();
    assert!(s.areas().all(|x| x.lock == Lock::Unlocked));
    assert_eq!(s.locked_bytes(), 0);
    let g = anon(&mut s, P);
    assert!(!s.is_locked(VirtAddr(g)));
    let _ = a;
    check_invariants(&[&s], &frames);
}

#[test]
fn fork_does_not_inherit_locks_or_mcl_future() {
    let frames = SimFrames::new();
    let mut parent = new_space(&frames);
    let a = anon(&mut parent, 4 * P);
    mlock(&mut parent, a + P, 2 * P).unwrap();
    parent.mlockall(MCL_FUTURE).unwrap();
    assert_eq!(parent.area_count(), 3);
    let mut child = parent.fork(SimMmu::new()).unwrap();
    assert_eq!(child.locked_bytes(), 0);
    assert_eq!(
        child.area_count(),
        1,
        "unlocked, the pieces are one area again"
    );
    assert_eq!(parent.locked_bytes(), 2 * P);
    let c = anon(&mut child, P);
    assert!(!child.is_locked(VirtAddr(c)), "no MCL_FUTURE in the child");
    let p = anon(&mut parent, P);
    assert!(parent.is_locked(VirtAddr(p)));
    check_invariants(&[&parent, &child], &frames);
}

#[test]
fn stack_growth_keeps_the_stack_locked() {
    let frames = SimFrames::new();
    let mut s = new_space(&frames);
    let top = VirtAddr(0x10_0000_0000);
    let stack = s.map_stack(top, 4 * P).unwrap();
    mlock(&mut s, stack.start.0, 4 * P).unwrap();
    write(&mut s, &frames, stack.start.0 - P, 9).unwrap();
    assert_eq!(s.locked_bytes(), 5 * P);
    assert_eq!(s.locked_resident_pages(), 5);
}

#[test]
fn madvise_dontneed_refuses_locked_areas() {
    let frames = SimFrames::new();
    let mut s = new_space(&frames);
    let a = anon(&mut s, 4 * P);
    write(&mut s, &frames, a, 5).unwrap();
    mlock(&mut s, a + 2 * P, 2 * P).unwrap();
    assert_eq!(s.madvise(a, 4 * P, MADV_DONTNEED), Err(VmError::Inval));
    // The unlocked area before it was processed, the locked pages kept.
    assert_eq!(read(&mut s, &frames, a), Ok(0));
    assert_eq!(s.locked_resident_pages(), 2);
    assert_eq!(s.madvise(a, 4 * P, MADV_WILLNEED), Ok(()));
    check_invariants(&[&s], &frames);
}

#[test]
fn mincore_reports_residency_page_by_page() {
    let frames = SimFrames::new();
    let mut s = new_space(&frames);
    type S = AddressSpace<SimMmu, Arc<SimFrames>>;
    assert_eq!(S::mincore_pages(0x1001, P), Err(VmError::Inval));
    assert_eq!(S::mincore_pages(0x1000, usize::MAX), Err(VmError::NoMem));
    assert_eq!(S::mincore_pages(USER_END.0 - P, 2 * P), Err(VmError::NoMem));
    assert_eq!(S::mincore_pages(0x1000, 0), Ok(0));
    assert_eq!(S::mincore_pages(0x1000, P + 1), Ok(2));
    let a = anon(&mut s, 6 * P);
    write(&mut s, &frames, a + P, 1).unwrap();
    read(&mut s, &frames, a + 2 * P).unwrap(); // the zero page: resident too
    write(&mut s, &frames, a + 3 * P, 1).unwrap();
    write(&mut s, &frames, a + 4 * P, 1).unwrap();
    // Page 3 goes to swap; page 4 too, but its slot is still in the swap cache.
    let (e3, e4) = (frames.new_slot(1), frames.new_slot(1));
    for (va, e) in [(a + 3 * P, e3), (a + 4 * P, e4)] {
        let pa = s.mmu().query_page(va).pa;
        frames.save_to_slot(e, pa);
        s.remember_page(VirtAddr(va), e).unwrap();
    }
    let mut vec = [9u8; 8];
    let n = s.mincore(VirtAddr(a), &mut vec, |e| e == e4).unwrap();
    assert_eq!(n, 6, "to the end of the area");
    assert_eq!(vec[..6], [0, 1, 1, 0, 1, 0]);
    // Shorter vector: as many pages as it holds.
    assert_eq!(s.mincore(VirtAddr(a + P), &mut vec[..2], |_| false), Ok(2));
    assert_eq!(
        s.mincore(VirtAddr(a + 6 * P), &mut vec, |_| false),
        Err(VmError::NoMem)
    );
    // Shared anonymous memory: the object's pages.
    let sh = s
        .mmap(0, 2 * P, RW, MAP_SHARED | MAP_ANONYMOUS, None, 0)
        .unwrap()
        .0;
    write(&mut s, &frames, sh + P, 1).unwrap();
    let mut child = s.fork(SimMmu::new()).unwrap();
    child.munmap(sh, 2 * P).unwrap();
    let sh2 = child
        .mmap(
            sh,
            2 * P,
            RW,
            MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED,
            None,
            0,
        )
        .unwrap();
    assert_eq!(child.mincore(sh2, &mut vec, |_| false), Ok(2));
    assert_eq!(vec[..2], [0, 0]);
    s.madvise(sh, 2 * P, MADV_DONTNEED).unwrap();
    assert_eq!(s.mincore(VirtAddr(sh), &mut vec, |_| false), Ok(2));
    assert_eq!(vec[..2], [0, 1], "the object still holds page 1");
    // A file (in memory): untouched pages within the file are resident, beyond it not.
    let file = SimFile::patterned(&frames, P + 10);
    let fd = Some(MmapFile {
        file: Some(file.object()),
        readable: true,
        writable: false,
    });
    let f = s.mmap(0, 3 * P, PROT_READ, MAP_PRIVATE, fd, 0).unwrap();
    assert_eq!(s.mincore(f, &mut vec, |_| false), Ok(3));
    assert_eq!(vec[..3], [1, 1, 0]);
}

/// The spaces of a test, for a reverse-map walk.
struct Spaces<'a>(Vec<&'a mut Space>);

impl SpaceSet<SimMmu, Arc<SimFrames>> for Spaces<'_> {
    fn with_space(&mut self, id: SpaceId, f: &mut dyn FnMut(&mut Space)) {
        if let Some(space) = self.0.iter_mut().find(|s| s.id() == id) {
            f(space);
        }
    }
}

#[test]
fn the_reverse_map_finds_a_frame_a_locked_area_maps() {
    let frames = SimFrames::new();
    let mut parent = new_space(&frames);
    let a = anon(&mut parent, 2 * P);
    write(&mut parent, &frames, a, 1).unwrap();
    write(&mut parent, &frames, a + P, 2).unwrap();
    let mut child = parent.fork(SimMmu::new()).unwrap();
    let (pa0, pa1) = (
        parent.mmu().query_page(a).pa,
        parent.mmu().query_page(a + P).pa,
    );
    let locked = |p: &mut Space, c: &mut Space, pa| {
        mapped_by_locked_area(&frames, pa, &mut Spaces(vec![p, c]))
    };
    assert!(!locked(&mut parent, &mut child, pa0));
    // The child locks page 0 (on fault: nothing copied): the frame it shares with the
    // parent is kept for both.
    child.mlock(a, P, MLOCK_ONFAULT).unwrap();
    assert_eq!(child.mmu().query_page(a).pa, pa0, "still shared");
    assert!(locked(&mut parent, &mut child, pa0));
    assert!(!locked(&mut parent, &mut child, pa1));
    child.munlock(a, P).unwrap();
    assert!(!locked(&mut parent, &mut child, pa0));
    // A locked writable area breaks copy-on-write at mlock: its own copy is locked.
    mlock(&mut parent, a + P, P).unwrap();
    let own = parent.mmu().query_page(a + P).pa;
    assert_ne!(own, pa1);
    assert!(locked(&mut parent, &mut child, own));
    assert!(
        !locked(&mut parent, &mut child, pa1),
        "the child's copy is not locked"
    );
    check_invariants(&[&parent, &child], &frames);
}
