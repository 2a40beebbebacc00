//! The fault handler: demand paging (zero page, zero fill, file pages, bss tails, shared
//! memory), stack growth, permission errors, out of memory, precise flushes, accounting,
//! and the user-range helper.

use pagoda_mm::addr::{PAGE_SIZE, VirtAddr};
use pagoda_mm::layout::{KERNEL_HALF_START, USER_END};
use pagoda_mm::vm::abi::*;
use pagoda_mm::vm::{
    Access, AddressSpace, FaultError, FaultOutcome, FrameSource, MmapFile, Mmu, PagePerms, Prot,
    STACK_GUARD_GAP, VmConfig, VmError, global_stats,
};

use super::sim::{
    Flush, SimFile, SimFrames, SimMmu, Space, check_invariants, file_byte, new_space,
    new_space_with, read, write,
};

const P: usize = PAGE_SIZE;
const RW: usize = PROT_READ | PROT_WRITE;
const ANON: usize = MAP_PRIVATE | MAP_ANONYMOUS;
const TOP: usize = USER_END.0;

fn anon(s: &mut Space, len: usize, prot: usize) -> usize {
    s.mmap(0, len, prot, ANON, None, 0).unwrap().0
}

#[test]
fn reads_map_the_zero_page_and_writes_upgrade_it() {
    let frames = SimFrames::new();
    let mut s = new_space(&frames);
    let a = anon(&mut s, 2 * P, RW);
    assert_eq!(
        s.handle_fault(VirtAddr(a + 8), Access::Read),
        Ok(FaultOutcome::ZeroPage)
    );
    let pte = s.mmu().query_page(a);
    assert_eq!(pte.pa, frames.zero_page());
    assert_eq!(pte.flags, PagePerms::USER | PagePerms::READ);
    assert_eq!((frames.live(), s.rss_pages()), (0, 0));
    assert_eq!(read(&mut s, &frames, a + 8), Ok(0));
    assert!(
        s.mmu().take_flushes().is_empty(),
        "a new PTE needs no flush"
    );
    // The write finds the zero page cached read-only: a fresh frame replaces it.
    write(&mut s, &frames, a + 8, 42).unwrap();
    assert_eq!(s.mmu().take_flushes(), vec![Flush::Page(a)]);
    assert_eq!((frames.live(), s.rss_pages()), (1, 1));
    assert_eq!(read(&mut s, &frames, a + 8), Ok(42));
    assert_eq!(read(&mut s, &frames, a + 9), Ok(0));
    let stats = s.stats();
    assert_eq!(
        (
            stats.zero_page_maps,
            stats.zero_page_upgrades,
            stats.minor_faults
        ),
        (1, 1, 2)
    );
    check_invariants(&[&s], &frames);
}

#[test]
fn first_writes_zero_fill_without_flushing() {
    let frames = SimFrames::new();
    let mut s = new_space(&frames);
    let a = anon(&mut s, 4 * P, RW);
    for i in 0..4 {
        write(&mut s, &frames, a + i * P + 1, i as u8 + 1).unwrap();
    }
    assert!(s.mmu().take_flushes().is_empty());
    assert_eq!(s.stats().zero_fills, 4);
    for i in 0..4 {
        assert_eq!(read(&mut s, &frames, a + i * P + 1), Ok(i as u8 + 1));
        assert_eq!(read(&mut s, &frames, a + i * P), Ok(0));
    }
    check_invariants(&[&s], &frames);
}

