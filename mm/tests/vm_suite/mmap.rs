//! Area operations: mmap placement, MAP_FIXED, munmap/mprotect splitting and merging,
//! brk, madvise, and the Linux error of every bad argument.

use std::sync::Arc;

use pagoda_mm::addr::{PAGE_SIZE, VirtAddr};
use pagoda_mm::layout::USER_END;
use pagoda_mm::vm::abi::*;
use pagoda_mm::vm::{
    AreaKind, FaultError, MmapFile, Prot, STACK_GUARD_GAP, TASK_UNMAPPED_BASE, VmConfig, VmError,
};

use super::sim::{
    Flush, SimFile, SimFrames, Space, check_invariants, file_byte, new_space, new_space_with, read,
    write,
};

const P: usize = PAGE_SIZE;
const RW: usize = PROT_READ | PROT_WRITE;
const ANON: usize = MAP_PRIVATE | MAP_ANONYMOUS;
const TOP: usize = USER_END.0;

fn map(
    s: &mut Space,
    addr: usize,
    len: usize,
    prot: usize,
    flags: usize,
) -> Result<usize, VmError> {
    s.mmap(addr, len, prot, flags, None, 0).map(|va| va.0)
}

fn areas(s: &Space) -> Vec<(usize, usize, Prot)> {
    s.areas()
        .map(|a| (a.range.start.0, a.range.end.0, a.prot))
        .collect()
}

fn ro_fd(file: &Arc<SimFile>) -> Option<MmapFile> {
    Some(MmapFile {
        file: Some(file.object()),
        readable: true,
        writable: false,
    })
}

#[test]
fn errno_numbers_are_linux() {
    let table = [
        (VmError::Perm, 1),
        (VmError::BadFd, 9),
        (VmError::Again, 11),
        (VmError::NoMem, 12),
        (VmError::Access, 13),
        (VmError::Fault, 14),
        (VmError::Exist, 17),
        (VmError::NoDev, 19),
        (VmError::Inval, 22),
        (VmError::Overflow, 75),
        (VmError::OpNotSupp, 95),
    ];
    for (err, errno) in table {
        assert_eq!(err.to_errno(), errno, "{err}");
    }
    assert_eq!(FaultError::Unmapped.to_vm_error(), VmError::Fault);
    assert_eq!(FaultError::OutOfMemory.to_vm_error(), VmError::NoMem);
}

#[test]
fn mmap_base_follows_the_stack_limit() {
    assert_eq!(VmConfig::LINUX_DEFAULT.mmap_base(), TOP - (128 << 20));
    let big = VmConfig {
        stack_rlimit: 1 << 30,
        ..VmConfig::LINUX_DEFAULT
    };
    assert_eq!(big.mmap_base(), TOP - (1 << 30) - STACK_GUARD_GAP);
    let unlimited = VmConfig {
        stack_rlimit: usize::MAX,
        ..VmConfig::LINUX_DEFAULT
    };
    assert_eq!(
        unlimited.mmap_base(),
        (TOP - TOP / 6 * 5).next_multiple_of(P)
    );
}

#[test]
fn placement_is_top_down_below_mmap_base_and_merges() {
    let frames = SimFrames::new();
    let mut s = new_space(&frames);
    let base = s.mmap_base().0;
    let a = map(&mut s, 0, P, RW, ANON).unwrap();
    assert_eq!(a, base - P);
    let b = map(&mut s, 0, 2 * P, PROT_READ, ANON).unwrap();
    assert_eq!(b, base - 3 * P);
    let c = map(&mut s, 0, P, RW, ANON).unwrap();
    assert_eq!(c, base - 4 * P);
    assert_eq!(s.area_count(), 3);
    // The highest hole that fits is used; the new area merges with its twin above.
    s.munmap(b, 2 * P).unwrap();
    let d = map(&mut s, 0, P, RW, ANON).unwrap();
    assert_eq!(d, base - 2 * P);
    assert_eq!(
        areas(&s),
        vec![
            (c, c + P, Prot::READ | Prot::WRITE),
            (d, base, Prot::READ | Prot::WRITE)
        ]
    );
    // Lengths are rounded up to pages.
    let e = map(&mut s, 0, 1, PROT_READ, ANON).unwrap();
    assert_eq!(e, base - 3 * P);
    assert_eq!(s.area_count(), 3);
    check_invariants(&[&s], &frames);
}

