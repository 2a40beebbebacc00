//! Simulated hardware for the vm layer: a frame pool with reference counts and real
//! contents, the page table under test ([`Table`]) with harts whose TLBs keep
//! translations until flushed, a CPU that accesses memory through them, and an in-memory
//! file.
//!
//! The simulation is strict: using a freed frame, counting the zero page, or writing the
//! zero page panics, so a policy bug shows up at the first wrong step.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use pagoda_mm::addr::{PAGE_SIZE, PhysAddr, VirtAddr, VirtRange};
use pagoda_mm::layout::{HUGE_PAGE_PAGES, HUGE_PAGE_SIZE, USER_END};
use pagoda_mm::vm::{
    Access, AddressSpace, AreaKind, CopyPte, FaultError, FaultOutcome, FrameSource, IoError,
    MemObject, Mmu, OutOfMemory, PagePerms, Prot, PteInfo, PteState, SwapEntry, TlbFlush, VmConfig,
    VmFile,
};

use super::Table;
use crate::harts::{SimHarts, Table as _};

/// The address space type every test uses.
pub type Space = AddressSpace<SimMmu, Arc<SimFrames>>;

const FIRST_PFN: usize = 0x8_0000;
const ZERO_PA: usize = 0x1000;
/// The huge zero page: 2 MiB below the first frame, never allocated.
const HUGE_ZERO_PA: usize = 0x20_0000;

struct Frame {
    refs: usize,
    owner: u64,
    data: Box<[u8; PAGE_SIZE]>,
    /// A page of a huge frame other than its first: the first's frame number (which
    /// holds the count and the owner).
    head: Option<usize>,
}

struct Pool {
    frames: HashMap<usize, Frame>,
    next_pfn: usize,
    free_pfns: Vec<usize>,
    limit: usize,
    /// Huge frames are handed out ([`SimFrames::enable_huge`]).
    huge: bool,
}

/// Called with each frame as it is freed.
type FreeHook = Box<dyn Fn(PhysAddr) + Send>;

/// A frame pool: reference counts, contents, a limit to provoke out-of-memory; and swap
/// slots with their reference counts (the slots hold no contents: nothing swaps in yet).
pub struct SimFrames {
    pool: Mutex<Pool>,
    on_free: Mutex<Option<FreeHook>>,
    slots: Mutex<(u64, HashMap<SwapEntry, usize>)>,
    /// What each swap slot holds (written by `save_to_slot`), as a disk would.
    contents: Mutex<HashMap<SwapEntry, Box<[u8; PAGE_SIZE]>>>,
}

impl SimFrames {
    /// The pool, also after a test's expected panic poisoned its lock (the space's
    /// teardown during the unwinding must not panic again).
    fn pool(&self) -> std::sync::MutexGuard<'_, Pool> {
        self.pool
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn new() -> Arc<Self> {
        Arc::new(SimFrames {
            pool: Mutex::new(Pool {
                frames: HashMap::new(),
                next_pfn: FIRST_PFN,
                free_pfns: Vec::new(),
                limit: usize::MAX,
                huge: false,
            }),
            on_free: Mutex::new(None),
            slots: Mutex::new((0, HashMap::new())),
            contents: Mutex::new(HashMap::new()),
        })
    }

    /// Writes the frame at `pa` to the slot of `entry` (a swap-out's write).
    pub fn save_to_slot(&self, entry: SwapEntry, pa: PhysAddr) {
        let pool = self.pool();
        let data = pool
            .frames
            .get(&Self::frame_index(pa))
            .expect("save of a free frame")
            .data
            .clone();
        self.contents.lock().unwrap().insert(entry, data);
    }

    /// Reads the slot of `entry` into a new frame with owner word `owner` (a swap-in's
    /// read); the caller holds the frame's one reference.
    pub fn read_slot(&self, entry: SwapEntry, owner: u64) -> Result<PhysAddr, OutOfMemory> {
        let data = self
            .contents
            .lock()
            .unwrap()
            .get(&entry)
            .expect("read of a slot never written")
            .clone();
        let pa = self.alloc(0, owner)?;
        self.pool()
            .frames
            .get_mut(&Self::frame_index(pa))
            .unwrap()
            .data = data;
        Ok(pa)
    }

