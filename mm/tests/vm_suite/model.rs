//! Random sequences of mmap / munmap / mprotect / madvise / touch / fork / exit / swap-out
//! / mlock / munlock / mremap run against a per-page model of every process (protection, contents
//! and lock), with all invariants and exact reference counts checked along the way, the
//! reverse map checked against a scan of every page table (for each frame, the PTEs the
//! reverse map visits are exactly the PTEs that map it), locks and their counts (`VmLck`,
//! `Mlocked`) exact, a frame any locked page maps never swapped out, and no frame or swap
//! slot leaked at the end.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use pagoda_mm::addr::{PAGE_SIZE, PhysAddr, VirtAddr};
use pagoda_mm::vm::abi::*;
use pagoda_mm::vm::{
    Access, AddressSpace, FaultError, FrameSource, MmapFile, Mmu, Prot, SpaceId, SpaceSet, VmError,
    for_each_mapping, mapped_by_locked_area,
};
use proptest::prelude::*;

use super::sim::{
    SimFile, SimFrames, SimMmu, Space, access, check_invariants, file_byte, new_space,
};

const P: usize = PAGE_SIZE;
/// The window the random operations work in.
const BASE: usize = 0x4000_0000;
const WINDOW: usize = 24;
const FILE_PAGES: usize = 16;
/// The longest file mapping, so that every mapped file page lies inside the file.
const MAX_FILE_MAP: usize = 8;
const MAX_PROCS: usize = 4;
const PROTS: [usize; 6] = [
    PROT_NONE,
    PROT_READ,
    PROT_READ | PROT_WRITE,
    PROT_WRITE,
    PROT_READ | PROT_EXEC,
    PROT_READ | PROT_WRITE | PROT_EXEC,
];

#[derive(Clone, Copy, Debug)]
enum Kind {
    Anon,
    Shared,
    /// A private file mapping starting at this file page.
    File(usize),
}

#[derive(Clone, Debug)]
enum Op {
    Map {
        proc: usize,
        page: usize,
        pages: usize,
        prot: usize,
        kind: Kind,
    },
    MapHint {
        proc: usize,
        page: usize,
        pages: usize,
        prot: usize,
    },
    Unmap {
        proc: usize,
        page: usize,
        pages: usize,
    },
    Protect {
        proc: usize,
        page: usize,
        pages: usize,
        prot: usize,
    },
    Write {
        proc: usize,
        page: usize,
        value: u8,
    },
    Read {
        proc: usize,
        page: usize,
    },
    DontNeed {
        proc: usize,
        page: usize,
        pages: usize,
    },
    Fork {
        proc: usize,
    },
    Exit {
        proc: usize,
    },
    /// Swap out the frame of a private page: every PTE mapping it, found by the reverse
    /// map, becomes a remembered entry for one new slot (unless a locked area maps it:
    /// then nothing happens, as reclaim keeps it).
    SwapOut {
        proc: usize,
        page: usize,
    },
    /// `mremap(MREMAP_MAYMOVE | MREMAP_FIXED)` of a range to another (`MREMAP_DONTUNMAP`
    /// too if `keep`): entries moved, never copied.
    Move {
        proc: usize,
        page: usize,
        pages: usize,
        to: usize,
        keep: bool,
    },
    /// `mlock2(MLOCK_ONFAULT)` (nothing faulted in) or `munlock` of a range.
    Lock {
        proc: usize,
        page: usize,
        pages: usize,
        lock: bool,
    },
}

#[derive(Clone, Copy, Debug)]
enum Content {
    Private {
        value: u8,
        file_offset: Option<usize>,
    },
    Shared {
        obj: usize,
        index: usize,
    },
}

/// The test's spaces as the reverse map sees them.
struct Spaces<'a>(&'a mut [Space]);