#[test]
fn hints_are_honoured_when_free() {
    let frames = SimFrames::new();
    let mut s = new_space(&frames);
    assert_eq!(map(&mut s, 0x1234_5678, P, RW, ANON), Ok(0x1234_5000));
    // Occupied: placed top-down instead.
    assert_eq!(
        map(&mut s, 0x1234_5000, P, RW, ANON),
        Ok(s.mmap_base().0 - P)
    );
    // A hint whose page is 0 means no hint.
    assert_eq!(map(&mut s, 0x10, P, RW, ANON), Ok(s.mmap_base().0 - 2 * P));
    // A hint too high to fit is ignored.
    assert_eq!(
        map(&mut s, TOP - P, 2 * P, RW, ANON),
        Ok(s.mmap_base().0 - 4 * P)
    );
    // Below mmap_min_addr a hint is raised to it.
    let config = VmConfig {
        mmap_min_addr: 0x1_0000,
        ..VmConfig::LINUX_DEFAULT
    };
    let mut s2 = new_space_with(&frames, config);
    assert_eq!(map(&mut s2, 0x2000, P, RW, ANON), Ok(0x1_0000));
}

#[test]
fn placement_keeps_the_stack_guard_gap() {
    let frames = SimFrames::new();
    let mut s = new_space(&frames);
    let stack = s.map_stack(VirtAddr(TOP), 128 * 1024).unwrap();
    let bottom = stack.start.0;
    // A hint inside the guard gap below the stack is not honoured ...
    let a = map(&mut s, bottom - P, P, RW, ANON).unwrap();
    assert_ne!(a, bottom - P);
    // ... one below the gap is.
    let b = map(&mut s, bottom - STACK_GUARD_GAP - P, P, RW, ANON).unwrap();
    assert_eq!(b, bottom - STACK_GUARD_GAP - P);
    // MAP_FIXED may still go into the gap.
    assert_eq!(
        map(&mut s, bottom - P, P, RW, ANON | MAP_FIXED),
        Ok(bottom - P)
    );
}

#[test]
fn placement_falls_back_bottom_up_then_fails() {
    let frames = SimFrames::new();
    let mut s = new_space(&frames);
    let base = s.mmap_base().0;
    // Everything below mmap_base is taken.
    map(&mut s, P, base - P, PROT_NONE, ANON | MAP_FIXED).unwrap();
    assert_eq!(map(&mut s, 0, 4 * P, RW, ANON), Ok(base));
    assert!(base > TASK_UNMAPPED_BASE);
    // Then everything above.
    map(&mut s, base, TOP - base, PROT_NONE, ANON | MAP_FIXED).unwrap();
    assert_eq!(map(&mut s, 0, P, RW, ANON), Err(VmError::NoMem));
    assert_eq!(s.area_count(), 1);
}

#[test]
fn mmap_argument_errors() {
    let frames = SimFrames::new();
    let mut s = new_space(&frames);
    let a = 0x10_0000;
    assert_eq!(
        s.mmap(0, P, RW, ANON, None, 1),
        Err(VmError::Inval),
        "misaligned offset"
    );
    assert_eq!(
        map(&mut s, 0, P, RW, MAP_PRIVATE),
        Err(VmError::BadFd),
        "no file"
    );
    assert_eq!(map(&mut s, 0, 0, RW, ANON), Err(VmError::Inval), "length 0");
    assert_eq!(
        map(&mut s, 0, usize::MAX, RW, ANON),
        Err(VmError::NoMem),
        "rounding overflows"
    );
    assert_eq!(
        map(&mut s, 0, TOP, RW, ANON),
        Err(VmError::NoMem),
        "larger than the user half"
    );
    // Explicit huge pages from frames that have no 2 MiB block: ENOMEM, as Linux
    // without a hugetlb pool (huge.rs tests them with one); of shared memory: EINVAL.
    assert_eq!(
        map(&mut s, 0, P, RW, ANON | MAP_HUGETLB),
        Err(VmError::NoMem),
        "hugetlb without huge frames"
    );
    assert_eq!(
        map(&mut s, 0, P, RW, MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB),
        Err(VmError::Inval),
        "shared hugetlb"
    );
    assert_eq!(
        map(&mut s, 0, P, RW, MAP_ANONYMOUS),
        Err(VmError::Inval),
        "no type"
    );
    assert_eq!(
        map(&mut s, 0, P, RW, MAP_ANONYMOUS | MAP_TYPE),
        Err(VmError::Inval),
        "bad type"
    );
    assert_eq!(
        map(&mut s, 0, P, RW, MAP_ANONYMOUS | MAP_SHARED_VALIDATE),
        Err(VmError::Inval),
        "validate on anonymous"
    );
    assert_eq!(
        map(&mut s, 0, P, RW, MAP_ANONYMOUS | MAP_SHARED | MAP_GROWSDOWN),
        Err(VmError::Inval),
        "shared grows-down"
    );
    assert_eq!(
        map(&mut s, a + 1, P, RW, ANON | MAP_FIXED),
        Err(VmError::Inval),
        "misaligned fixed"
    );
    assert_eq!(
        map(&mut s, 0, P, RW, ANON | MAP_FIXED),
        Err(VmError::Perm),
        "fixed at 0"
    );
    assert_eq!(
        map(&mut s, TOP - P, 2 * P, RW, ANON | MAP_FIXED),
        Err(VmError::NoMem),
        "fixed past the top"
    );
    assert_eq!(
        map(&mut s, TOP, P, RW, ANON | MAP_FIXED),
        Err(VmError::NoMem),
        "fixed at the top"
    );
    assert_eq!(map(&mut s, a, P, RW, ANON | MAP_FIXED_NOREPLACE), Ok(a));
    assert_eq!(
        map(&mut s, a, P, RW, ANON | MAP_FIXED_NOREPLACE),
        Err(VmError::Exist)
    );
    assert_eq!(
        map(&mut s, a - P, 2 * P, RW, ANON | MAP_FIXED_NOREPLACE),
        Err(VmError::Exist)
    );
    assert_eq!(s.area_count(), 1, "failed calls leave the space alone");
    check_invariants(&[&s], &frames);
}