    /// A new swap slot with `refs` references.
    pub fn new_slot(&self, refs: usize) -> SwapEntry {
        let mut slots = self.slots.lock().unwrap();
        slots.0 += 1;
        let entry = SwapEntry::new((slots.0 % 3) as u8, slots.0).unwrap();
        slots.1.insert(entry, refs);
        entry
    }

    /// The references of a live swap slot (0: free).
    pub fn slot_refs(&self, entry: SwapEntry) -> usize {
        self.slots
            .lock()
            .unwrap()
            .1
            .get(&entry)
            .copied()
            .unwrap_or(0)
    }

    /// Drops one reference of a slot the test made and did not hand over.
    pub fn drop_slot(&self, entry: SwapEntry) {
        FrameSource::drop_remembered(self, entry);
    }

    /// Swap slots in use.
    pub fn live_slots(&self) -> usize {
        self.slots.lock().unwrap().1.len()
    }

    /// Frames currently allocated (the zero page excluded).
    pub fn live(&self) -> usize {
        self.pool().frames.len()
    }

    /// Calls `hook` with every frame freed from now on (to check who may still reach it).
    pub fn on_free(&self, hook: impl Fn(PhysAddr) + Send + 'static) {
        *self.on_free.lock().unwrap() = Some(Box::new(hook));
    }

    /// Allows at most `limit` live frames; allocations beyond fail.
    pub fn set_limit(&self, limit: usize) {
        self.pool().limit = limit;
    }

    pub fn read(&self, pa: usize) -> u8 {
        if pa & !(PAGE_SIZE - 1) == ZERO_PA
            || (HUGE_ZERO_PA..HUGE_ZERO_PA + HUGE_PAGE_SIZE).contains(&pa)
        {
            return 0;
        }
        let pool = self.pool();
        let frame = pool
            .frames
            .get(&(pa / PAGE_SIZE))
            .expect("read of a free frame");
        frame.data[pa % PAGE_SIZE]
    }

    pub fn write(&self, pa: usize, value: u8) {
        assert_ne!(pa & !(PAGE_SIZE - 1), ZERO_PA, "write to the zero page");
        assert!(
            !(HUGE_ZERO_PA..HUGE_ZERO_PA + HUGE_PAGE_SIZE).contains(&pa),
            "write to the huge zero page"
        );
        let mut pool = self.pool();
        let frame = pool
            .frames
            .get_mut(&(pa / PAGE_SIZE))
            .expect("write to a free frame");
        frame.data[pa % PAGE_SIZE] = value;
    }

    fn alloc(&self, fill: u8, owner: u64) -> Result<PhysAddr, OutOfMemory> {
        let mut pool = self.pool();
        if pool.frames.len() >= pool.limit {
            return Err(OutOfMemory);
        }
        let pfn = match pool.free_pfns.pop() {
            Some(pfn) => pfn,
            None => {
                pool.next_pfn += 1;
                pool.next_pfn - 1
            }
        };
        let frame = Frame {
            refs: 1,
            owner,
            data: Box::new([fill; PAGE_SIZE]),
            head: None,
        };
        pool.frames.insert(pfn, frame);
        Ok(PhysAddr(pfn * PAGE_SIZE))
    }

    fn frame_index(pa: PhysAddr) -> usize {
        assert_ne!(pa.0, ZERO_PA, "the zero page is never reference counted");
        assert!(
            !(HUGE_ZERO_PA..HUGE_ZERO_PA + HUGE_PAGE_SIZE).contains(&pa.0),
            "the huge zero page is never reference counted"
        );
        assert!(pa.is_page_aligned());
        pa.0 / PAGE_SIZE
    }

    /// The frame that counts references for the frame at `pa`: the first of its huge
    /// frame, or itself.
    fn counting(pool: &Pool, pa: PhysAddr) -> usize {
        let pfn = Self::frame_index(pa);
        pool.frames
            .get(&pfn)
            .unwrap_or_else(|| panic!("frame {:#x} is free", pa.0))
            .head
            .unwrap_or(pfn)
    }

