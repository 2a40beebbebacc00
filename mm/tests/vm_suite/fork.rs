//! Copy-on-write fork: isolation of writes, shared memory, nested forks with every drop
//! order, exec after fork, failures, with reference counts checked exactly throughout.

use pagoda_mm::addr::{PAGE_SIZE, VirtAddr};
use pagoda_mm::vm::abi::*;
use pagoda_mm::vm::{FaultOutcome, FrameSource, Prot, VmError};

use super::sim::{
    Flush, SimFile, SimFrames, SimMmu, Space, check_invariants, file_byte, new_space, read, write,
};

const P: usize = PAGE_SIZE;
const RW: usize = PROT_READ | PROT_WRITE;
const ANON: usize = MAP_PRIVATE | MAP_ANONYMOUS;

fn anon(s: &mut Space, len: usize, prot: usize) -> usize {
    s.mmap(0, len, prot, ANON, None, 0).unwrap().0
}

#[test]
fn parent_and_child_see_only_their_own_writes() {
    let frames = SimFrames::new();
    let mut parent = new_space(&frames);
    let a = anon(&mut parent, 4 * P, RW);
    write(&mut parent, &frames, a, 1).unwrap();
    write(&mut parent, &frames, a + P, 2).unwrap();
    read(&mut parent, &frames, a + 2 * P).unwrap();
    parent.mmu().take_flushes();
    let mut child = parent.fork(SimMmu::new()).unwrap();
    // The two writable PTEs were write-protected in the parent: flushed, once.
    assert_eq!(
        parent.mmu().take_flushes(),
        vec![Flush::Range(a, a + 2 * P)]
    );
    assert_eq!(frames.live(), 2, "no data page copied");
    for page in [a, a + P] {
        let (p, c) = (parent.mmu().query_page(page), child.mmu().query_page(page));
        assert_eq!(p.pa, c.pa);
        assert!(p.cow && c.cow);
        assert_eq!(frames.refcount(p.pa), 2);
    }
    assert_eq!(child.rss_pages(), 2);
    assert_eq!(parent.stats().forks, 1);
    check_invariants(&[&parent, &child], &frames);

    write(&mut child, &frames, a, 10).unwrap();
    assert_eq!(child.stats().cow_copies, 1);
    assert_eq!(read(&mut parent, &frames, a), Ok(1));
    assert_eq!(read(&mut child, &frames, a), Ok(10));
    // The parent is now alone on its frame: taken over, not copied.
    assert_eq!(
        parent.handle_fault(VirtAddr(a), pagoda_mm::vm::Access::Write),
        Ok(FaultOutcome::CowTakenOver)
    );
    write(&mut parent, &frames, a, 11).unwrap();
    write(&mut parent, &frames, a + P, 20).unwrap();
    write(&mut child, &frames, a + P, 21).unwrap();
    assert_eq!(
        (parent.stats().cow_copies, parent.stats().cow_takeovers),
        (1, 1)
    );
    assert_eq!(
        (child.stats().cow_copies, child.stats().cow_takeovers),
        (1, 1)
    );
    write(&mut child, &frames, a + 2 * P, 30).unwrap();
    for (va, p, c) in [
        (a, 11, 10),
        (a + P, 20, 21),
        (a + 2 * P, 0, 30),
        (a + 3 * P, 0, 0),
    ] {
        assert_eq!(read(&mut parent, &frames, va), Ok(p));
        assert_eq!(read(&mut child, &frames, va), Ok(c));
    }
    check_invariants(&[&parent, &child], &frames);
    assert_eq!(frames.live(), 5);
    drop(child);
    assert_eq!(frames.live(), 2);
    check_invariants(&[&parent], &frames);
    drop(parent);
    assert_eq!(frames.live(), 0);
}

#[test]
fn shared_memory_stays_shared_across_fork() {
    let frames = SimFrames::new();
    let mut parent = new_space(&frames);
    let sh = parent
        .mmap(0, 2 * P, RW, MAP_SHARED | MAP_ANONYMOUS, None, 0)
        .unwrap()
        .0;
    write(&mut parent, &frames, sh, 1).unwrap();
    parent.mmu().take_flushes();
    let mut child = parent.fork(SimMmu::new()).unwrap();
    assert!(
        parent.mmu().take_flushes().is_empty(),
        "shared PTEs keep their rights"
    );
    write(&mut child, &frames, sh, 2).unwrap();
    assert_eq!(read(&mut parent, &frames, sh), Ok(2));
    // A page first touched after the fork is still one page for both.
    write(&mut parent, &frames, sh + P, 3).unwrap();
    assert_eq!(read(&mut child, &frames, sh + P), Ok(3));
    check_invariants(&[&parent, &child], &frames);
    assert_eq!(frames.live(), 2);
    drop(parent);
    assert_eq!(read(&mut child, &frames, sh), Ok(2));
    check_invariants(&[&child], &frames);
    drop(child);
    assert_eq!(frames.live(), 0);
}