#[test]
fn mmap_file_errors() {
    let frames = SimFrames::new();
    let mut s = new_space(&frames);
    let file = SimFile::patterned(&frames, 3 * P);
    let fd = |readable, writable| {
        Some(MmapFile {
            file: Some(file.object()),
            readable,
            writable,
        })
    };
    let r = PROT_READ;
    assert_eq!(
        s.mmap(0, P, r, MAP_SHARED_VALIDATE | MAP_SYNC, fd(true, false), 0),
        Err(VmError::OpNotSupp)
    );
    assert!(
        s.mmap(0, P, r, MAP_SHARED | MAP_SYNC, fd(true, false), 0)
            .is_ok(),
        "ignored with MAP_SHARED"
    );
    assert_eq!(
        s.mmap(0, P, RW, MAP_SHARED, fd(true, false), 0),
        Err(VmError::Access)
    );
    assert_eq!(
        s.mmap(0, P, r, MAP_PRIVATE, fd(false, true), 0),
        Err(VmError::Access)
    );
    assert_eq!(
        s.mmap(0, P, RW, MAP_SHARED, fd(true, true), 0),
        Err(VmError::NoDev)
    );
    let pipe = Some(MmapFile {
        file: None,
        readable: true,
        writable: false,
    });
    assert_eq!(s.mmap(0, P, r, MAP_PRIVATE, pipe, 0), Err(VmError::NoDev));
    assert_eq!(
        s.mmap(0, P, r, MAP_PRIVATE | MAP_GROWSDOWN, fd(true, false), 0),
        Err(VmError::Inval)
    );
    assert_eq!(s.mmap(0, P, r, 0, fd(true, false), 0), Err(VmError::Inval));
    let far = 0x7fff_ffff_ffff_f000;
    assert_eq!(
        s.mmap(0, 2 * P, r, MAP_PRIVATE, fd(true, false), far),
        Err(VmError::Overflow)
    );
    // A private writable mapping of a read-only descriptor is fine (copy-on-write).
    assert!(s.mmap(0, P, RW, MAP_PRIVATE, fd(true, false), P).is_ok());
    // MAP_ANONYMOUS ignores the descriptor.
    assert!(s.mmap(0, P, RW, ANON, fd(false, false), 0).is_ok());
}

#[test]
fn map_fixed_replaces_and_frees() {
    let frames = SimFrames::new();
    let mut s = new_space(&frames);
    let a = 0x40_0000;
    map(&mut s, a, 4 * P, RW, ANON | MAP_FIXED).unwrap();
    for i in 0..4 {
        write(&mut s, &frames, a + i * P, 7).unwrap();
    }
    assert_eq!(frames.live(), 4);
    s.mmu().take_flushes();
    map(&mut s, a + P, 2 * P, PROT_READ, ANON | MAP_FIXED).unwrap();
    assert_eq!(frames.live(), 2);
    assert_eq!(s.mmu().take_flushes(), vec![Flush::Range(a + P, a + 3 * P)]);
    assert_eq!(
        areas(&s),
        vec![
            (a, a + P, Prot::READ | Prot::WRITE),
            (a + P, a + 3 * P, Prot::READ),
            (a + 3 * P, a + 4 * P, Prot::READ | Prot::WRITE)
        ]
    );
    assert_eq!(read(&mut s, &frames, a + P), Ok(0));
    assert_eq!(read(&mut s, &frames, a), Ok(7));
    check_invariants(&[&s], &frames);
}

