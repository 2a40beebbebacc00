//! Transparent huge pages over the real Sv39 table: a first touch of a 2 MiB range maps
//! one 2 MiB leaf, and every path that needs 4 KiB entries (mprotect, munmap, madvise,
//! mremap, copy-on-write after fork) splits it without losing a byte, with reference
//! counts, RSS and the TLB checked exactly (`check_invariants`) and every frame back at
//! the end. A random test runs all of it against a per-page model.

use std::sync::Arc;

use pagoda_mm::addr::{PAGE_SIZE, VirtAddr};
use pagoda_mm::layout::{HUGE_PAGE_PAGES, HUGE_PAGE_SIZE};
use pagoda_mm::vm::abi::*;
use pagoda_mm::vm::{Access, FaultOutcome, FrameSource, Thp, VmConfig};

use super::sim::{
    SimFrames, SimMmu, Space, check_invariants, new_space, new_space_with, read, write,
};

const P: usize = PAGE_SIZE;
const H: usize = HUGE_PAGE_SIZE;
const RW: usize = PROT_READ | PROT_WRITE;
const ANON: usize = MAP_PRIVATE | MAP_ANONYMOUS;

/// Frames that hand out huge frames, and a space with an `len`-byte anonymous mapping
/// at a 2 MiB boundary.
fn setup(len: usize) -> (Arc<SimFrames>, Space, usize) {
    let frames = SimFrames::new();
    frames.enable_huge();
    let mut space = new_space(&frames);
    let a = space.mmap(0, len, RW, ANON, None, 0).unwrap().0;
    assert_eq!(
        a % H,
        0,
        "large anonymous mappings start on a 2 MiB boundary"
    );
    (frames, space, a)
}

/// A byte per page that tells pages and writers apart.
fn byte(page: usize, salt: u8) -> u8 {
    (page as u8).wrapping_mul(31).wrapping_add(salt) | 1
}

fn fill(s: &mut Space, f: &SimFrames, a: usize, pages: usize, salt: u8) {
    for i in 0..pages {
        write(s, f, a + i * P + i % P, byte(i, salt)).unwrap();
    }
}

fn verify(s: &mut Space, f: &SimFrames, a: usize, pages: usize, salt: u8) {
    for i in 0..pages {
        assert_eq!(read(s, f, a + i * P + i % P), Ok(byte(i, salt)), "page {i}");
    }
}

#[test]
fn a_first_write_maps_one_huge_page() {
    let (frames, mut s, a) = setup(2 * H);
    assert_eq!(
        s.handle_fault(VirtAddr(a + 5 * P), Access::Write),
        Ok(FaultOutcome::ZeroFilled)
    );
    let pte = s.mmu().query_page(a + 5 * P);
    assert!(pte.huge);
    assert_eq!(
        pte.pa.0 % H,
        5 * P,
        "the page's own frame inside the huge frame"
    );
    assert_eq!(s.rss_pages(), HUGE_PAGE_PAGES);
    assert_eq!(frames.live(), HUGE_PAGE_PAGES);
    assert_eq!(s.stats().thp_fault_alloc, 1);
    // The rest of the 2 MiB needs no fault.
    fill(&mut s, &frames, a, HUGE_PAGE_PAGES, 1);
    assert_eq!(s.stats().minor_faults, 1);
    verify(&mut s, &frames, a, HUGE_PAGE_PAGES, 1);
    check_invariants(&[&s], &frames);
    drop(s);
    assert_eq!(frames.live(), 0);
}

#[test]
fn reads_map_the_huge_zero_page_and_a_write_replaces_it() {
    let (frames, mut s, a) = setup(H);
    assert_eq!(
        s.handle_fault(VirtAddr(a), Access::Read),
        Ok(FaultOutcome::ZeroPage)
    );
    assert_eq!(read(&mut s, &frames, a + H - 1), Ok(0));
    assert_eq!(frames.live(), 0, "the huge zero page is not counted");
    assert_eq!(s.rss_pages(), 0);
    s.mmu().take_flushes();
    write(&mut s, &frames, a + 7 * P, 9).unwrap();
    assert_eq!(s.stats().zero_page_upgrades, 1);
    assert!(
        !s.mmu().take_flushes().is_empty(),
        "the zero leaf was flushed"
    );
    assert_eq!(read(&mut s, &frames, a + 7 * P), Ok(9));
    assert_eq!(read(&mut s, &frames, a + 8 * P), Ok(0));
    assert_eq!(s.rss_pages(), HUGE_PAGE_PAGES);
    check_invariants(&[&s], &frames);
}