    /// The frame holding the reference count of the frame at `pa` (the first of its
    /// huge frame, or itself).
    pub fn counting_frame(&self, pa: PhysAddr) -> PhysAddr {
        PhysAddr(Self::counting(&self.pool(), pa) * PAGE_SIZE)
    }

    /// From now on `alloc_huge` hands out huge frames (512 frames, 2 MiB aligned).
    #[allow(
        dead_code,
        reason = "the huge-page tests run over the Sv39 table only (the map has no 2 MiB leaves)"
    )]
    pub fn enable_huge(&self) {
        self.pool().huge = true;
    }
}

impl FrameSource for SimFrames {
    fn alloc_zeroed(&self, owner: u64) -> Result<PhysAddr, OutOfMemory> {
        self.alloc(0, owner)
    }

    fn alloc_uninit(&self, owner: u64) -> Result<PhysAddr, OutOfMemory> {
        // Garbage, so that a page the policy forgets to fill is noticed.
        self.alloc(0xa5, owner)
    }

    fn copy_frame(&self, dst: PhysAddr, src: PhysAddr) {
        let mut pool = self.pool();
        let data = *pool
            .frames
            .get(&Self::frame_index(src))
            .expect("copy from a free frame")
            .data;
        *pool
            .frames
            .get_mut(&Self::frame_index(dst))
            .expect("copy to a free frame")
            .data = data;
    }

    fn get(&self, pa: PhysAddr) {
        let mut pool = self.pool();
        let pfn = Self::counting(&pool, pa);
        pool.frames.get_mut(&pfn).expect("get on a free frame").refs += 1;
    }

    fn put(&self, pa: PhysAddr) -> bool {
        let mut pool = self.pool();
        let pfn = Self::counting(&pool, pa);
        let frame = pool.frames.get_mut(&pfn).expect("put on a free frame");
        frame.refs -= 1;
        if frame.refs != 0 {
            return false;
        }
        let huge = pool
            .frames
            .get(&(pfn + 1))
            .is_some_and(|f| f.head == Some(pfn));
        let freed: Vec<usize> = if huge {
            (pfn..pfn + HUGE_PAGE_PAGES).collect()
        } else {
            vec![pfn]
        };
        for &f in &freed {
            pool.frames.remove(&f);
            if !huge {
                pool.free_pfns.push(f);
            }
        }
        drop(pool);
        if let Some(hook) = &*self.on_free.lock().unwrap() {
            for f in freed {
                hook(PhysAddr(f * PAGE_SIZE));
            }
        }
        true
    }

    fn refcount(&self, pa: PhysAddr) -> usize {
        let pool = self.pool();
        let pfn = Self::counting(&pool, pa);
        pool.frames
            .get(&pfn)
            .expect("refcount of a free frame")
            .refs
    }

    fn alloc_huge(&self, owner: u64, zeroed: bool) -> Result<PhysAddr, OutOfMemory> {
        let mut pool = self.pool();
        if !pool.huge || pool.frames.len() + HUGE_PAGE_PAGES > pool.limit {
            return Err(OutOfMemory);
        }
        // Aligned, from fresh frame numbers (freed huge frames are not reused).
        let head = pool.next_pfn.next_multiple_of(HUGE_PAGE_PAGES);
        pool.next_pfn = head + HUGE_PAGE_PAGES;
        for i in 0..HUGE_PAGE_PAGES {
            let frame = Frame {
                refs: usize::from(i == 0),
                owner: if i == 0 { owner } else { 0 },
                data: Box::new([if zeroed { 0 } else { 0xa5 }; PAGE_SIZE]),
                head: (i != 0).then_some(head),
            };
            pool.frames.insert(head + i, frame);
        }
        Ok(PhysAddr(head * PAGE_SIZE))
    }

    fn huge_zero_page(&self) -> Option<PhysAddr> {
        self.pool().huge.then_some(PhysAddr(HUGE_ZERO_PA))
    }