#[test]
fn munmap_splits_frees_and_checks_arguments() {
    let frames = SimFrames::new();
    let mut s = new_space(&frames);
    let a = 0x40_0000;
    map(&mut s, a, 8 * P, RW, ANON | MAP_FIXED).unwrap();
    for i in 0..8 {
        write(&mut s, &frames, a + i * P, i as u8).unwrap();
    }
    assert_eq!(s.munmap(a + 1, P), Err(VmError::Inval));
    assert_eq!(s.munmap(a, 0), Err(VmError::Inval));
    assert_eq!(s.munmap(TOP + P, P), Err(VmError::Inval));
    assert_eq!(s.munmap(TOP - P, 2 * P), Err(VmError::Inval));
    assert_eq!(s.munmap(0x1000_0000, P), Ok(()), "nothing mapped there");
    s.munmap(a + 2 * P, 3 * P - 100).unwrap();
    assert_eq!(frames.live(), 5);
    assert_eq!(
        areas(&s),
        vec![
            (a, a + 2 * P, Prot::READ | Prot::WRITE),
            (a + 5 * P, a + 8 * P, Prot::READ | Prot::WRITE)
        ]
    );
    assert_eq!(read(&mut s, &frames, a + 3 * P), Err(FaultError::Unmapped));
    assert_eq!(read(&mut s, &frames, a + 5 * P), Ok(5));
    // Over areas and holes at once.
    s.munmap(a, 8 * P).unwrap();
    assert_eq!(s.area_count(), 0);
    assert_eq!(frames.live(), 0);
    assert_eq!(s.rss_pages(), 0);
}

#[test]
fn mprotect_one_page_of_a_huge_area_splits_in_three_and_merges_back() {
    let frames = SimFrames::new();
    let mut s = new_space(&frames);
    let a = 0x1_0000_0000;
    let len = 1 << 30;
    map(&mut s, a, len, RW, ANON | MAP_FIXED).unwrap();
    let mid = a + len / 2;
    write(&mut s, &frames, mid, 9).unwrap();
    s.mprotect(mid, P, PROT_READ).unwrap();
    assert_eq!(
        areas(&s),
        vec![
            (a, mid, Prot::READ | Prot::WRITE),
            (mid, mid + P, Prot::READ),
            (mid + P, a + len, Prot::READ | Prot::WRITE)
        ]
    );
    assert_eq!(
        write(&mut s, &frames, mid, 1),
        Err(FaultError::AccessDenied)
    );
    assert_eq!(read(&mut s, &frames, mid), Ok(9));
    s.mprotect(mid, P, RW).unwrap();
    assert_eq!(areas(&s), vec![(a, a + len, Prot::READ | Prot::WRITE)]);
    write(&mut s, &frames, mid, 10).unwrap();
    check_invariants(&[&s], &frames);
    // First and last page of the area.
    s.mprotect(a, P, PROT_NONE).unwrap();
    s.mprotect(a + len - P, P, PROT_EXEC).unwrap();
    assert_eq!(s.area_count(), 3);
    assert_eq!(read(&mut s, &frames, a), Err(FaultError::AccessDenied));
    assert_eq!(
        read(&mut s, &frames, a + len - 1),
        Err(FaultError::AccessDenied)
    );
    s.mprotect(a, len, RW).unwrap();
    assert_eq!(s.area_count(), 1);
}

#[test]
fn mprotect_argument_errors_and_holes() {
    let frames = SimFrames::new();
    let mut s = new_space(&frames);
    let a = 0x40_0000;
    map(&mut s, a, 2 * P, RW, ANON | MAP_FIXED).unwrap();
    map(&mut s, a + 3 * P, 2 * P, RW, ANON | MAP_FIXED).unwrap();
    assert_eq!(s.mprotect(a + 1, P, PROT_READ), Err(VmError::Inval));
    assert_eq!(
        s.mprotect(0x7000_0000, 0, PROT_READ),
        Ok(()),
        "length 0 succeeds, even unmapped"
    );
    assert_eq!(s.mprotect(a, P, 0x10), Err(VmError::Inval));
    assert_eq!(
        s.mprotect(a, P, PROT_READ | PROT_GROWSDOWN | PROT_GROWSUP),
        Err(VmError::Inval)
    );
    assert_eq!(
        s.mprotect(a, P, PROT_READ | PROT_GROWSUP),
        Err(VmError::Inval)
    );
    assert_eq!(
        s.mprotect(a, P, PROT_READ | PROT_GROWSDOWN),
        Err(VmError::Inval),
        "not a stack"
    );
    assert_eq!(
        s.mprotect(a, usize::MAX - P, PROT_READ),
        Err(VmError::NoMem),
        "wraps"
    );
    assert_eq!(
        s.mprotect(a - P, 2 * P, PROT_READ),
        Err(VmError::NoMem),
        "starts in a hole"
    );
    assert_eq!(
        s.mprotect(0x7000_0000, P, PROT_READ),
        Err(VmError::NoMem),
        "nothing above"
    );
    assert_eq!(s.areas().next().unwrap().prot, Prot::READ | Prot::WRITE);
    assert_eq!(s.mprotect(a, P, PROT_READ | PROT_SEM), Ok(()));
    s.mprotect(a, P, RW).unwrap();
    // A hole in the middle: the part before it is changed, then ENOMEM (as Linux).
    assert_eq!(s.mprotect(a, 5 * P, PROT_READ), Err(VmError::NoMem));
    assert_eq!(
        areas(&s),
        vec![
            (a, a + 2 * P, Prot::READ),
            (a + 3 * P, a + 5 * P, Prot::READ | Prot::WRITE)
        ]
    );
}