#[test]
fn file_pages_and_bss_tails() {
    let frames = SimFrames::new();
    let file = SimFile::patterned(&frames, 2 * P + 0x800);
    let mut s = new_space(&frames);
    let va = 0x1_0000;
    let rw = Prot::READ | Prot::WRITE;
    // A data segment: 2.25 pages from the file (the file itself is longer), 5 pages in memory.
    s.map_file_private(VirtAddr(va), 5 * P, rw, file.object(), 0, 2 * P + 0x400)
        .unwrap();
    assert_eq!(
        s.handle_fault(VirtAddr(va + 5), Access::Read),
        Ok(FaultOutcome::FileRead)
    );
    assert_eq!(read(&mut s, &frames, va + 5), Ok(file_byte(5)));
    assert_eq!(read(&mut s, &frames, va + P + 77), Ok(file_byte(P + 77)));
    assert_eq!(
        read(&mut s, &frames, va + 2 * P + 0x3ff),
        Ok(file_byte(2 * P + 0x3ff))
    );
    assert_eq!(
        read(&mut s, &frames, va + 2 * P + 0x400),
        Ok(0),
        "bss part of the last file page"
    );
    assert_eq!(read(&mut s, &frames, va + 2 * P + 0xfff), Ok(0));
    assert_eq!(
        s.handle_fault(VirtAddr(va + 3 * P), Access::Read),
        Ok(FaultOutcome::ZeroPage)
    );
    assert_eq!(read(&mut s, &frames, va + 4 * P + 3), Ok(0));
    // Private: writes stay here.
    write(&mut s, &frames, va + 5, 0).unwrap();
    let mut other = new_space(&frames);
    other
        .map_file_private(VirtAddr(va), P, rw, file.object(), 0, P)
        .unwrap();
    assert_eq!(read(&mut other, &frames, va + 5), Ok(file_byte(5)));
    assert_eq!(s.stats().file_reads, 3);
    check_invariants(&[&s], &frames);
    check_invariants(&[&other], &frames);
}

#[test]
fn text_pages_are_executable() {
    let frames = SimFrames::new();
    let file = SimFile::patterned(&frames, 3 * P);
    let mut s = new_space(&frames);
    let rx = Prot::READ | Prot::EXEC;
    s.map_file_private(VirtAddr(0x1_0000), 3 * P, rx, file.object(), 0, 3 * P)
        .unwrap();
    assert_eq!(
        s.handle_fault(VirtAddr(0x1_1234), Access::Exec),
        Ok(FaultOutcome::FileRead)
    );
    assert_eq!(
        s.mmu().query_page(0x1_1000).flags,
        PagePerms::USER | PagePerms::READ | PagePerms::EXEC
    );
    assert_eq!(
        s.handle_fault(VirtAddr(0x1_0000), Access::Write),
        Err(FaultError::AccessDenied)
    );
}

#[test]
fn file_pages_beyond_eof_are_sigbus() {
    let frames = SimFrames::new();
    let file = SimFile::patterned(&frames, P + 0x800);
    let mut s = new_space(&frames);
    let fd = Some(MmapFile {
        file: Some(file.object()),
        readable: true,
        writable: false,
    });
    let a = s.mmap(0, 3 * P, PROT_READ, MAP_PRIVATE, fd, 0).unwrap().0;
    assert_eq!(
        read(&mut s, &frames, a + P + 0x7ff),
        Ok(file_byte(P + 0x7ff))
    );
    assert_eq!(
        read(&mut s, &frames, a + P + 0x800),
        Ok(0),
        "zeros after EOF in the last page"
    );
    assert_eq!(read(&mut s, &frames, a + 2 * P), Err(FaultError::Bus));
    file.set_failing(true);
    assert_eq!(read(&mut s, &frames, a), Err(FaultError::Bus));
    assert_eq!(frames.live(), 1, "the frame of a failed read is returned");
    file.set_failing(false);
    assert_eq!(read(&mut s, &frames, a), Ok(file_byte(0)));
}

#[test]
fn permission_and_address_errors() {
    let frames = SimFrames::new();
    let mut s = new_space(&frames);
    let none = anon(&mut s, P, PROT_NONE);
    let ro = anon(&mut s, P, PROT_READ);
    let wo = anon(&mut s, P, PROT_WRITE);
    let xo = anon(&mut s, P, PROT_EXEC);
    let rw = anon(&mut s, P, RW);
    assert_eq!(
        s.handle_fault(VirtAddr(none), Access::Read),
        Err(FaultError::AccessDenied)
    );
    assert_eq!(
        s.handle_fault(VirtAddr(ro), Access::Write),
        Err(FaultError::AccessDenied)
    );
    assert_eq!(
        s.handle_fault(VirtAddr(rw), Access::Exec),
        Err(FaultError::AccessDenied)
    );
    assert_eq!(
        s.handle_fault(VirtAddr(xo), Access::Read),
        Err(FaultError::AccessDenied)
    );
    assert_eq!(
        s.handle_fault(VirtAddr(xo), Access::Exec),
        Ok(FaultOutcome::ZeroPage)
    );
    assert_eq!(
        read(&mut s, &frames, wo),
        Ok(0),
        "write-only memory is readable on RISC-V"
    );
    write(&mut s, &frames, wo, 5).unwrap();
    assert_eq!(
        s.handle_fault(VirtAddr(0x1000), Access::Read),
        Err(FaultError::Unmapped)
    );
    assert_eq!(
        s.handle_fault(VirtAddr(0), Access::Read),
        Err(FaultError::Unmapped)
    );
    assert_eq!(
        s.handle_fault(VirtAddr(TOP), Access::Read),
        Err(FaultError::Unmapped)
    );
    assert_eq!(
        s.handle_fault(KERNEL_HALF_START, Access::Write),
        Err(FaultError::Unmapped)
    );
    assert_eq!(
        s.handle_fault(VirtAddr(usize::MAX), Access::Exec),
        Err(FaultError::Unmapped)
    );
    check_invariants(&[&s], &frames);
}