    fn split_huge(&self, head: PhysAddr) {
        let mut pool = self.pool();
        let pfn = Self::frame_index(head);
        let first = pool.frames.get(&pfn).expect("split of a free frame");
        assert_eq!(first.refs, 1, "split of a shared huge frame");
        assert!(first.head.is_none(), "split of a page inside a huge frame");
        let owner = first.owner;
        for i in 1..HUGE_PAGE_PAGES {
            let frame = pool
                .frames
                .get_mut(&(pfn + i))
                .expect("a page of the huge frame");
            assert_eq!(frame.head, Some(pfn), "not a huge frame");
            frame.head = None;
            frame.refs = 1;
            frame.owner = owner + i as u64;
        }
    }

    fn zero_page(&self) -> PhysAddr {
        PhysAddr(ZERO_PA)
    }

    fn owner(&self, pa: PhysAddr) -> u64 {
        let pool = self.pool();
        let pfn = Self::frame_index(pa);
        let head = Self::counting(&pool, pa);
        pool.frames.get(&head).expect("owner of a free frame").owner + (pfn - head) as u64
    }

    /// The simulation has no swap cache: nothing else can let go.
    fn take_exclusive(&self, _: PhysAddr) -> bool {
        false
    }

    fn dup_remembered(&self, entry: SwapEntry) {
        *self
            .slots
            .lock()
            .unwrap()
            .1
            .get_mut(&entry)
            .expect("dup of a free swap slot") += 1;
    }

    fn drop_remembered(&self, entry: SwapEntry) {
        let mut slots = self.slots.lock().unwrap();
        let refs = slots.1.get_mut(&entry).expect("drop of a free swap slot");
        *refs -= 1;
        if *refs == 0 {
            slots.1.remove(&entry);
            self.contents.lock().unwrap().remove(&entry);
        }
    }
}

pub use crate::harts::Flush;

/// The page table under test ([`Table`]: the simulated map or the real Sv39 table), the
/// harts that run the space with their TLBs, and a budget to provoke out-of-memory.
pub struct SimMmu {
    table: Mutex<Table>,
    harts: SimHarts,
    /// How many more PTEs may be created before `map` reports out of memory.
    map_budget: Mutex<Option<usize>>,
}

impl SimMmu {
    pub fn new() -> Self {
        SimMmu::on_harts(1)
    }

    /// A table run by `harts` harts (the test runs on hart 0 first).
    pub fn on_harts(harts: usize) -> Self {
        let harts = SimHarts::new(harts);
        SimMmu {
            table: Mutex::new(Table::create(harts.clone())),
            harts,
            map_budget: Mutex::new(None),
        }
    }

    /// A page table that can create only `budget` PTEs (page-table pages run out).
    pub fn with_map_budget(budget: usize) -> Self {
        let mmu = SimMmu::new();
        *mmu.map_budget.lock().unwrap() = Some(budget);
        mmu
    }

    pub fn set_map_budget(&self, budget: Option<usize>) {
        *self.map_budget.lock().unwrap() = budget;
    }

    /// The simulated harts.
    pub fn harts(&self) -> &SimHarts {
        &self.harts
    }

    /// Makes `hart` the one the test runs on (it starts running the space).
    pub fn run_on(&self, hart: usize) {
        self.table().activate(hart);
        self.harts.set_current(hart);
        self.harts.set_running(hart, true);
    }

    /// `hart` switches to another space (it keeps what its TLB holds of this one).
    pub fn leave(&self, hart: usize) {
        self.table().leave(hart);
        self.harts.set_running(hart, false);
    }

    /// Every PTE, in address order (a 2 MiB leaf once, at its first address).
    pub fn ptes(&self) -> Vec<(usize, PteInfo)> {
        let mut all = Vec::new();
        let mut from = VirtAddr(0);
        while let Some((va, pte)) = self.table().next_mapped(from, USER_END) {
            all.push((va.0, pte));
            from = VirtAddr(va.0 + if pte.huge { HUGE_PAGE_SIZE } else { PAGE_SIZE });
        }
        all
    }

    /// The PTE of a page that must be mapped.
    pub fn query_page(&self, va: usize) -> PteInfo {
        self.table()
            .query(VirtAddr(va))
            .present()
            .unwrap_or_else(|| panic!("{va:#x} not mapped"))
    }