#[test]
fn mprotect_updates_present_ptes_with_precise_flushes() {
    let frames = SimFrames::new();
    let mut s = new_space(&frames);
    let a = 0x40_0000;
    map(&mut s, a, 4 * P, RW, ANON | MAP_FIXED).unwrap();
    write(&mut s, &frames, a, 1).unwrap();
    write(&mut s, &frames, a + 2 * P, 3).unwrap();
    read(&mut s, &frames, a + 3 * P).unwrap(); // the zero page
    assert!(
        s.mmu().take_flushes().is_empty(),
        "first touches need no flush"
    );
    s.mprotect(a, 4 * P, PROT_READ).unwrap();
    // Only the two writable PTEs lost a right; the zero page was already read-only.
    assert_eq!(s.mmu().take_flushes(), vec![Flush::Range(a, a + 3 * P)]);
    check_invariants(&[&s], &frames);
    s.mprotect(a, 4 * P, RW).unwrap();
    assert!(s.mmu().take_flushes().is_empty(), "upgrades need no flush");
    check_invariants(&[&s], &frames);
    // PROT_NONE keeps the data; restoring brings it back.
    s.mprotect(a, 4 * P, PROT_NONE).unwrap();
    assert_eq!(read(&mut s, &frames, a), Err(FaultError::AccessDenied));
    s.mprotect(a, 4 * P, PROT_READ).unwrap();
    assert_eq!(read(&mut s, &frames, a + 2 * P), Ok(3));
    check_invariants(&[&s], &frames);
}

#[test]
fn mprotect_write_on_read_only_shared_file_is_eacces() {
    let frames = SimFrames::new();
    let mut s = new_space(&frames);
    let file = SimFile::patterned(&frames, 2 * P);
    let a = s
        .mmap(0, 2 * P, PROT_READ, MAP_SHARED, ro_fd(&file), 0)
        .unwrap()
        .0;
    assert_eq!(s.mprotect(a, P, RW), Err(VmError::Access));
    assert_eq!(s.mprotect(a, P, PROT_READ | PROT_EXEC), Ok(()));
    assert_eq!(read(&mut s, &frames, a + P + 5), Ok(file_byte(P + 5)));
}

#[test]
fn mprotect_growsdown_extends_to_the_stack_start() {
    let frames = SimFrames::new();
    let mut s = new_space(&frames);
    let stack = s.map_stack(VirtAddr(TOP), 16 * P).unwrap();
    s.mprotect(TOP - 2 * P, P, PROT_READ | PROT_EXEC | PROT_GROWSDOWN)
        .unwrap();
    assert_eq!(
        areas(&s),
        vec![
            (stack.start.0, TOP - P, Prot::READ | Prot::EXEC),
            (TOP - P, TOP, Prot::READ | Prot::WRITE)
        ]
    );
    assert!(s.areas().all(|a| a.grows_down));
}

#[test]
fn area_limit_is_enforced() {
    let frames = SimFrames::new();
    let config = VmConfig {
        max_map_count: 3,
        ..VmConfig::LINUX_DEFAULT
    };
    let mut s = new_space_with(&frames, config);
    let a = 0x40_0000;
    map(&mut s, a, 9 * P, RW, ANON | MAP_FIXED).unwrap();
    s.mprotect(a + 3 * P, 3 * P, PROT_READ).unwrap();
    assert_eq!(s.area_count(), 3);
    // Cutting one more area in three, by munmap or mprotect, is refused.
    assert_eq!(s.munmap(a + P, P), Err(VmError::NoMem));
    assert_eq!(s.mprotect(a + 4 * P, P, RW), Err(VmError::NoMem));
    // Trimming an end is fine.
    s.munmap(a, P).unwrap();
    // mmap refuses only once the count is above the limit (Linux's `>`).
    assert_eq!(map(&mut s, 0x100_0000, P, PROT_READ, ANON), Ok(0x100_0000));
    assert_eq!(s.area_count(), 4);
    assert_eq!(
        map(&mut s, 0x200_0000, P, PROT_READ, ANON),
        Err(VmError::NoMem)
    );
}