#[test]
fn stacks_grow_down_within_limit_and_gap() {
    let frames = SimFrames::new();
    let mut s = new_space(&frames);
    let stack = s.map_stack(VirtAddr(TOP), 16 * P).unwrap();
    let bottom = stack.start.0;
    write(&mut s, &frames, bottom - 1, 1).unwrap();
    assert_eq!(
        s.area_containing(VirtAddr(bottom - 1)).unwrap().range,
        VirtAddr(bottom - P)..VirtAddr(TOP)
    );
    assert_eq!(s.stats().stack_growths, 1);
    // Anywhere within RLIMIT_STACK of the top.
    let deep = TOP - (8 << 20);
    write(&mut s, &frames, deep, 2).unwrap();
    assert_eq!(s.area_count(), 1);
    assert_eq!(
        s.area_containing(VirtAddr(TOP - 1)).unwrap().range.start,
        VirtAddr(deep)
    );
    assert_eq!(
        read(&mut s, &frames, deep - 1),
        Err(FaultError::Unmapped),
        "over the limit"
    );
    // Below a non-stack area: no growth.
    let a = anon(&mut s, P, RW);
    assert_eq!(read(&mut s, &frames, a - 1), Err(FaultError::Unmapped));
    check_invariants(&[&s], &frames);
}

#[test]
fn stack_growth_keeps_the_guard_gap_to_accessible_mappings() {
    let frames = SimFrames::new();
    let mut s = new_space(&frames);
    let top = 0x1000_0000;
    let stack = s.map_stack(VirtAddr(top), P).unwrap();
    let lower_end = stack.start.0 - STACK_GUARD_GAP - 4 * P;
    s.map_anon(VirtAddr(lower_end - P), P, Prot::READ).unwrap();
    // Growing to within the gap of the readable mapping below is refused.
    assert_eq!(
        read(&mut s, &frames, lower_end + STACK_GUARD_GAP - 1),
        Err(FaultError::Unmapped)
    );
    assert_eq!(read(&mut s, &frames, lower_end + STACK_GUARD_GAP), Ok(0));
    // A PROT_NONE mapping below is an explicit guard: growth may touch it.
    s.mprotect(lower_end - P, P, PROT_NONE).unwrap();
    assert_eq!(read(&mut s, &frames, lower_end), Ok(0));
    assert_eq!(s.area_count(), 2);
    check_invariants(&[&s], &frames);
}

#[test]
fn stack_growth_stops_at_mmap_min_addr() {
    let frames = SimFrames::new();
    let config = VmConfig {
        mmap_min_addr: 0x1_0000,
        ..VmConfig::LINUX_DEFAULT
    };
    let mut s = new_space_with(&frames, config);
    s.map_stack(VirtAddr(0x2_0000), P).unwrap();
    assert_eq!(read(&mut s, &frames, 0x1_0000), Ok(0));
    assert_eq!(read(&mut s, &frames, 0xffff), Err(FaultError::Unmapped));
}