    /// Takes the flush requests received so far.
    pub fn take_flushes(&self) -> Vec<Flush> {
        self.harts.take_log()
    }

    /// What a lower layer (dirty tracking) might do: clear write permission behind the
    /// policy layer's back.
    pub fn clear_write_behind_back(&self, va: usize) {
        let pte = self.query_page(va);
        self.table().protect(
            VirtAddr(va),
            pte.flags.difference(PagePerms::WRITE),
            pte.cow,
        );
        self.harts.drop_everywhere(Some(&[va]));
    }

    /// A local `sfence.vma` of one page (what the kernel does on a spurious fault).
    pub fn local_flush(&self, va: usize) {
        let page = va & !(PAGE_SIZE - 1);
        self.harts.drop_on(self.harts.current(), Some(&[page]));
    }

    /// The hardware: translate through the current hart's TLB, else walk the table and
    /// fill the TLB. `None` means a page fault.
    pub fn translate(&self, va: usize, access: Access) -> Option<usize> {
        let page = va & !(PAGE_SIZE - 1);
        let need = match access {
            Access::Read => PagePerms::READ,
            Access::Write => PagePerms::WRITE,
            Access::Exec => PagePerms::EXEC,
        };
        let hart = self.harts.current();
        if let Some((pa, flags)) = self.harts.cached(hart, page) {
            return flags.contains(need).then_some(pa.0 + va % PAGE_SIZE);
        }
        let pte = self.table().query(VirtAddr(page)).present()?;
        if !pte.flags.contains(need | PagePerms::USER) {
            return None;
        }
        self.harts.fill(hart, page, (pte.pa, pte.flags), pte.huge);
        Some(pte.pa.0 + va % PAGE_SIZE)
    }

    /// Every translation a hart running the space caches must be no more than its PTE
    /// allows, to the same frame: otherwise a flush was missing. (A hart that switched
    /// away holds dead entries: it flushes them before it returns.)
    pub fn assert_tlb_coherent(&self) {
        for (hart, va, pa, flags) in self.harts.entries() {
            if !self.harts.is_running(hart) {
                continue;
            }
            let pte = self
                .table()
                .query(VirtAddr(va))
                .present()
                .unwrap_or_else(|| panic!("stale TLB entry of hart {hart} for unmapped {va:#x}"));
            assert_eq!(
                pte.pa, pa,
                "stale TLB entry of hart {hart} for remapped {va:#x}"
            );
            assert!(
                pte.flags.contains(flags),
                "stale TLB rights of hart {hart} at {va:#x}: {flags:?} vs {:?}",
                pte.flags
            );
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap()
    }

    fn table_mut(&mut self) -> &mut Table {
        self.table.get_mut().unwrap()
    }

    /// Takes one PTE of the budget, if `va` has none yet; `false` when none is left.
    fn take_budget(&self, va: VirtAddr) -> bool {
        let mut budget = self.map_budget.lock().unwrap();
        match budget.as_mut() {
            Some(left) if self.table().query(va) == PteState::Absent => {
                let ok = *left > 0;
                *left = left.saturating_sub(1);
                ok
            }
            _ => true,
        }
    }
}

impl Drop for SimMmu {
    /// A page table is dropped with its space, after teardown removed every PTE: any
    /// translation still cached would be a missing flush, any table page left a leak.
    fn drop(&mut self) {
        if !std::thread::panicking() {
            assert!(self.ptes().is_empty(), "page table dropped with PTEs");
            let mut remembered = 0;
            self.table_mut()
                .remembered_range(VirtAddr(0), USER_END, false, |_, _| remembered += 1);
            assert_eq!(remembered, 0, "page table dropped with remembered entries");
            assert!(
                self.harts
                    .entries()
                    .iter()
                    .all(|e| !self.harts.is_running(e.0)),
                "page table dropped with cached translations"
            );
            assert_eq!(
                self.table().tables_below_root(),
                0,
                "page table dropped with table pages"
            );
        }
    }
}

impl Mmu for SimMmu {
    fn map(
        &mut self,
        va: VirtAddr,
        pa: PhysAddr,
        flags: PagePerms,
        cow: bool,
    ) -> Result<(), OutOfMemory> {
        if !self.take_budget(va) {
            return Err(OutOfMemory);
        }
        self.table_mut().map(va, pa, flags, cow)
    }