#[test]
fn areas_smaller_than_a_huge_page_or_advised_against_stay_small() {
    let (frames, mut s, a) = setup(2 * H);
    s.madvise(a, H, MADV_NOHUGEPAGE).unwrap();
    write(&mut s, &frames, a, 1).unwrap();
    write(&mut s, &frames, a + H, 2).unwrap();
    assert!(!s.mmu().query_page(a).huge);
    assert!(s.mmu().query_page(a + H).huge);
    let small = s.mmap(0, H - P, RW, ANON, None, 0).unwrap().0;
    write(&mut s, &frames, small, 3).unwrap();
    assert!(!s.mmu().query_page(small).huge);
    // thp=madvise: only MADV_HUGEPAGE areas.
    let config = VmConfig {
        thp: Thp::Madvise,
        ..VmConfig::LINUX_DEFAULT
    };
    let mut m = new_space_with(&frames, config);
    let b = m.mmap(0, 2 * H, RW, ANON, None, 0).unwrap().0;
    m.madvise(b + H, H, MADV_HUGEPAGE).unwrap();
    write(&mut m, &frames, b, 1).unwrap();
    write(&mut m, &frames, b + H, 1).unwrap();
    assert!(!m.mmu().query_page(b).huge);
    assert!(m.mmu().query_page(b + H).huge);
    check_invariants(&[&s, &m], &frames);
}

#[test]
fn mprotect_of_one_page_splits_and_keeps_every_byte() {
    let (frames, mut s, a) = setup(2 * H);
    fill(&mut s, &frames, a, 2 * HUGE_PAGE_PAGES, 1);
    let live = frames.live();
    s.mprotect(a + 300 * P, P, PROT_READ).unwrap();
    assert_eq!(s.stats().thp_splits, 1);
    assert_eq!(frames.live(), live, "a split allocates no data page");
    assert!(!s.mmu().query_page(a).huge);
    assert!(s.mmu().query_page(a + H).huge, "the other huge page stays");
    // Its only reference: 512 ordinary frames now, one reference each.
    assert_eq!(frames.refcount(s.mmu().query_page(a + 3 * P).pa), 1);
    verify(&mut s, &frames, a, 2 * HUGE_PAGE_PAGES, 1);
    assert!(write(&mut s, &frames, a + 300 * P, 5).is_err());
    write(&mut s, &frames, a + 301 * P, 5).unwrap();
    check_invariants(&[&s], &frames);
    drop(s);
    assert_eq!(frames.live(), 0);
}

#[test]
fn munmap_and_dontneed_across_huge_page_boundaries() {
    let (frames, mut s, a) = setup(4 * H);
    fill(&mut s, &frames, a, 4 * HUGE_PAGE_PAGES, 2);
    // 64 KiB on each side of the boundary between the first and second huge page.
    s.munmap(a + H - 16 * P, 32 * P).unwrap();
    assert!(read(&mut s, &frames, a + H - P).is_err());
    assert!(read(&mut s, &frames, a + H).is_err());
    verify(&mut s, &frames, a, HUGE_PAGE_PAGES - 16, 2);
    for i in HUGE_PAGE_PAGES + 16..4 * HUGE_PAGE_PAGES {
        assert_eq!(read(&mut s, &frames, a + i * P + i % P), Ok(byte(i, 2)));
    }
    assert_eq!(s.rss_pages(), 4 * HUGE_PAGE_PAGES - 32);
    // madvise(MADV_DONTNEED) of 8 pages in the middle of the third huge page.
    let d = a + 2 * H + 100 * P;
    s.madvise(d, 8 * P, MADV_DONTNEED).unwrap();
    for i in 0..8 {
        assert_eq!(read(&mut s, &frames, d + i * P), Ok(0));
    }
    let before = 2 * HUGE_PAGE_PAGES + 99;
    assert_eq!(
        read(&mut s, &frames, d - P + before % P),
        Ok(byte(before, 2))
    );
    assert!(
        s.mmu().query_page(a + 3 * H).huge,
        "the fourth is untouched"
    );
    // Unmapping whole huge pages frees them whole.
    s.munmap(a + 3 * H, H).unwrap();
    check_invariants(&[&s], &frames);
    drop(s);
    assert_eq!(frames.live(), 0);
}