/// Builds parent → child → grandchild, each writing its own values, checks isolation,
/// then drops the three in `order`, checking counts after every drop.
fn three_generations(order: [usize; 3]) {
    let frames = SimFrames::new();
    let mut p = new_space(&frames);
    let a = anon(&mut p, 3 * P, RW);
    let sh = p
        .mmap(0, P, RW, MAP_SHARED | MAP_ANONYMOUS, None, 0)
        .unwrap()
        .0;
    write(&mut p, &frames, a, 1).unwrap();
    write(&mut p, &frames, a + P, 1).unwrap();
    write(&mut p, &frames, sh, 1).unwrap();
    let mut c = p.fork(SimMmu::new()).unwrap();
    write(&mut c, &frames, a, 2).unwrap();
    let mut g = c.fork(SimMmu::new()).unwrap();
    write(&mut g, &frames, a + P, 3).unwrap();
    write(&mut g, &frames, a + 2 * P, 3).unwrap();
    write(&mut g, &frames, sh, 9).unwrap();
    // A sibling of the child, forked and exec'd at once.
    drop(p.fork(SimMmu::new()).unwrap());
    let expected = [[1, 1, 0], [2, 1, 0], [2, 3, 3]];
    let mut spaces = [Some(p), Some(c), Some(g)];
    for (space, values) in spaces.iter_mut().zip(expected) {
        let space = space.as_mut().unwrap();
        for (i, value) in values.into_iter().enumerate() {
            assert_eq!(read(space, &frames, a + i * P), Ok(value));
        }
        assert_eq!(read(space, &frames, sh), Ok(9));
    }
    for victim in order {
        let live: Vec<&Space> = spaces.iter().flatten().collect();
        check_invariants(&live, &frames);
        spaces[victim] = None;
    }
    assert_eq!(frames.live(), 0);
}

#[test]
fn three_level_fork_trees_in_every_drop_order() {
    for order in [
        [0, 1, 2],
        [0, 2, 1],
        [1, 0, 2],
        [1, 2, 0],
        [2, 0, 1],
        [2, 1, 0],
    ] {
        three_generations(order);
    }
}

#[test]
fn exec_right_after_fork_leaves_the_parent_sole_owner() {
    let frames = SimFrames::new();
    let mut parent = new_space(&frames);
    let a = anon(&mut parent, 8 * P, RW);
    for i in 0..8 {
        write(&mut parent, &frames, a + i * P, i as u8).unwrap();
    }
    let child = parent.fork(SimMmu::new()).unwrap();
    drop(child);
    check_invariants(&[&parent], &frames);
    for i in 0..8 {
        write(&mut parent, &frames, a + i * P, 100).unwrap();
    }
    let stats = parent.stats();
    assert_eq!((stats.cow_copies, stats.cow_takeovers), (0, 8));
    assert_eq!(frames.live(), 8);
}

#[test]
fn parent_exiting_first_and_one_sided_munmap() {
    let frames = SimFrames::new();
    let mut parent = new_space(&frames);
    let a = anon(&mut parent, 4 * P, RW);
    for i in 0..4 {
        write(&mut parent, &frames, a + i * P, 1).unwrap();
    }
    let mut child = parent.fork(SimMmu::new()).unwrap();
    child.munmap(a, 2 * P).unwrap();
    assert_eq!(read(&mut parent, &frames, a), Ok(1));
    check_invariants(&[&parent, &child], &frames);
    drop(parent);
    check_invariants(&[&child], &frames);
    write(&mut child, &frames, a + 3 * P, 2).unwrap();
    assert_eq!(child.stats().cow_takeovers, 1);
    assert_eq!(frames.live(), 2);
    drop(child);
    assert_eq!(frames.live(), 0);
}

#[test]
fn failed_fork_drops_every_reference_it_took() {
    let frames = SimFrames::new();
    let mut parent = new_space(&frames);
    let a = anon(&mut parent, 4 * P, RW);
    for i in 0..4 {
        write(&mut parent, &frames, a + i * P, 1).unwrap();
    }
    let result = parent.fork(SimMmu::with_map_budget(2));
    assert!(matches!(result, Err(VmError::NoMem)));
    check_invariants(&[&parent], &frames);
    assert_eq!(frames.live(), 4);
    for i in 0..4 {
        write(&mut parent, &frames, a + i * P, 2).unwrap();
    }
    assert_eq!(parent.stats().cow_copies, 0);
}