    fn unmap(&mut self, va: VirtAddr) -> Option<PhysAddr> {
        self.table_mut().unmap(va)
    }

    fn map_huge(
        &mut self,
        va: VirtAddr,
        pa: PhysAddr,
        flags: PagePerms,
        cow: bool,
    ) -> Result<bool, OutOfMemory> {
        if !self.take_budget(va) {
            return Err(OutOfMemory);
        }
        self.table_mut().map_huge(va, pa, flags, cow)
    }

    fn huge_slot_free(&self, va: VirtAddr) -> bool {
        self.table().huge_slot_free(va)
    }

    fn split_huge(&mut self, va: VirtAddr) -> Result<(), OutOfMemory> {
        self.table_mut().split_huge(va)
    }

    fn protect(&mut self, va: VirtAddr, flags: PagePerms, cow: bool) {
        assert!(!flags.contains(PagePerms::WRITE) || flags.contains(PagePerms::READ));
        self.table_mut().protect(va, flags, cow)
    }

    fn query(&self, va: VirtAddr) -> PteState {
        self.table().query(va)
    }

    fn take_accessed(&mut self, va: VirtAddr) -> bool {
        self.table_mut().take_accessed(va)
    }

    fn remember(&mut self, va: VirtAddr, entry: SwapEntry) -> Result<Option<PteInfo>, OutOfMemory> {
        self.table_mut().remember(va, entry)
    }

    fn remembered_range(
        &mut self,
        start: VirtAddr,
        end: VirtAddr,
        take: bool,
        f: impl FnMut(VirtAddr, SwapEntry),
    ) {
        self.table_mut().remembered_range(start, end, take, f)
    }

    fn next_mapped(&self, from: VirtAddr, end: VirtAddr) -> Option<(VirtAddr, PteInfo)> {
        self.table().next_mapped(from, end)
    }

    fn update_range(
        &mut self,
        start: VirtAddr,
        end: VirtAddr,
        f: impl FnMut(VirtAddr, PteInfo) -> Option<(PagePerms, bool)>,
    ) {
        self.table_mut().update_range(start, end, f)
    }

    fn teardown(&mut self, f: impl FnMut(VirtAddr, PteInfo)) {
        self.table_mut().teardown(f)
    }

    /// The table's own copy, or, when the child has a budget, one [`map`](Self::map) per
    /// PTE so that the budget can run out in the middle.
    fn copy_range(
        &mut self,
        child: &mut Self,
        start: VirtAddr,
        end: VirtAddr,
        mut f: impl FnMut(VirtAddr, PteInfo) -> Option<CopyPte>,
        mut undo: impl FnMut(VirtAddr, &CopyPte),
    ) -> Result<(), OutOfMemory> {
        if child.map_budget.lock().unwrap().is_none() {
            let table = child.table.get_mut().unwrap();
            return self.table_mut().copy_range(table, start, end, f, undo);
        }
        let mut result = Ok(());
        self.table_mut().update_range(start, end, |va, pte| {
            if result.is_err() {
                return None;
            }
            let c = f(va, pte)?;
            let (pa, flags, cow) = c.child;
            match child.map(va, pa, flags, cow) {
                Ok(()) => c.parent,
                Err(e) => {
                    undo(va, &c);
                    result = Err(e);
                    None
                }
            }
        });
        result
    }

    fn unmap_range(&mut self, start: VirtAddr, end: VirtAddr, f: impl FnMut(VirtAddr, PteInfo)) {
        self.table_mut().unmap_range(start, end, f)
    }
}

impl TlbFlush for SimMmu {
    fn flush_page(&mut self, va: VirtAddr) {
        self.table_mut().flush_page(va)
    }

    fn flush_range(&mut self, range: VirtRange) {
        self.table_mut().flush_range(range)
    }