#[test]
fn brk_follows_linux_rules() {
    let frames = SimFrames::new();
    let mut s = new_space(&frames);
    let bss_end = 0x1_2345;
    s.map_anon(VirtAddr(0x1_0000), 0x3000, Prot::READ | Prot::WRITE)
        .unwrap();
    s.init_brk(VirtAddr(bss_end)).unwrap();
    let start = 0x1_3000;
    assert_eq!(s.brk(0), VirtAddr(start), "brk(0) queries");
    assert_eq!(
        s.brk(start - 1),
        VirtAddr(start),
        "below the start: refused"
    );
    assert_eq!(s.brk(start + 100), VirtAddr(start + 100));
    // The heap merged with the bss area below it.
    assert_eq!(
        areas(&s),
        vec![(0x1_0000, start + P, Prot::READ | Prot::WRITE)]
    );
    assert_eq!(
        s.brk(start + 50),
        VirtAddr(start + 50),
        "same page: only the value moves"
    );
    assert_eq!(s.brk(start + 3 * P), VirtAddr(start + 3 * P));
    write(&mut s, &frames, start + 2 * P, 4).unwrap();
    assert_eq!(s.brk(start + P), VirtAddr(start + P), "shrinking unmaps");
    assert_eq!(
        read(&mut s, &frames, start + 2 * P),
        Err(FaultError::Unmapped)
    );
    assert_eq!(frames.live(), 0);
    assert_eq!(s.brk(start + 3 * P), VirtAddr(start + 3 * P));
    assert_eq!(
        read(&mut s, &frames, start + 2 * P),
        Ok(0),
        "regrown heap is zeroed"
    );
    // Never into (or within a page of) another mapping.
    let next = start + 10 * P;
    map(&mut s, next, P, PROT_READ, ANON | MAP_FIXED).unwrap();
    assert_eq!(s.brk(next - P + 1), VirtAddr(start + 3 * P));
    assert_eq!(s.brk(next - P), VirtAddr(next - P));
    assert_eq!(s.current_brk(), VirtAddr(next - P));
    assert_eq!(s.brk(TOP + P), VirtAddr(next - P));
    check_invariants(&[&s], &frames);
}

#[test]
fn brk_keeps_the_stack_guard_gap() {
    let frames = SimFrames::new();
    let mut s = new_space(&frames);
    let stack = s
        .map_stack(VirtAddr(0x100_0000 + STACK_GUARD_GAP + 8 * P), 2 * P)
        .unwrap();
    s.init_brk(VirtAddr(0x100_0000)).unwrap();
    let old = VirtAddr(0x100_0000 + 2 * P);
    assert_eq!(s.brk(old.0), old);
    let gap_start = stack.start.0 - STACK_GUARD_GAP;
    assert_eq!(s.brk(gap_start), old, "one page short of the gap");
    assert_eq!(s.brk(gap_start - P), VirtAddr(gap_start - P));
}

#[test]
fn init_brk_rejects_addresses_outside_the_user_half() {
    let frames = SimFrames::new();
    let mut s = new_space(&frames);
    assert_eq!(s.init_brk(VirtAddr(TOP)), Err(VmError::Inval));
    assert_eq!(s.init_brk(VirtAddr(usize::MAX)), Err(VmError::Inval));
}

#[test]
fn madvise_dontneed_drops_pages() {
    let frames = SimFrames::new();
    let mut s = new_space(&frames);
    let a = map(&mut s, 0, 2 * P, RW, ANON).unwrap();
    let sh = map(&mut s, 0, P, RW, MAP_SHARED | MAP_ANONYMOUS).unwrap();
    let file = SimFile::patterned(&frames, 2 * P);
    let f = s.mmap(0, P, RW, MAP_PRIVATE, ro_fd(&file), P).unwrap().0;
    write(&mut s, &frames, a, 1).unwrap();
    write(&mut s, &frames, sh, 2).unwrap();
    write(&mut s, &frames, f, 3).unwrap();
    s.mmu().take_flushes();
    s.madvise(a, 2 * P, MADV_DONTNEED).unwrap();
    assert_eq!(s.mmu().take_flushes(), vec![Flush::Page(a)]);
    s.madvise(sh, P, MADV_DONTNEED).unwrap();
    s.madvise(f, P, MADV_DONTNEED).unwrap();
    assert_eq!(
        read(&mut s, &frames, a),
        Ok(0),
        "anonymous reads back zeros"
    );
    assert_eq!(
        read(&mut s, &frames, sh),
        Ok(2),
        "shared keeps its contents"
    );
    assert_eq!(
        read(&mut s, &frames, f),
        Ok(file_byte(P)),
        "file pages are re-read"
    );
    check_invariants(&[&s], &frames);
}