#[test]
fn out_of_memory_is_an_error_and_changes_nothing() {
    let frames = SimFrames::new();
    let mut s = new_space(&frames);
    let a = anon(&mut s, 2 * P, RW);
    let sh = s
        .mmap(0, P, RW, MAP_SHARED | MAP_ANONYMOUS, None, 0)
        .unwrap()
        .0;
    let file = SimFile::patterned(&frames, P);
    s.map_file_private(VirtAddr(0x1_0000), P, Prot::READ, file.object(), 0, P)
        .unwrap();
    frames.set_limit(0);
    assert_eq!(write(&mut s, &frames, a, 1), Err(FaultError::OutOfMemory));
    assert_eq!(read(&mut s, &frames, sh), Err(FaultError::OutOfMemory));
    assert_eq!(
        read(&mut s, &frames, 0x1_0000),
        Err(FaultError::OutOfMemory)
    );
    assert!(s.mmu().ptes().is_empty());
    // Reads of anonymous memory need no frame.
    assert_eq!(read(&mut s, &frames, a + P), Ok(0));
    assert_eq!(
        write(&mut s, &frames, a + P, 1),
        Err(FaultError::OutOfMemory)
    );
    assert_eq!(
        s.mmu().query_page(a + P).pa,
        frames.zero_page(),
        "the zero page stays"
    );
    frames.set_limit(usize::MAX);
    write(&mut s, &frames, a + P, 1).unwrap();
    check_invariants(&[&s], &frames);
}

#[test]
fn page_table_exhaustion_returns_the_frame() {
    let frames = SimFrames::new();
    let mut s = AddressSpace::new(
        SimMmu::with_map_budget(0),
        frames.clone(),
        VmConfig::LINUX_DEFAULT,
    );
    let a = anon(&mut s, P, RW);
    let sh = s
        .mmap(0, P, RW, MAP_SHARED | MAP_ANONYMOUS, None, 0)
        .unwrap()
        .0;
    assert_eq!(read(&mut s, &frames, a), Err(FaultError::OutOfMemory));
    assert_eq!(write(&mut s, &frames, a, 1), Err(FaultError::OutOfMemory));
    assert_eq!(write(&mut s, &frames, sh, 1), Err(FaultError::OutOfMemory));
    assert_eq!(frames.live(), 1, "only the shared object's page remains");
    s.mmu().set_map_budget(None);
    write(&mut s, &frames, sh, 1).unwrap();
    assert_eq!(frames.live(), 1);
    drop(s);
    assert_eq!(frames.live(), 0);
}

#[test]
fn ensure_user_range_faults_pages_in() {
    let frames = SimFrames::new();
    let mut s = new_space(&frames);
    let a = anon(&mut s, 3 * P, RW);
    let ro = anon(&mut s, P, PROT_READ);
    s.ensure_user_range(VirtAddr(a + 10), 2 * P, true).unwrap();
    for page in [a, a + P, a + 2 * P] {
        assert!(s.mmu().query_page(page).flags.contains(PagePerms::WRITE));
    }
    assert_eq!(
        s.ensure_user_range(VirtAddr(a), 3 * P, true),
        Ok(()),
        "already there"
    );
    assert_eq!(s.ensure_user_range(VirtAddr(ro), P, false), Ok(()));
    assert_eq!(
        s.ensure_user_range(VirtAddr(ro), 1, true),
        Err(VmError::Fault)
    );
    assert_eq!(
        s.ensure_user_range(VirtAddr(a), 4 * P + 1, false),
        Err(VmError::Fault)
    );
    assert_eq!(s.ensure_user_range(VirtAddr(0x1000), 0, true), Ok(()));
    assert_eq!(
        s.ensure_user_range(VirtAddr(TOP - 1), 2, false),
        Err(VmError::Fault)
    );
    assert_eq!(
        s.ensure_user_range(VirtAddr(usize::MAX), 2, false),
        Err(VmError::Fault)
    );
    let b = anon(&mut s, P, RW);
    frames.set_limit(frames.live());
    assert_eq!(
        s.ensure_user_range(VirtAddr(b), 1, true),
        Err(VmError::NoMem)
    );
    check_invariants(&[&s], &frames);
}