    fn flush_all(&mut self) {
        self.table_mut().flush_all()
    }
}

/// A read-only in-memory file that fills frames of a [`SimFrames`] pool.
pub struct SimFile {
    data: Vec<u8>,
    frames: Arc<SimFrames>,
    fail: AtomicBool,
    /// The file's memory object while something maps it (as the kernel keeps one).
    object: Mutex<std::sync::Weak<MemObject>>,
}

impl SimFile {
    pub fn new(frames: &Arc<SimFrames>, data: Vec<u8>) -> Arc<Self> {
        Arc::new(SimFile {
            data,
            frames: frames.clone(),
            fail: AtomicBool::new(false),
            object: Mutex::new(std::sync::Weak::new()),
        })
    }

    /// The file's memory object: the same one for every mapping while any exists.
    pub fn object(self: &Arc<Self>) -> Arc<MemObject> {
        let mut slot = self.object.lock().unwrap();
        if let Some(obj) = slot.upgrade() {
            return obj;
        }
        let obj = MemObject::file(self.clone()).expect("object slot");
        *slot = Arc::downgrade(&obj);
        obj
    }

    /// A file of `len` bytes whose byte `i` is [`file_byte`]`(i)`.
    pub fn patterned(frames: &Arc<SimFrames>, len: usize) -> Arc<Self> {
        SimFile::new(frames, (0..len).map(file_byte).collect())
    }

    pub fn set_failing(&self, fail: bool) {
        self.fail.store(fail, Ordering::Relaxed);
    }
}

/// The contents of [`SimFile::patterned`] files at offset `i`.
pub fn file_byte(i: usize) -> u8 {
    (i.wrapping_mul(31) % 251 + 1) as u8
}

impl VmFile for SimFile {
    fn size(&self) -> u64 {
        self.data.len() as u64
    }