#[test]
fn fork_shares_huge_pages_and_a_write_copies_one_page() {
    let (frames, mut parent, a) = setup(2 * H);
    fill(&mut parent, &frames, a, 2 * HUGE_PAGE_PAGES, 3);
    let mut child = parent.fork(SimMmu::new()).unwrap();
    let head = parent.mmu().query_page(a).pa;
    assert!(child.mmu().query_page(a).huge && child.mmu().query_page(a).cow);
    assert_eq!(frames.refcount(head), 2, "one leaf in each space");
    assert_eq!(child.rss_pages(), 2 * HUGE_PAGE_PAGES);
    let live = frames.live();
    check_invariants(&[&parent, &child], &frames);
    // The child's write: its leaf becomes 512 entries over the same frames (each a
    // reference to the huge frame), and only the page written is copied.
    write(&mut child, &frames, a + 10 * P, 99).unwrap();
    assert_eq!(frames.live(), live + 1, "one page copied");
    assert_eq!(frames.refcount(head), 1 + (HUGE_PAGE_PAGES - 1));
    assert!(parent.mmu().query_page(a).huge);
    assert_eq!(read(&mut parent, &frames, a + 10 * P + 10), Ok(byte(10, 3)));
    assert_eq!(read(&mut child, &frames, a + 10 * P), Ok(99));
    check_invariants(&[&parent, &child], &frames);
    // The parent's write: still shared, so it splits and copies too.
    write(&mut parent, &frames, a + 11 * P + 11, 77).unwrap();
    assert_eq!(read(&mut child, &frames, a + 11 * P + 11), Ok(byte(11, 3)));
    check_invariants(&[&parent, &child], &frames);
    // The second huge page: the child exits first, then the parent takes it over.
    drop(child);
    let second = parent.mmu().query_page(a + H).pa;
    assert_eq!(frames.refcount(second), 1);
    assert_eq!(
        parent.handle_fault(VirtAddr(a + H), Access::Write),
        Ok(FaultOutcome::CowTakenOver)
    );
    assert!(parent.mmu().query_page(a + H).huge);
    for i in 0..2 * HUGE_PAGE_PAGES {
        let want = match i {
            11 => 77,
            _ => byte(i, 3),
        };
        assert_eq!(
            read(&mut parent, &frames, a + i * P + i % P),
            Ok(want),
            "page {i}"
        );
    }
    check_invariants(&[&parent], &frames);
    drop(parent);
    assert_eq!(frames.live(), 0);
}

#[test]
fn a_fork_tree_with_writes_everywhere_keeps_every_page() {
    let (frames, mut root, a) = setup(2 * H);
    let pages = 2 * HUGE_PAGE_PAGES;
    for i in 0..pages {
        write(&mut root, &frames, a + i * P, byte(i, 4)).unwrap();
    }
    let mut child = root.fork(SimMmu::new()).unwrap();
    let mut grandchild = child.fork(SimMmu::new()).unwrap();
    for i in (0..pages).step_by(3) {
        write(&mut child, &frames, a + i * P, byte(i, 5)).unwrap();
    }
    for i in (1..pages).step_by(3) {
        write(&mut grandchild, &frames, a + i * P, byte(i, 6)).unwrap();
    }
    s_partial_ops(&mut root, a);
    for i in 0..pages {
        let va = a + i * P;
        let c = if i % 3 == 0 { byte(i, 5) } else { byte(i, 4) };
        let g = if i % 3 == 1 { byte(i, 6) } else { byte(i, 4) };
        assert_eq!(read(&mut child, &frames, va), Ok(c), "child page {i}");
        assert_eq!(
            read(&mut grandchild, &frames, va),
            Ok(g),
            "grandchild page {i}"
        );
        assert_eq!(
            read(&mut root, &frames, va),
            Ok(byte(i, 4)),
            "root page {i}"
        );
    }
    check_invariants(&[&root, &child, &grandchild], &frames);
    drop(child);
    check_invariants(&[&root, &grandchild], &frames);
    drop(root);
    drop(grandchild);
    assert_eq!(frames.live(), 0);
}

/// mprotect back and forth over part of a shared huge page (no data change).
fn s_partial_ops(s: &mut Space, a: usize) {
    s.mprotect(a + H + 7 * P, 2 * P, PROT_READ).unwrap();
    s.mprotect(a + H + 7 * P, 2 * P, RW).unwrap();
}