#[test]
fn madvise_arguments_and_holes() {
    let frames = SimFrames::new();
    let mut s = new_space(&frames);
    let a = 0x40_0000;
    map(&mut s, a, P, RW, ANON | MAP_FIXED).unwrap();
    map(&mut s, a + 2 * P, P, RW, ANON | MAP_FIXED).unwrap();
    write(&mut s, &frames, a, 1).unwrap();
    write(&mut s, &frames, a + 2 * P, 1).unwrap();
    assert_eq!(s.madvise(a, P, 100), Err(VmError::Inval));
    assert_eq!(s.madvise(a + 1, P, MADV_DONTNEED), Err(VmError::Inval));
    assert_eq!(s.madvise(a, usize::MAX, MADV_DONTNEED), Err(VmError::Inval));
    assert_eq!(s.madvise(a, 0, MADV_DONTNEED), Ok(()));
    assert_eq!(
        s.madvise(0x7000_0000, P, MADV_DONTNEED),
        Err(VmError::NoMem)
    );
    for hint in [MADV_NORMAL, MADV_RANDOM, MADV_SEQUENTIAL, MADV_WILLNEED] {
        assert_eq!(s.madvise(a, P, hint), Ok(()));
    }
    assert_eq!(frames.live(), 2, "hints change nothing");
    // Mapped parts are dropped, the hole reported.
    assert_eq!(s.madvise(a, 4 * P, MADV_DONTNEED), Err(VmError::NoMem));
    assert_eq!(frames.live(), 0);
}

#[test]
fn areas_at_the_top_of_the_user_half() {
    let frames = SimFrames::new();
    let mut s = new_space(&frames);
    let last = TOP - P;
    assert_eq!(map(&mut s, last, P, RW, ANON | MAP_FIXED), Ok(last));
    write(&mut s, &frames, TOP - 1, 0xee).unwrap();
    assert_eq!(read(&mut s, &frames, TOP - 1), Ok(0xee));
    assert_eq!(
        s.handle_fault(VirtAddr(TOP), pagoda_mm::vm::Access::Read),
        Err(FaultError::Unmapped)
    );
    s.mprotect(last, P, PROT_READ).unwrap();
    s.munmap(last, P).unwrap();
    assert_eq!(frames.live(), 0);
}

#[test]
fn exec_mappers_validate_and_describe_areas() {
    let frames = SimFrames::new();
    let mut s = new_space(&frames);
    let file = SimFile::patterned(&frames, 5 * P);
    let rx = Prot::READ | Prot::EXEC;
    assert_eq!(
        s.map_file_private(VirtAddr(0x1_0001), P, rx, file.object(), 0, P),
        Err(VmError::Inval)
    );
    assert_eq!(
        s.map_file_private(VirtAddr(0x1_0000), P, rx, file.object(), 1, P),
        Err(VmError::Inval)
    );
    assert_eq!(
        s.map_file_private(VirtAddr(0x1_0000), P, rx, file.object(), 0, 2 * P),
        Err(VmError::Inval)
    );
    assert_eq!(
        s.map_file_private(VirtAddr(0x1_0000), 0, rx, file.object(), 0, 0),
        Err(VmError::Inval)
    );
    assert_eq!(
        s.map_file_private(VirtAddr(0), P, rx, file.object(), 0, P),
        Err(VmError::Perm)
    );
    assert_eq!(
        s.map_file_private(VirtAddr(TOP), P, rx, file.object(), 0, P),
        Err(VmError::NoMem)
    );
    assert_eq!(
        s.map_file_private(
            VirtAddr(0x1_0000),
            2 * P,
            rx,
            file.object(),
            u64::MAX - 0xfff,
            0
        ),
        Err(VmError::Overflow)
    );
    s.map_file_private(VirtAddr(0x1_0000), 2 * P, rx, file.object(), 0, 2 * P)
        .unwrap();
    // A continuation with the same file end (pure bss here) merges into one area.
    s.map_file_private(VirtAddr(0x1_2000), P, rx, file.object(), 2 * P as u64, 0)
        .unwrap();
    let info: Vec<_> = s.areas().collect();
    assert_eq!(info.len(), 1);
    assert_eq!(
        info[0].kind,
        AreaKind::File {
            offset: 0,
            file_end: 2 * P as u64
        }
    );
    assert_eq!(read(&mut s, &frames, 0x1_2000 + 9), Ok(0), "bss reads zero");
    // Another file end does not merge.
    s.map_file_private(VirtAddr(0x1_3000), P, rx, file.object(), 3 * P as u64, P)
        .unwrap();
    assert_eq!(s.area_count(), 2);
    assert_eq!(
        s.map_stack(VirtAddr(TOP), 9 << 20),
        Err(VmError::NoMem),
        "over the stack limit"
    );
    assert_eq!(
        s.map_stack(VirtAddr(P), 2 * P),
        Err(VmError::NoMem),
        "below 0"
    );
    let stack = s.map_stack(VirtAddr(TOP), 1).unwrap();
    assert_eq!(stack, VirtAddr(TOP - P)..VirtAddr(TOP));
    assert!(s.area_containing(VirtAddr(TOP - 1)).unwrap().grows_down);
    assert_eq!(
        s.map_anon(VirtAddr(0x5_0000), 0, Prot::READ),
        Err(VmError::Inval)
    );
}