#[test]
fn stale_translations_after_upgrades_are_spurious_faults() {
    let frames = SimFrames::new();
    let mut s = new_space(&frames);
    let a = anon(&mut s, P, RW);
    write(&mut s, &frames, a, 1).unwrap();
    s.mprotect(a, P, PROT_READ).unwrap();
    read(&mut s, &frames, a).unwrap(); // caches a read-only translation
    s.mprotect(a, P, RW).unwrap();
    assert!(
        s.mmu().take_flushes().iter().all(|f| *f == Flush::Page(a)),
        "one flush, for the downgrade"
    );
    // The hart still holds the read-only entry: the store faults, the PTE already allows it.
    assert_eq!(s.mmu().translate(a, Access::Write), None);
    assert_eq!(
        s.handle_fault(VirtAddr(a), Access::Write),
        Ok(FaultOutcome::Spurious)
    );
    write(&mut s, &frames, a, 2).unwrap();
    assert_eq!(s.stats().spurious_faults, 2);
    assert_eq!(read(&mut s, &frames, a), Ok(2));
}

#[test]
fn permissions_cleared_below_the_policy_are_restored() {
    let frames = SimFrames::new();
    let mut s = new_space(&frames);
    let a = anon(&mut s, P, RW);
    write(&mut s, &frames, a, 1).unwrap();
    s.mmu().clear_write_behind_back(a);
    assert_eq!(
        s.handle_fault(VirtAddr(a), Access::Write),
        Ok(FaultOutcome::PermissionsRestored)
    );
    write(&mut s, &frames, a, 2).unwrap();
    check_invariants(&[&s], &frames);
}

#[test]
fn populate_maps_eagerly() {
    let frames = SimFrames::new();
    let mut s = new_space(&frames);
    let a = s
        .mmap(0, 4 * P, RW, ANON | MAP_POPULATE, None, 0)
        .unwrap()
        .0;
    assert_eq!(s.rss_pages(), 4);
    let r = s
        .mmap(0, 2 * P, PROT_READ, ANON | MAP_POPULATE, None, 0)
        .unwrap()
        .0;
    assert_eq!(s.mmu().query_page(r + P).pa, frames.zero_page());
    let sh = s
        .mmap(0, P, RW, MAP_SHARED | MAP_ANONYMOUS | MAP_LOCKED, None, 0)
        .unwrap()
        .0;
    assert!(s.mmu().query(VirtAddr(sh)).present().is_some());
    s.mmap(0, P, PROT_NONE, ANON | MAP_POPULATE, None, 0)
        .unwrap();
    s.mmap(0, P, RW, ANON | MAP_POPULATE | MAP_NONBLOCK, None, 0)
        .unwrap();
    assert_eq!(s.rss_pages(), 5);
    assert_eq!(read(&mut s, &frames, a + 3 * P), Ok(0));
    check_invariants(&[&s], &frames);
}

#[test]
fn shared_objects_outlive_partial_unmaps() {
    let frames = SimFrames::new();
    let mut s = new_space(&frames);
    let a = s
        .mmap(0, 2 * P, RW, MAP_SHARED | MAP_ANONYMOUS, None, 0)
        .unwrap()
        .0;
    write(&mut s, &frames, a, 1).unwrap();
    write(&mut s, &frames, a + P, 2).unwrap();
    assert_eq!(s.stats().shared_fills, 2);
    assert_eq!(frames.live(), 2);
    // Split: the object stays whole while any part is mapped.
    s.mprotect(a, P, PROT_READ).unwrap();
    assert_eq!(s.area_count(), 2);
    s.munmap(a, P).unwrap();
    assert_eq!(frames.live(), 2);
    assert_eq!(read(&mut s, &frames, a + P), Ok(2));
    check_invariants(&[&s], &frames);
    s.munmap(a + P, P).unwrap();
    assert_eq!(frames.live(), 0);
}

#[test]
fn accounting_is_per_space_and_global() {
    let before = global_stats();
    let frames = SimFrames::new();
    let mut s = new_space(&frames);
    let a = anon(&mut s, 3 * P, RW);
    read(&mut s, &frames, a).unwrap();
    write(&mut s, &frames, a + P, 1).unwrap();
    write(&mut s, &frames, a, 1).unwrap();
    let stats = s.stats();
    assert_eq!(stats.minor_faults, 3);
    assert_eq!(
        (
            stats.zero_page_maps,
            stats.zero_fills,
            stats.zero_page_upgrades
        ),
        (1, 1, 1)
    );
    assert_eq!(s.rss_pages(), 2);
    let after = global_stats();
    assert!(after.minor_faults >= before.minor_faults + 3);
    assert!(after.zero_fills > before.zero_fills);
}