#[test]
fn mremap_moves_huge_pages_whole_when_aligned_and_splits_them_otherwise() {
    let (frames, mut s, a) = setup(2 * H);
    fill(&mut s, &frames, a, 2 * HUGE_PAGE_PAGES, 7);
    let b = s.mremap(a, 2 * H, 2 * H, MREMAP_MAYMOVE | MREMAP_FIXED, a + 16 * H);
    let b = b.unwrap().addr.0;
    assert!(s.mmu().query_page(b).huge, "moved whole");
    assert_eq!(s.stats().thp_splits, 0);
    verify(&mut s, &frames, b, 2 * HUGE_PAGE_PAGES, 7);
    let c = s.mremap(
        b,
        2 * H,
        2 * H,
        MREMAP_MAYMOVE | MREMAP_FIXED,
        b + 40 * H + 3 * P,
    );
    let c = c.unwrap().addr.0;
    assert!(!s.mmu().query_page(c).huge);
    assert_eq!(s.stats().thp_splits, 2);
    verify(&mut s, &frames, c, 2 * HUGE_PAGE_PAGES, 7);
    check_invariants(&[&s], &frames);
    drop(s);
    assert_eq!(frames.live(), 0);
}

#[test]
fn without_a_free_huge_frame_faults_use_small_pages() {
    let (frames, mut s, a) = setup(2 * H);
    frames.set_limit(HUGE_PAGE_PAGES + 10);
    fill(&mut s, &frames, a, 4, 8);
    assert!(s.mmu().query_page(a).huge);
    write(&mut s, &frames, a + H, 1).unwrap();
    assert!(
        !s.mmu().query_page(a + H).huge,
        "no room for a second huge frame"
    );
    assert_eq!(s.stats().thp_fault_fallback, 1);
    check_invariants(&[&s], &frames);
}

/// A small deterministic PRNG.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// Random writes, reads, partial munmap/mmap, mprotect, MADV_DONTNEED, fork and exit
/// over 8 MiB of huge-page memory in up to three processes, against a model of every
/// page's byte; invariants after every step, no frame left at the end.
#[test]
fn random_operations_on_huge_pages_match_the_model() {
    const PAGES: usize = 4 * HUGE_PAGE_PAGES;
    for seed in 1..=12u64 {
        let (frames, first, a) = setup(PAGES * P);
        let mut rng = Rng(seed * 0x9e37_79b9_7f4a_7c15);
        // Per process: each page's byte, or None when unmapped; and its protection.
        let mut spaces = vec![first];
        let mut models = vec![vec![Some((0u8, RW)); PAGES]];
        for _ in 0..300 {
            let p = rng.below(spaces.len());
            let page = rng.below(PAGES);
            let most = if rng.below(4) == 0 { 700 } else { 16 };
            let n = (1 + rng.below(most)).min(PAGES - page);
            let op = rng.below(10);
            if op == 8 && spaces.len() < 3 {
                let child = spaces[p].fork(SimMmu::new()).unwrap();
                let model = models[p].clone();
                spaces.push(child);
                models.push(model);
                continue;
            }
            if op >= 8 && spaces.len() > 1 {
                spaces.swap_remove(p);
                models.swap_remove(p);
                continue;
            }
            let (s, m) = (&mut spaces[p], &mut models[p]);
            match op {
                0..=3 => {
                    let value = rng.below(255) as u8 + 1;
                    let got = write(s, &frames, a + page * P, value);
                    match m[page] {
                        Some((_, prot)) if prot & PROT_WRITE != 0 => {
                            got.unwrap();
                            m[page] = Some((value, prot));
                        }
                        _ => assert!(got.is_err()),
                    }
                }
                4 => {
                    s.munmap(a + page * P, n * P).unwrap();
                    m[page..page + n].fill(None);
                }
                5 => {
                    s.mmap(a + page * P, n * P, RW, ANON | MAP_FIXED, None, 0)
                        .unwrap();
                    m[page..page + n].fill(Some((0, RW)));
                }
                6 => {
                    let prot = [PROT_READ, RW, PROT_NONE][rng.below(3)];
                    let all = m[page..page + n].iter().all(Option::is_some);
                    let got = s.mprotect(a + page * P, n * P, prot);
                    if all {
                        got.unwrap();
                        for e in m[page..page + n].iter_mut().flatten() {
                            e.1 = prot;
                        }
                    }
                    if !all {
                        // Linux's partial mprotect: the pages before the hole changed.
                        for e in m[page..page + n].iter_mut() {
                            match e {
                                Some(e) => e.1 = prot,
                                None => break,
                            }
                        }
                    }
                }
                7 => {
                    // ENOMEM for a hole, after the mapped parts were dropped.
                    let _ = s.madvise(a + page * P, n * P, MADV_DONTNEED);
                    for e in m[page..page + n].iter_mut().flatten() {
                        e.0 = 0;
                    }
                }
                _ => {
                    for (i, e) in m.iter().enumerate().skip(page).take(n) {
                        let got = read(s, &frames, a + i * P);
                        match *e {
                            Some((v, prot)) if prot != PROT_NONE => assert_eq!(got, Ok(v)),
                            _ => assert!(got.is_err()),
                        }
                    }
                }
            }
            let refs: Vec<&Space> = spaces.iter().collect();
            check_invariants(&refs, &frames);
        }
        for (s, m) in spaces.iter_mut().zip(&models) {
            for (i, e) in m.iter().enumerate() {
                let got = read(s, &frames, a + i * P);
                match e {
                    Some((v, prot)) if *prot != PROT_NONE => {
                        assert_eq!(got, Ok(*v), "seed {seed} page {i}")
                    }
                    _ => assert!(got.is_err()),
                }
            }
        }
        drop(spaces);
        assert_eq!(frames.live(), 0, "seed {seed}: frames leaked");
        let _ = frames.huge_zero_page();
    }
}