impl SpaceSet<SimMmu, Arc<SimFrames>> for Spaces<'_> {
    fn with_space(
        &mut self,
        id: SpaceId,
        f: &mut dyn FnMut(&mut AddressSpace<SimMmu, Arc<SimFrames>>),
    ) {
        if let Some(space) = self.0.iter_mut().find(|s| s.id() == id) {
            f(space);
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Page {
    prot: Prot,
    content: Content,
    /// In a locked area.
    locked: bool,
}

struct World {
    frames: Arc<SimFrames>,
    file: Arc<SimFile>,
    spaces: Vec<Space>,
    models: Vec<BTreeMap<usize, Page>>,
    objects: Vec<Vec<u8>>,
}

fn prot_of(bits: usize) -> Prot {
    Prot::from_bits_truncate(bits as u8)
}

/// The window pages `[page, page + pages)` clipped to the window, as an address range.
fn span(page: usize, pages: usize) -> (usize, usize) {
    let start = page % WINDOW;
    let n = pages.clamp(1, WINDOW - start);
    (BASE + start * P, n)
}

impl World {
    fn new() -> Self {
        let frames = SimFrames::new();
        let file = SimFile::patterned(&frames, FILE_PAGES * P);
        let spaces = vec![new_space(&frames)];
        World {
            frames,
            file,
            spaces,
            models: vec![BTreeMap::new()],
            objects: Vec::new(),
        }
    }

    fn value(&self, page: &Page) -> u8 {
        match page.content {
            Content::Private { value, .. } => value,
            Content::Shared { obj, index } => self.objects[obj][index],
        }
    }

    /// A swapped-out page reads back what it held (the access brings it in).
    fn expected(page: Option<&Page>, kind: Access) -> Result<(), FaultError> {
        Self::allowed(page, kind)
    }

    fn allowed(page: Option<&Page>, kind: Access) -> Result<(), FaultError> {
        let page = page.ok_or(FaultError::Unmapped)?;
        let allowed = match kind {
            Access::Read => page.prot.intersects(Prot::READ | Prot::WRITE),
            Access::Write => page.prot.contains(Prot::WRITE),
            Access::Exec => page.prot.contains(Prot::EXEC),
        };
        if allowed {
            Ok(())
        } else {
            Err(FaultError::AccessDenied)
        }
    }

    fn apply(&mut self, op: &Op) {
        let procs = self.spaces.len();
        match *op {
            Op::Map {
                proc,
                page,
                pages,
                prot,
                kind,
            } => {
                let p = proc % procs;
                let (va, n) = span(page, pages);
                let (flags, fd, offset) = match kind {
                    Kind::Anon => (MAP_PRIVATE | MAP_ANONYMOUS, None, 0),
                    Kind::Shared => (MAP_SHARED | MAP_ANONYMOUS, None, 0),
                    Kind::File(fp) => {
                        let fd = MmapFile {
                            file: Some(self.file.object()),
                            readable: true,
                            writable: false,
                        };
                        (
                            MAP_PRIVATE,
                            Some(fd),
                            (fp % (FILE_PAGES - MAX_FILE_MAP + 1)) * P,
                        )
                    }
                };
                let n = if matches!(kind, Kind::File(_)) {
                    n.min(MAX_FILE_MAP)
                } else {
                    n
                };
                let got = self.spaces[p].mmap(va, n * P, prot, flags | MAP_FIXED, fd, offset);
                assert_eq!(got, Ok(VirtAddr(va)), "{op:?}");
                let obj = self.objects.len();
                if matches!(kind, Kind::Shared) {
                    self.objects.push(vec![0; n]);
                }
                for i in 0..n {
                    let content = match kind {
                        Kind::Anon => Content::Private {
                            value: 0,
                            file_offset: None,
                        },
                        Kind::Shared => Content::Shared { obj, index: i },
                        Kind::File(_) => {
                            let off = offset + i * P;
                            Content::Private {
                                value: file_byte(off),
                                file_offset: Some(off),
                            }
                        }
                    };
                    self.models[p].insert(
                        va + i * P,
                        Page {
                            prot: prot_of(prot),
                            content,
                            locked: false,
                        },
                    );
                }
            }
            Op::MapHint {
                proc,
                page,
                pages,
                prot,
            } => {
                let p = proc % procs;
                let (hint, n) = span(page, pages);
                let got =
                    self.spaces[p].mmap(hint, n * P, prot, MAP_PRIVATE | MAP_ANONYMOUS, None, 0);
                let addr = got.unwrap_or_else(|e| panic!("{op:?}: {e}")).0;
                let model = &mut self.models[p];
                let free = |a: usize| (0..n).all(|i| !model.contains_key(&(a + i * P)));
                assert!(free(addr), "{op:?} placed over a mapping at {addr:#x}");
                if free(hint) {
                    assert_eq!(addr, hint, "{op:?}: free hint not honoured");
                }
                for i in 0..n {
                    let content = Content::Private {
                        value: 0,
                        file_offset: None,
                    };
                    model.insert(
                        addr + i * P,
                        Page {
                            prot: prot_of(prot),
                            content,
                            locked: false,
                        },
                    );
                }
            }
            Op::Unmap { proc, page, pages } => {
                let p = proc % procs;
                let (va, n) = span(page, pages);
                assert_eq!(self.spaces[p].munmap(va, n * P), Ok(()));
                for i in 0..n {
                    self.models[p].remove(&(va + i * P));
                }
            }
            Op::Protect {
                proc,
                page,
                pages,
                prot,
            } => {
                let p = proc % procs;
                let (va, n) = span(page, pages);
                let got = self.spaces[p].mprotect(va, n * P, prot);
                let mut expected = Ok(());
                for i in 0..n {
                    match self.models[p].get_mut(&(va + i * P)) {
                        Some(page) => page.prot = prot_of(prot),
                        None => {
                            expected = Err(VmError::NoMem);
                            break;
                        }
                    }
                }
                assert_eq!(got, expected, "{op:?}");
            }
            Op::Write { proc, page, value } => {
                let p = proc % procs;
                let (va, _) = span(page, 1);
                let value = value.max(1);
                let got = access(&mut self.spaces[p], va, Access::Write)
                    .map(|pa| self.frames.write(pa, value));
                let expected = Self::expected(self.models[p].get(&va), Access::Write);
                assert_eq!(got, expected, "{op:?}");
                if got.is_ok() {
                    match &mut self.models[p].get_mut(&va).unwrap().content {
                        Content::Private { value: v, .. } => *v = value,
                        Content::Shared { obj, index } => self.objects[*obj][*index] = value,
                    }
                }
            }
            Op::Read { proc, page } => {
                let p = proc % procs;
                let (va, _) = span(page, 1);
                self.check_read(p, va);
            }
            Op::DontNeed { proc, page, pages } => {
                let p = proc % procs;
                let (va, n) = span(page, pages);
                let got = self.spaces[p].madvise(va, n * P, MADV_DONTNEED);
                let mut expected = Ok(());
                for i in 0..n {
                    match self.models[p].get_mut(&(va + i * P)) {
                        // The first locked page ends it: EINVAL, the pages before dropped.
                        Some(Page { locked: true, .. }) => {
                            expected = Err(VmError::Inval);
                            break;
                        }
                        Some(Page {
                            content: Content::Private { value, file_offset },
                            ..
                        }) => {
                            *value = file_offset.map_or(0, file_byte);
                        }
                        Some(_) => {}
                        None => expected = Err(VmError::NoMem),
                    }
                }
                assert_eq!(got, expected, "{op:?}");
            }
            Op::Fork { proc } => {
                if procs < MAX_PROCS {
                    let p = proc % procs;
                    let child = self.spaces[p].fork(SimMmu::new()).unwrap();
                    self.spaces.push(child);
                    // Locks are not inherited.
                    let mut model = self.models[p].clone();
                    for page in model.values_mut() {
                        page.locked = false;
                    }
                    self.models.push(model);
                }
            }
            Op::Exit { proc } => {
                if procs > 1 {
                    let p = proc % procs;
                    self.spaces.remove(p);
                    self.models.remove(p);
                }
            }
            Op::SwapOut { proc, page } => {
                let p = proc % procs;
                let (va, _) = span(page, 1);
                self.swap_out(p, va);
            }
            Op::Move {
                proc,
                page,
                pages,
                to,
                keep,
            } => {
                let p = proc % procs;
                let (va, n) = span(page, pages);
                let dst = BASE + (to % (WINDOW - n + 1)) * P;
                let flags = MREMAP_MAYMOVE | MREMAP_FIXED | if keep { MREMAP_DONTUNMAP } else { 0 };
                // The area holding the old range (the model has no areas).
                let area = self.spaces[p].area_containing(VirtAddr(va));
                let got = self.spaces[p].mremap(va, n * P, n * P, flags, dst);
                let expected = match area {
                    None => Err(VmError::Fault),
                    Some(_) if va < dst + n * P && dst < va + n * P => Err(VmError::Inval),
                    Some(area) => {
                        // MREMAP_FIXED unmaps the destination before the old range is
                        // checked against its area.
                        for i in 0..n {
                            self.models[p].remove(&(dst + i * P));
                        }
                        if va + n * P > area.range.end.0 {
                            Err(VmError::Fault)
                        } else {
                            let model = &mut self.models[p];
                            for i in 0..n {
                                let old = model[&(va + i * P)];
                                model.insert(dst + i * P, old);
                                if keep {
                                    // Left mapped, empty and unlocked: fresh pages.
                                    let page = model.get_mut(&(va + i * P)).unwrap();
                                    page.locked = false;
                                    if let Content::Private { value, file_offset } =
                                        &mut page.content
                                    {
                                        *value = file_offset.map_or(0, file_byte);
                                    }
                                } else {
                                    model.remove(&(va + i * P));
                                }
                            }
                            Ok(VirtAddr(dst))
                        }
                    }
                };
                assert_eq!(got.map(|r| r.addr), expected, "{op:?}");
            }
            Op::Lock {
                proc,
                page,
                pages,
                lock,
            } => {
                let p = proc % procs;
                let (va, n) = span(page, pages);
                let got = if lock {
                    self.spaces[p]
                        .mlock(va, n * P, MLOCK_ONFAULT)
                        .map(|r| assert_eq!(r.start, r.end, "{op:?}: nothing to fault in"))
                } else {
                    self.spaces[p].munlock(va, n * P)
                };
                // Up to the first hole, as mprotect: ENOMEM there.
                let mut expected = Ok(());
                for i in 0..n {
                    match self.models[p].get_mut(&(va + i * P)) {
                        Some(page) => page.locked = lock,
                        None => {
                            expected = Err(VmError::NoMem);
                            break;
                        }
                    }
                }
                assert_eq!(got, expected, "{op:?}");
            }
        }
    }

    /// Swaps out the frame process `p` maps at `va`, if it is a private page with a
    /// frame of its own: one slot, one reference per PTE the reverse map finds.
    fn swap_out(&mut self, p: usize, va: usize) {
        let Some(pte) = self.spaces[p].mmu().query(VirtAddr(va)).present() else {
            return;
        };
        let private = matches!(
            self.models[p].get(&va).map(|page| page.content),
            Some(Content::Private { .. })
        );
        if !private || pte.pa == self.frames.zero_page() {
            return;
        }
        let mut mappers = Vec::new();
        for_each_mapping(
            &self.frames,
            pte.pa,
            &mut Spaces(&mut self.spaces),
            |s, va, _| mappers.push((s.id(), va.0)),
        );
        assert!(mappers.contains(&(self.spaces[p].id(), va)));
        // Reclaim's question, against the model: does a locked page map the frame?
        let locked = mappers.iter().any(|&(id, va)| {
            let q = self.spaces.iter().position(|s| s.id() == id).unwrap();
            self.models[q][&va].locked
        });
        let asked = mapped_by_locked_area(&self.frames, pte.pa, &mut Spaces(&mut self.spaces));
        assert_eq!(asked, locked, "frame at {va:#x} of process {p}");
        if locked {
            return;
        }
        let entry = self.frames.new_slot(mappers.len());
        self.frames.save_to_slot(entry, pte.pa);
        let mut done = 0;
        for_each_mapping(
            &self.frames,
            pte.pa,
            &mut Spaces(&mut self.spaces),
            |s, va, _| {
                assert_eq!(s.remember_page(va, entry), Ok(pte.pa));
                done += 1;
            },
        );
        assert_eq!(done, mappers.len());
        assert_eq!(self.frames.slot_refs(entry), mappers.len());
        // The models keep each page's value: a later access must read it back.
        for (id, va) in mappers {
            let q = self.spaces.iter().position(|s| s.id() == id).unwrap();
            assert!(matches!(
                self.models[q][&va].content,
                Content::Private { .. }
            ));
        }
    }

    /// For every frame, the PTEs the reverse map visits are exactly those that map it.
    fn check_rmap(&mut self) {
        let zero = self.frames.zero_page();
        let mut expected: BTreeMap<usize, BTreeSet<(SpaceId, usize)>> = BTreeMap::new();
        for space in &self.spaces {
            for (va, pte) in space.mmu().ptes() {
                if pte.pa != zero {
                    expected
                        .entry(pte.pa.0)
                        .or_default()
                        .insert((space.id(), va));
                }
            }
        }
        for (pa, want) in expected {
            let mut got = BTreeSet::new();
            for_each_mapping(
                &self.frames,
                PhysAddr(pa),
                &mut Spaces(&mut self.spaces),
                |s, va, pte| {
                    assert_eq!(pte.pa.0, pa);
                    assert!(got.insert((s.id(), va.0)), "visited twice");
                },
            );
            assert_eq!(got, want, "reverse map of frame {pa:#x}");
        }
    }

    fn check_read(&mut self, p: usize, va: usize) {
        let got = access(&mut self.spaces[p], va, Access::Read).map(|pa| self.frames.read(pa));
        let page = self.models[p].get(&va).copied();
        let expected =
            Self::expected(page.as_ref(), Access::Read).map(|()| self.value(&page.unwrap()));
        assert_eq!(got, expected, "read of {va:#x} in process {p}");
    }

    fn check(&mut self) {
        let spaces: Vec<&Space> = self.spaces.iter().collect();
        check_invariants(&spaces, &self.frames);
        self.check_rmap();
        self.check_locks();
    }

    /// Every page is locked as the model says, and the counts are exact: `VmLck` (locked
    /// pages, present or not) and `Mlocked` (locked pages with a frame).
    fn check_locks(&self) {
        let zero = self.frames.zero_page();
        for (space, model) in self.spaces.iter().zip(&self.models) {
            let mut locked = 0;
            for (&va, page) in model {
                assert_eq!(
                    space.is_locked(VirtAddr(va)),
                    page.locked,
                    "lock at {va:#x}"
                );
                locked += usize::from(page.locked);
            }
            assert_eq!(space.locked_bytes(), locked * P, "VmLck");
            let resident = space
                .mmu()
                .ptes()
                .into_iter()
                .filter(|(va, pte)| pte.pa != zero && model[va].locked)
                .count();
            assert_eq!(space.locked_resident_pages(), resident, "Mlocked");
        }
    }

    /// Reads every modelled page of every process, then drops everything: no frame may
    /// remain.
    fn finish(mut self) {
        for p in 0..self.spaces.len() {
            let pages: Vec<usize> = self.models[p].keys().copied().collect();
            for va in pages {
                self.check_read(p, va);
            }
        }
        self.check();
        self.spaces.clear();
        assert_eq!(self.frames.live(), 0, "frames leaked");
        assert_eq!(self.frames.live_slots(), 0, "swap slots leaked");
    }
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let page = 0..WINDOW;
    let pages = 1..8usize;
    let prot = prop::sample::select(PROTS.to_vec());
    let proc = 0..MAX_PROCS;
    let kind = prop_oneof![
        Just(Kind::Anon),
        Just(Kind::Shared),
        (0..FILE_PAGES).prop_map(Kind::File)
    ];
    prop_oneof![
        4 => (proc.clone(), page.clone(), pages.clone(), prot.clone(), kind)
            .prop_map(|(proc, page, pages, prot, kind)| Op::Map { proc, page, pages, prot, kind }),
        1 => (proc.clone(), page.clone(), pages.clone(), prot.clone())
            .prop_map(|(proc, page, pages, prot)| Op::MapHint { proc, page, pages, prot }),
        2 => (proc.clone(), page.clone(), pages.clone())
            .prop_map(|(proc, page, pages)| Op::Unmap { proc, page, pages }),
        3 => (proc.clone(), page.clone(), pages.clone(), prot)
            .prop_map(|(proc, page, pages, prot)| Op::Protect { proc, page, pages, prot }),
        6 => (proc.clone(), page.clone(), any::<u8>())
            .prop_map(|(proc, page, value)| Op::Write { proc, page, value }),
        4 => (proc.clone(), page.clone()).prop_map(|(proc, page)| Op::Read { proc, page }),
        1 => (proc.clone(), page, pages).prop_map(|(proc, page, pages)| Op::DontNeed { proc, page, pages }),
        2 => proc.clone().prop_map(|proc| Op::Fork { proc }),
        1 => proc.clone().prop_map(|proc| Op::Exit { proc }),
        2 => (proc.clone(), 0..WINDOW).prop_map(|(proc, page)| Op::SwapOut { proc, page }),
        1 => (proc.clone(), 0..WINDOW, 1..8usize, any::<bool>())
            .prop_map(|(proc, page, pages, lock)| Op::Lock { proc, page, pages, lock }),
        2 => (proc, 0..WINDOW, 1..8usize, 0..WINDOW, any::<bool>())
            .prop_map(|(proc, page, pages, to, keep)| Op::Move { proc, page, pages, to, keep }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(crate::cases::cases(128)))]

    #[test]
    fn random_operations_match_the_model(ops in prop::collection::vec(op_strategy(), 1..80)) {
        let mut world = World::new();
        for op in &ops {
            world.apply(op);
            world.check();
        }
        world.finish();
    }
}

/// A small deterministic PRNG for the stress test.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 as usize
    }

    fn below(&mut self, n: usize) -> usize {
        self.next() % n
    }
}