#[test]
fn rlimit_as_bounds_every_way_a_space_grows() {
    let frames = SimFrames::new();
    let limit = 16 * P;
    let config = VmConfig {
        as_limit: Some(limit + P / 2), // compared in whole pages, as Linux does
        ..VmConfig::LINUX_DEFAULT
    };
    let mut s = new_space_with(&frames, config);
    let a = map(&mut s, 0, 8 * P, RW, ANON).unwrap();
    assert_eq!(s.mapped_bytes(), 8 * P);
    assert_eq!(map(&mut s, 0, 9 * P, RW, ANON), Err(VmError::NoMem));
    // MAP_FIXED over mapped pages counts only the pages it adds.
    assert_eq!(
        map(&mut s, a + 4 * P, 12 * P, RW, ANON | MAP_FIXED),
        Ok(a + 4 * P)
    );
    assert_eq!(s.mapped_bytes(), 16 * P);
    assert_eq!(
        map(&mut s, a + 4 * P, 13 * P, RW, ANON | MAP_FIXED),
        Err(VmError::NoMem)
    );
    assert_eq!(
        map(&mut s, 0, P, RW, ANON),
        Err(VmError::NoMem),
        "at the limit"
    );
    // mremap: shrinking is free, growing (in place, moved, or kept with DONTUNMAP) counts.
    assert_eq!(s.mremap(a, 16 * P, 12 * P, 0, 0).map(|r| r.addr.0), Ok(a));
    assert_eq!(
        s.mremap(a, 12 * P, 17 * P, MREMAP_MAYMOVE, 0).err(),
        Some(VmError::NoMem)
    );
    assert_eq!(
        s.mremap(a, 12 * P, 16 * P, MREMAP_MAYMOVE, 0)
            .map(|r| r.addr.0),
        Ok(a)
    );
    s.munmap(a + 8 * P, 8 * P).unwrap();
    let both = MREMAP_MAYMOVE | MREMAP_DONTUNMAP;
    assert!(s.mremap(a, 8 * P, 8 * P, both, 0).is_ok());
    assert_eq!(s.mapped_bytes(), 16 * P, "the old range stays mapped");
    for area in s.areas().collect::<Vec<_>>() {
        s.munmap(area.range.start.0, area.range.end.0 - area.range.start.0)
            .unwrap();
    }
    assert_eq!(s.mapped_bytes(), 0);
    // brk grows up to the limit and no further.
    let heap = 0x100_0000;
    s.init_brk(VirtAddr(heap)).unwrap();
    assert_eq!(s.brk(heap + 16 * P).0, heap + 16 * P);
    assert_eq!(s.brk(heap + 17 * P).0, heap + 16 * P);
    assert_eq!(s.brk(heap + 8 * P).0, heap + 8 * P);
    // The stack grows into what is left, then its next page faults.
    let stack = s.map_stack(VirtAddr(TOP), 4 * P).unwrap();
    let below = stack.start.0 - 4 * P;
    assert_eq!(write(&mut s, &frames, below, 1), Ok(()));
    assert_eq!(s.mapped_bytes(), 16 * P);
    assert_eq!(
        write(&mut s, &frames, below - P, 1),
        Err(FaultError::Unmapped)
    );
    // Raising the limit lets it grow again; no limit is Linux's default.
    s.set_as_limit(None);
    assert_eq!(write(&mut s, &frames, below - P, 1), Ok(()));
    assert!(map(&mut s, 0, 64 * P, RW, ANON).is_ok());
    check_invariants(&[&s], &frames);
}