#[test]
fn read_only_and_inaccessible_pages_are_shared_copy_on_write() {
    let frames = SimFrames::new();
    let mut parent = new_space(&frames);
    let a = anon(&mut parent, 2 * P, RW);
    write(&mut parent, &frames, a, 5).unwrap();
    write(&mut parent, &frames, a + P, 6).unwrap();
    parent.mprotect(a, P, PROT_READ).unwrap();
    parent.mprotect(a + P, P, PROT_NONE).unwrap();
    parent.mmu().take_flushes();
    let mut child = parent.fork(SimMmu::new()).unwrap();
    assert!(
        parent.mmu().take_flushes().is_empty(),
        "no PTE lost a right"
    );
    check_invariants(&[&parent, &child], &frames);
    // Making them writable again keeps them read-only until a write breaks the sharing.
    child.mprotect(a, 2 * P, RW).unwrap();
    write(&mut child, &frames, a, 50).unwrap();
    write(&mut child, &frames, a + P, 60).unwrap();
    assert_eq!(child.stats().cow_copies, 2);
    parent.mprotect(a, 2 * P, PROT_READ).unwrap();
    assert_eq!(read(&mut parent, &frames, a), Ok(5));
    assert_eq!(read(&mut parent, &frames, a + P), Ok(6));
    check_invariants(&[&parent, &child], &frames);
}

#[test]
fn file_pages_are_copy_on_write_after_fork() {
    let frames = SimFrames::new();
    let file = SimFile::patterned(&frames, 2 * P);
    let mut parent = new_space(&frames);
    parent
        .map_file_private(
            VirtAddr(0x1_0000),
            2 * P,
            Prot::READ | Prot::WRITE,
            file.object(),
            0,
            2 * P,
        )
        .unwrap();
    read(&mut parent, &frames, 0x1_0000).unwrap();
    let mut child = parent.fork(SimMmu::new()).unwrap();
    write(&mut child, &frames, 0x1_0000, 0).unwrap();
    assert_eq!(read(&mut parent, &frames, 0x1_0000), Ok(file_byte(0)));
    // A page never touched before the fork is read from the file by each side.
    assert_eq!(read(&mut child, &frames, 0x1_1001), Ok(file_byte(P + 1)));
    check_invariants(&[&parent, &child], &frames);
}

#[test]
fn brk_state_is_inherited() {
    let frames = SimFrames::new();
    let mut parent = new_space(&frames);
    parent.init_brk(VirtAddr(0x10_0000)).unwrap();
    parent.brk(0x10_3000);
    write(&mut parent, &frames, 0x10_0000, 1).unwrap();
    let mut child = parent.fork(SimMmu::new()).unwrap();
    assert_eq!(child.current_brk(), VirtAddr(0x10_3000));
    assert_eq!(child.brk(0x10_1000), VirtAddr(0x10_1000));
    assert_eq!(read(&mut parent, &frames, 0x10_2000), Ok(0));
    assert_eq!(read(&mut child, &frames, 0x10_0000), Ok(1));
    assert_eq!(child.mmap_base(), parent.mmap_base());
    assert_eq!(child.config(), parent.config());
}

/// Eager mode (the benchmarks' baseline): mappings are populated when made and `fork`
/// copies every private page, so nothing is shared copy-on-write afterwards.
#[test]
fn eager_mode_populates_and_copies() {
    use pagoda_mm::vm::VmConfig;
    let frames = SimFrames::new();
    let config = VmConfig {
        eager: true,
        ..VmConfig::LINUX_DEFAULT
    };
    let mut parent = super::sim::new_space_with(&frames, config);
    let a = anon(&mut parent, 4 * P, RW);
    assert_eq!(parent.rss_pages(), 4, "mmap populated every page");
    assert_eq!(frames.live(), 4);
    write(&mut parent, &frames, a, 7).unwrap();
    parent.init_brk(VirtAddr(0x10_0000)).unwrap();
    parent.brk(0x10_0000 + 2 * P);
    assert_eq!(parent.rss_pages(), 6, "brk growth populated");
    let mut child = parent.fork(SimMmu::new()).unwrap();
    assert_eq!(frames.live(), 12, "every private page copied at fork");
    for page in (a..a + 4 * P).step_by(P) {
        let (p, c) = (parent.mmu().query_page(page), child.mmu().query_page(page));
        assert_ne!(p.pa, c.pa);
        assert!(!p.cow && !c.cow);
        assert_eq!(frames.refcount(c.pa), 1);
    }
    assert_eq!(read(&mut child, &frames, a), Ok(7));
    write(&mut child, &frames, a, 8).unwrap();
    assert_eq!(read(&mut parent, &frames, a), Ok(7));
    assert_eq!(child.stats().cow_copies, 0);
    check_invariants(&[&parent, &child], &frames);
    drop(child);
    drop(parent);
    assert_eq!(frames.live(), 0);
}