fn random_op(rng: &mut XorShift) -> Op {
    let proc = rng.below(MAX_PROCS);
    let page = rng.below(WINDOW);
    let pages = 1 + rng.below(7);
    let prot = PROTS[rng.below(PROTS.len())];
    match rng.below(30) {
        0..=3 => {
            let kind = match rng.below(3) {
                0 => Kind::Anon,
                1 => Kind::Shared,
                _ => Kind::File(rng.below(FILE_PAGES)),
            };
            Op::Map {
                proc,
                page,
                pages,
                prot,
                kind,
            }
        }
        4 => Op::MapHint {
            proc,
            page,
            pages,
            prot,
        },
        5..=6 => Op::Unmap { proc, page, pages },
        7..=9 => Op::Protect {
            proc,
            page,
            pages,
            prot,
        },
        10..=15 => Op::Write {
            proc,
            page,
            value: rng.next() as u8,
        },
        16..=19 => Op::Read { proc, page },
        20 => Op::DontNeed { proc, page, pages },
        21..=22 => Op::Fork { proc },
        23..=24 => Op::SwapOut { proc, page },
        25..=26 => Op::Lock {
            proc,
            page,
            pages,
            lock: rng.below(3) != 0,
        },
        27..=28 => Op::Move {
            proc,
            page,
            pages,
            to: rng.below(WINDOW),
            keep: rng.below(4) == 0,
        },
        _ => Op::Exit { proc },
    }
}

#[test]
fn stress_ten_thousand_operations() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut world = World::new();
    for i in 0..10_000 {
        let op = random_op(&mut rng);
        world.apply(&op);
        if i % 16 == 0 {
            world.check();
        }
    }
    world.finish();
}