    fn read_page(&self, offset: u64, len: usize, dst: PhysAddr) -> Result<(), IoError> {
        assert!(len <= PAGE_SIZE && (offset as usize).is_multiple_of(PAGE_SIZE));
        if self.fail.load(Ordering::Relaxed) {
            return Err(IoError);
        }
        for i in 0..PAGE_SIZE {
            let at = offset as usize + i;
            let byte = if i < len && at < self.data.len() {
                self.data[at]
            } else {
                0
            };
            self.frames.write(dst.0 + i, byte);
        }
        Ok(())
    }
}

// ---- the CPU -----------------------------------------------------------------------

pub fn new_space(frames: &Arc<SimFrames>) -> Space {
    new_space_with(frames, VmConfig::LINUX_DEFAULT)
}

pub fn new_space_with(frames: &Arc<SimFrames>, config: VmConfig) -> Space {
    AddressSpace::new(SimMmu::new(), frames.clone(), config)
}

/// Performs one user access like a hart: TLB, walk, fault, retry.
pub fn access(space: &mut Space, va: usize, kind: Access) -> Result<usize, FaultError> {
    for _ in 0..4 {
        if let Some(pa) = space.mmu().translate(va, kind) {
            return Ok(pa);
        }
        let outcome = match space.handle_fault(VirtAddr(va), kind) {
            Err(FaultError::SwappedOut(entry)) => {
                // What the kernel does: read the slot into a frame, map it, retry.
                let page = VirtAddr(va & !(PAGE_SIZE - 1));
                let owner = space
                    .private_owner_of(page)
                    .map_err(|_| FaultError::OutOfMemory)?;
                let frames = space.frames().clone();
                let pa = frames
                    .read_slot(entry, owner)
                    .map_err(|_| FaultError::OutOfMemory)?;
                let mapped = space.swap_in_page(page, entry, pa, true);
                frames.put(pa);
                mapped?;
                continue;
            }
            other => other?,
        };
        // What every other hart may still cache must be coherent right after the fault.
        space.mmu().assert_tlb_coherent();
        if outcome == FaultOutcome::Spurious {
            space.mmu().local_flush(va);
        }
    }
    panic!("fault loop at {va:#x}");
}

pub fn read(space: &mut Space, frames: &SimFrames, va: usize) -> Result<u8, FaultError> {
    access(space, va, Access::Read).map(|pa| frames.read(pa))
}

pub fn write(
    space: &mut Space,
    frames: &SimFrames,
    va: usize,
    value: u8,
) -> Result<(), FaultError> {
    access(space, va, Access::Write).map(|pa| frames.write(pa, value))
}

/// Checks every invariant the vm layer promises, over a group of spaces sharing `frames`:
/// area shape, PTE permissions, RSS, exact reference counts, TLB coherence.
pub fn check_invariants(spaces: &[&Space], frames: &SimFrames) {
    let zero = frames.zero_page();
    // pa -> (mappings, mapped from a shared area)
    let mut refs: HashMap<usize, (usize, bool)> = HashMap::new();
    for space in spaces {
        let areas: Vec<_> = space.areas().collect();
        for pair in areas.windows(2) {
            assert!(
                pair[0].range.end <= pair[1].range.start,
                "overlapping areas"
            );
            let alike = pair[0].range.end == pair[1].range.start
                && pair[0].prot == pair[1].prot
                && pair[0].grows_down == pair[1].grows_down
                && pair[0].lock == pair[1].lock
                && pair[0].huge_advice == pair[1].huge_advice
                && pair[0].kind == AreaKind::Anon
                && pair[1].kind == AreaKind::Anon
                && pair[0].anon_pgoff
                    + ((pair[0].range.end.0 - pair[0].range.start.0) / PAGE_SIZE) as u64
                    == pair[1].anon_pgoff;
            assert!(!alike, "unmerged neighbours {:?} {:?}", pair[0], pair[1]);
        }
        for area in &areas {
            assert!(area.range.start < area.range.end);
            assert!(area.range.start.is_page_aligned() && area.range.end.is_page_aligned());
        }
        let mut rss = 0;
        for (va, pte) in space.mmu().ptes() {
            let area = space
                .area_containing(VirtAddr(va))
                .unwrap_or_else(|| panic!("PTE at {va:#x} outside every area"));
            let shared = matches!(
                area.kind,
                AreaKind::SharedAnon | AreaKind::SharedFile { .. }
            );
            let huge_zero = frames.huge_zero_page() == Some(pte.pa);
            let read_only = pte.cow || pte.pa == zero || huge_zero;
            assert!(!(shared && pte.cow), "copy-on-write PTE in a shared area");
            assert_eq!(
                pte.flags,
                expected_flags(area.prot, read_only),
                "PTE flags at {va:#x}"
            );
            if pte.pa != zero && !huge_zero {
                rss += if pte.huge { HUGE_PAGE_PAGES } else { 1 };
                // References count on a huge frame's first frame.
                let counting = frames.counting_frame(pte.pa);
                let entry = refs.entry(counting.0).or_insert((0, shared));
                entry.0 += 1;
                assert_eq!(entry.1, shared, "frame mapped both shared and private");
            }
        }
        assert_eq!(space.rss_pages(), rss, "rss");
        space.mmu().assert_tlb_coherent();
    }
    for space in spaces {
        for (va, pte) in space.mmu().ptes() {
            if pte.pa != zero
                && pte.flags.contains(PagePerms::WRITE)
                && !refs[&frames.counting_frame(pte.pa).0].1
            {
                assert_eq!(
                    frames.refcount(pte.pa),
                    1,
                    "writable private PTE at {va:#x} on a shared frame"
                );
            }
        }
    }
    for (&pa, &(count, shared)) in &refs {
        let expected = count + shared as usize;
        assert_eq!(
            frames.refcount(PhysAddr(pa)),
            expected,
            "refcount of frame {pa:#x}"
        );
    }
}

/// The PTE flags the layer promises for a page of an area with `prot`.
pub fn expected_flags(prot: Prot, read_only: bool) -> PagePerms {
    let mut flags = PagePerms::USER;
    if prot.intersects(Prot::READ | Prot::WRITE) {
        flags |= PagePerms::READ;
    }
    if prot.contains(Prot::WRITE) && !read_only {
        flags |= PagePerms::WRITE;
    }
    if prot.contains(Prot::EXEC) {
        flags |= PagePerms::EXEC;
    }
    flags
}