#[test]
fn map_hugetlb_maps_whole_huge_pages_now_or_fails_with_enomem() {
    let frames = SimFrames::new();
    frames.enable_huge();
    let mut s = new_space(&frames);
    let a = s
        .mmap(0, 3 * H / 2, RW, ANON | MAP_HUGETLB, None, 0)
        .unwrap()
        .0;
    assert_eq!(a % H, 0);
    assert_eq!(
        s.rss_pages(),
        2 * HUGE_PAGE_PAGES,
        "rounded up to 4 MiB, all mapped"
    );
    assert!(s.mmu().query_page(a + H).huge);
    assert_eq!(read(&mut s, &frames, a + 2 * H - 1), Ok(0));
    check_invariants(&[&s], &frames);
    assert_eq!(
        s.mmap(0, H, RW, MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB, None, 0),
        Err(pagoda_mm::vm::VmError::Inval)
    );
    assert_eq!(
        s.mmap(
            a + 64 * H + P,
            H,
            RW,
            ANON | MAP_HUGETLB | MAP_FIXED,
            None,
            0
        ),
        Err(pagoda_mm::vm::VmError::Inval)
    );
    // Room for one more huge frame only: ENOMEM, and nothing of it stays.
    frames.set_limit(frames.live() + HUGE_PAGE_PAGES);
    let areas = s.area_count();
    assert_eq!(
        s.mmap(0, 2 * H, RW, ANON | MAP_HUGETLB, None, 0),
        Err(pagoda_mm::vm::VmError::NoMem)
    );
    assert_eq!(s.area_count(), areas);
    assert_eq!(s.rss_pages(), 2 * HUGE_PAGE_PAGES);
    check_invariants(&[&s], &frames);
    drop(s);
    assert_eq!(frames.live(), 0);
}

#[test]
fn reclaim_finds_a_huge_leaf_once_and_splits_it_into_ordinary_frames() {
    let (frames, mut s, a) = setup(3 * H);
    fill(&mut s, &frames, a, HUGE_PAGE_PAGES, 1);
    // The second 2 MiB only read (the huge zero page, no one's), the third at 4 KiB.
    read(&mut s, &frames, a + H + 5).unwrap();
    s.madvise(a + 2 * H, H, MADV_NOHUGEPAGE).unwrap();
    write(&mut s, &frames, a + 2 * H, 9).unwrap();
    let mut seen = Vec::new();
    s.private_pages(VirtAddr(0), |va, pa| {
        seen.push((va.0, pa));
        true
    });
    let head = s.mmu().query_page(a).pa;
    assert_eq!(
        seen,
        [(a, head), (a + 2 * H, s.mmu().query_page(a + 2 * H).pa)],
        "the huge leaf once, by its head; the zero pages not at all"
    );
    // What reclaim does with a cold huge frame only this leaf maps: split it, leaving
    // 512 ordinary frames of one reference each under 4 KiB entries.
    assert_eq!(frames.refcount(head), 1);
    s.split_huge_page(VirtAddr(a + 77 * P)).unwrap();
    for i in 0..HUGE_PAGE_PAGES {
        let pte = s.mmu().query_page(a + i * P);
        assert!(!pte.huge);
        assert_eq!(pte.pa.0, head.0 + i * P);
        assert_eq!(frames.refcount(pte.pa), 1, "page {i} counts on its own");
    }
    verify(&mut s, &frames, a, HUGE_PAGE_PAGES, 1);
    assert_eq!(s.stats().thp_splits, 1);
    check_invariants(&[&s], &frames);
    drop(s);
    assert_eq!(frames.live(), 0);
}
