//! The address space: the ordered area set, its page table, and the primitives every
//! operation is built from (split, merge, zap, insert).

use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;

use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use super::VmError;
use super::area::{Area, AreaInfo, Backing, Lock};
use super::hal::{FrameSource, Mmu, OutOfMemory, PteInfo, TlbFlush, VmFile};
use super::huge::Thp;
use super::object::{MemObject, SpaceId};
use super::stats::{SpaceCounters, VmStats};
use super::{
    DEFAULT_MAX_MAP_COUNT, DEFAULT_MMAP_MIN_ADDR, DEFAULT_STACK_RLIMIT, MMAP_MAX_GAP, MMAP_MIN_GAP,
    STACK_GUARD_GAP,
};
use crate::addr::{PAGE_SHIFT, PAGE_SIZE, PhysAddr, VirtAddr, align_up};
use crate::layout::USER_END;

/// Per-process limits, Linux's tunables that shape an address space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VmConfig {
    /// `RLIMIT_STACK`: the largest size a stack area may grow to; also sizes the gap kept
    /// between the stack top and `mmap_base`.
    pub stack_rlimit: usize,
    /// `vm.mmap_min_addr`: no mapping starts below it (fixed mappings there get `EPERM`).
    pub mmap_min_addr: usize,
    /// `vm.max_map_count`: the most areas one space may have.
    pub max_map_count: usize,
    /// `RLIMIT_MEMLOCK` in bytes, checked by `mlock`, `mlockall` and locked mappings as
    /// Linux checks it; `None` for a process with `CAP_IPC_LOCK`, which no limit applies
    /// to (every pagoda process runs as root with every capability).
    pub memlock_limit: Option<usize>,
    /// `RLIMIT_AS` in bytes: the most the space's areas may span together (`VmSize`);
    /// `mmap`, `brk`, `mremap`, exec's mappings and stack growth that would pass it fail
    /// with `ENOMEM` (a fault: `SIGSEGV`), as Linux's `may_expand_vm` makes them. `None`
    /// for no limit (`RLIM_INFINITY`, the default). Unlike `RLIMIT_MEMLOCK` it binds root.
    pub as_limit: Option<usize>,
    /// Eager mode, the baseline the benchmarks compare with (what the seed's kernel did):
    /// every new mapping (mmap, brk, exec's segments and stack) is populated at once, and
    /// `fork` copies every private page instead of sharing it copy-on-write.
    pub eager: bool,
    /// Whether fork shares the leaf page tables of private memory with the child instead
    /// of copying their entries (if the page table can: [`Mmu::share_range`]); each side
    /// gets its own copy of a table on its first access to it (`fork=share|copy` on the
    /// kernel command line).
    pub share_tables: bool,
    /// When faults map private anonymous memory with 2 MiB pages (`thp=` on the kernel
    /// command line).
    pub thp: Thp,
}

impl VmConfig {
    /// Linux's defaults: 8 MiB stack limit, `mmap_min_addr` one page, 65530 areas; a
    /// root process (`CAP_IPC_LOCK`: no memory-lock limit).
    pub const LINUX_DEFAULT: VmConfig = VmConfig {
        stack_rlimit: DEFAULT_STACK_RLIMIT,
        mmap_min_addr: DEFAULT_MMAP_MIN_ADDR,
        max_map_count: DEFAULT_MAX_MAP_COUNT,
        memlock_limit: None,
        as_limit: None,
        eager: false,
        share_tables: true,
        thp: Thp::Always,
    };

    /// Where top-down placement starts: below the stack's maximum extent plus its guard
    /// gap, at least [`MMAP_MIN_GAP`] and at most [`MMAP_MAX_GAP`] below the top of the user
    /// half, rounded up to a page (Linux's `mmap_base()` without randomisation).
    pub fn mmap_base(&self) -> usize {
        let gap = self
            .stack_rlimit
            .saturating_add(STACK_GUARD_GAP)
            .clamp(MMAP_MIN_GAP, MMAP_MAX_GAP);
        let base = USER_END.0 - gap;
        align_up(base, PAGE_SIZE).unwrap_or(base)
    }
}

impl Default for VmConfig {
    fn default() -> Self {
        VmConfig::LINUX_DEFAULT
    }
}

/// The pages whose translations lost a right (a downgrade keeps the frame, so nothing
/// waits for this flush): their covering range, asked for in one [`TlbFlush`] call.
/// Removals need none: the [`Mmu`] flushes them itself before it hands frames back.
#[derive(Default)]
pub(crate) struct StaleRange {
    lo: usize,
    hi: usize,
    pages: usize,
}

impl StaleRange {
    pub(crate) fn add(&mut self, va: usize) {
        if self.pages == 0 || va < self.lo {
            self.lo = va;
        }
        if self.pages == 0 || va + PAGE_SIZE > self.hi {
            self.hi = va + PAGE_SIZE;
        }
        self.pages += 1;
    }

    /// As [`add`](Self::add), for pages visited in ascending address order (a table walk):
    /// cheaper, since the first page is the lowest and the last the highest.
    #[inline]
    pub(crate) fn add_ascending(&mut self, va: usize) {
        if self.pages == 0 {
            self.lo = va;
        }
        self.hi = va + PAGE_SIZE;
        self.pages += 1;
    }

    /// Sends the request: nothing, one page, or the covering range.
    pub(crate) fn emit<T: TlbFlush + ?Sized>(&self, tlb: &mut T) {
        match self.pages {
            0 => {}
            1 => tlb.flush_page(VirtAddr(self.lo)),
            _ => tlb.flush_range(VirtAddr(self.lo)..VirtAddr(self.hi)),
        }
    }
}

/// One process's user address space: memory areas in address order, the page table that
/// caches their pages, the program break, and accounting.
///
/// # Invariants
/// - Areas are page aligned, non-empty, pairwise disjoint, inside
///   `[mmap_min_addr, USER_END)`, keyed by start; two adjacent areas that could be one are
///   one (merged after every change).
/// - Every present PTE lies inside an area, and its permissions are those of the area's
///   protection, minus write when the PTE is copy-on-write or maps the zero page.
/// - A private PTE is writable only if this PTE is the frame's only reference.
/// - Every present PTE except zero-page ones holds one frame reference; `rss` counts them.
/// - Every remembered PTE holds one reference to its swap slot; `swap_entries` counts them.
/// - Reverse map: every private frame a PTE maps is owned by `anon` (this space is a
///   member); every frame a shared area maps is owned by the area's object, of which
///   this space is a member (see [`super::object`]).
///
/// All operations take `&mut self`: the kernel keeps each space behind its own lock.
pub struct AddressSpace<M: Mmu, F: FrameSource + Clone> {
    pub(crate) id: SpaceId,
    /// The anonymous object of this space's family (made at the first private frame of
    /// a space that has none, shared with the spaces forked from it afterwards): it owns
    /// every private frame they allocate.
    pub(crate) anon: Option<Arc<MemObject>>,
    pub(crate) swap_entries: usize,
    pub(crate) mmu: M,
    pub(crate) frames: F,
    pub(crate) areas: BTreeMap<usize, Area>,
    pub(crate) config: VmConfig,
    pub(crate) mmap_base: usize,
    pub(crate) start_brk: usize,
    pub(crate) brk: usize,
    pub(crate) rss: usize,
    pub(crate) counters: SpaceCounters,
    /// The lock every new mapping gets (`mlockall(MCL_FUTURE)`: Linux's `def_flags`).
    pub(crate) def_lock: Lock,
    /// Whether an area of this space was ever locked (counted once in
    /// [`LOCKING_SPACES`]).
    pub(crate) ever_locked: bool,
    /// Whether a private area of this space (or of the space it was forked from, before
    /// the fork) was ever moved by `mremap`: its anonymous page indices may then differ
    /// from the pages' addresses, and a reverse-map walk looks at every private area
    /// instead of only the one at the index's address. Never cleared.
    pub(crate) anon_moved: bool,
    /// Whether an area of this space was ever given `MADV_HUGEPAGE` (with `thp=madvise`
    /// a fault looks for huge pages only then). Never cleared.
    pub(crate) huge_advised: bool,
}

/// Live spaces that have locked an area at some time: while there are none, reclaim
/// need not ask whether a page is locked ([`spaces_may_lock`]).
static LOCKING_SPACES: AtomicUsize = AtomicUsize::new(0);

/// Whether any live address space may have a locked area (it locked one once and still
/// exists). `false` means no page anywhere is locked, so reclaim can skip the question.
pub fn spaces_may_lock() -> bool {
    LOCKING_SPACES.load(Ordering::Acquire) != 0
}

impl<M: Mmu, F: FrameSource + Clone> AddressSpace<M, F> {
    /// An empty address space over the (empty) page table `mmu`, taking frames from
    /// `frames`. Nothing is mapped; the program break is unset until
    /// [`AddressSpace::init_brk`].
    pub fn new(mmu: M, frames: F, config: VmConfig) -> Self {
        /// The next space's identity.
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        AddressSpace {
            id: SpaceId(NEXT_ID.fetch_add(1, Ordering::Relaxed)),
            anon: None,
            swap_entries: 0,
            mmu,
            frames,
            areas: BTreeMap::new(),
            mmap_base: config.mmap_base(),
            config,
            start_brk: 0,
            brk: 0,
            rss: 0,
            counters: SpaceCounters::default(),
            def_lock: Lock::Unlocked,
            ever_locked: false,
            anon_moved: false,
            huge_advised: false,
        }
    }

    /// Notes that an area of this space is about to be locked (before the flag is set,
    /// so reclaim, which reads [`spaces_may_lock`] first, never misses it).
    pub(crate) fn note_locking(&mut self) {
        if !self.ever_locked {
            self.ever_locked = true;
            LOCKING_SPACES.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// This space's identity among the members of memory objects (what a reverse-map
    /// walk asks its [`SpaceSet`](super::SpaceSet) for).
    pub fn id(&self) -> SpaceId {
        self.id
    }

    /// The frame source the space takes its frames from.
    pub fn frames(&self) -> &F {
        &self.frames
    }

    /// Remembered PTEs (swap entries) in the page table.
    pub fn swap_entries(&self) -> usize {
        self.swap_entries
    }

    /// The page table (for the kernel to install it: root, ASID; and for tests to walk it).
    pub fn mmu(&self) -> &M {
        &self.mmu
    }

    /// The limits this space was created with.
    pub fn config(&self) -> &VmConfig {
        &self.config
    }

    /// Where top-down `mmap` placement starts (exclusive upper bound of its search).
    pub fn mmap_base(&self) -> VirtAddr {
        VirtAddr(self.mmap_base)
    }

    /// The areas in address order.
    pub fn areas(&self) -> impl Iterator<Item = AreaInfo> + '_ {
        self.areas.values().map(Area::info)
    }

    /// The areas starting at or above `va`, in address order.
    pub fn areas_from(&self, va: VirtAddr) -> impl Iterator<Item = AreaInfo> + '_ {
        self.areas.range(va.0..).map(|(_, a)| a.info())
    }

    /// The number of areas.
    pub fn area_count(&self) -> usize {
        self.areas.len()
    }

    /// An upper bound of the heap bytes the area map takes: what a copy of it (`fork`)
    /// allocates. A B-tree node is at least half full, so each entry costs at most twice
    /// its key and value.
    pub fn area_map_bytes(&self) -> usize {
        self.areas.len() * 2 * (core::mem::size_of::<usize>() + core::mem::size_of::<Area>())
    }

    /// The file the area containing `va` maps (privately or shared), if any: what
    /// `/proc/PID/maps` names.
    pub fn file_at(&self, va: VirtAddr) -> Option<Arc<dyn VmFile>> {
        match &self.area_at(va.0)?.backing {
            Backing::File { obj, .. } | Backing::Shared { obj, .. } => obj.backing_file(),
            Backing::Anon => None,
        }
    }

    /// The area containing `va`, if any.
    pub fn area_containing(&self, va: VirtAddr) -> Option<AreaInfo> {
        self.area_at(va.0).map(Area::info)
    }

    /// Bytes of all areas together (`VmSize`, Linux's `total_vm`). Summed over the area
    /// map when asked (`/proc`, and `RLIMIT_AS` checks only while a limit is set), rather
    /// than kept as a count every split, merge, move and growth would have to follow.
    pub fn mapped_bytes(&self) -> usize {
        self.areas.values().map(|a| a.end - a.start).sum()
    }

    /// Sets `RLIMIT_AS` for this space from now on ([`VmConfig::as_limit`]); what is
    /// already mapped stays, as on Linux.
    pub fn set_as_limit(&mut self, limit: Option<usize>) {
        self.config.as_limit = limit;
    }

    /// `ENOMEM` if mapping `[start, end)`, replacing whatever areas it overlaps, would
    /// take the space past `RLIMIT_AS` (Linux's `may_expand_vm`, which compares pages).
    pub(super) fn check_as_limit(&self, start: usize, end: usize) -> Result<(), VmError> {
        if self.config.as_limit.is_none() {
            return Ok(());
        }
        let overlap: usize = self
            .areas
            .range(..end)
            .rev()
            .map(|(_, a)| a)
            .take_while(|a| a.end > start)
            .map(|a| a.end.min(end) - a.start.max(start))
            .sum();
        self.check_as_growth((end - start).saturating_sub(overlap))
    }

    /// `ENOMEM` if `bytes` more of mappings would take the space past `RLIMIT_AS`.
    pub(super) fn check_as_growth(&self, bytes: usize) -> Result<(), VmError> {
        match self.config.as_limit {
            Some(limit)
                if (self.mapped_bytes() >> PAGE_SHIFT).saturating_add(bytes >> PAGE_SHIFT)
                    > limit >> PAGE_SHIFT =>
            {
                Err(VmError::NoMem)
            }
            _ => Ok(()),
        }
    }

    /// Resident set size: pages mapped to frames (the shared zero page is not counted).
    pub fn rss_pages(&self) -> usize {
        self.rss
    }

    /// This space's fault counters.
    pub fn stats(&self) -> VmStats {
        self.counters.snapshot()
    }

    // ---- lookup --------------------------------------------------------------------

    /// The area containing `va`.
    pub(crate) fn area_at(&self, va: usize) -> Option<&Area> {
        self.areas
            .range(..=va)
            .next_back()
            .map(|(_, a)| a)
            .filter(|a| a.end > va)
    }

    /// The first area ending above `va`: the one containing it or the next one up
    /// (Linux's `find_vma`).
    pub(crate) fn find_area(&self, va: usize) -> Option<&Area> {
        self.area_at(va)
            .or_else(|| self.areas.range(va..).next().map(|(_, a)| a))
    }

    /// Whether any area intersects `[start, end)`.
    pub(crate) fn intersects(&self, start: usize, end: usize) -> bool {
        self.find_area(start).is_some_and(|a| a.start < end)
    }

    // ---- split and merge -----------------------------------------------------------

    /// Whether `at` lies strictly inside an area (so an operation starting or ending there
    /// splits it).
    pub(crate) fn splits_at(&self, at: usize) -> bool {
        self.area_at(at).is_some_and(|a| a.start < at)
    }

    /// Splits the area strictly containing `at`, if any, so that an area boundary lies at
    /// `at`.
    pub(crate) fn split_at(&mut self, at: usize) {
        if let Some((_, area)) = self.areas.range_mut(..at).next_back()
            && area.end > at
        {
            let tail = area.split_off(at);
            self.areas.insert(at, tail);
        }
    }

    /// Makes `at` an area boundary for an operation on part of an area (`mprotect`,
    /// `mlock`, `madvise`): splits the area strictly containing it, after the 2 MiB leaf
    /// it cuts, if any. `ENOMEM` at the `max_map_count` limit or when the leaf cannot be
    /// split; then nothing changed.
    pub(crate) fn cut_at(&mut self, at: usize) -> Result<(), VmError> {
        if !self.splits_at(at) {
            return Ok(());
        }
        if self.areas.len() >= self.config.max_map_count {
            return Err(VmError::NoMem);
        }
        self.split_huge_at(at)?;
        self.split_at(at);
        Ok(())
    }

    /// Merges the area starting at `at` into the one ending there, if compatible.
    fn merge_at(&mut self, at: usize) {
        let Some(next) = self.areas.get(&at) else {
            return;
        };
        let Some((_, prev)) = self.areas.range(..at).next_back() else {
            return;
        };
        if !prev.can_merge(next) {
            return;
        }
        if let Some(next) = self.areas.remove(&at)
            && let Some((_, prev)) = self.areas.range_mut(..at).next_back()
        {
            prev.end = next.end;
        }
    }

    /// Merges every compatible pair of neighbours whose boundary lies in `[start, end]`.
    pub(crate) fn merge_range(&mut self, start: usize, end: usize) {
        // The common case (a few boundaries) without a heap allocation.
        const FEW: usize = 8;
        let mut few = [0usize; FEW];
        let mut n = 0;
        for (&s, _) in self.areas.range(start..=end) {
            if n == FEW {
                let bounds: Vec<usize> = self.areas.range(start..=end).map(|(&s, _)| s).collect();
                for at in bounds {
                    self.merge_at(at);
                }
                return;
            }
            few[n] = s;
            n += 1;
        }
        for &at in &few[..n] {
            self.merge_at(at);
        }
    }

    /// Inserts `area` into a free range and merges it with its neighbours.
    pub(crate) fn insert_area(&mut self, area: Area) {
        let (start, end) = (area.start, area.end);
        debug_assert!(!self.intersects(start, end));
        self.areas.insert(start, area);
        self.merge_range(start, end);
    }

    /// Removes the areas covering `[start, end)` (splitting the ones that stick out) and
    /// releases their backing objects. The pages must already be zapped.
    pub(crate) fn remove_areas(&mut self, start: usize, end: usize) {
        self.split_at(start);
        self.split_at(end);
        let starts: Vec<usize> = self.areas.range(start..end).map(|(&s, _)| s).collect();
        for s in starts {
            if let Some(area) = self.areas.remove(&s) {
                self.release_backing(area);
            }
        }
    }

    /// Drops an area's reference on its backing; the last reference to a shared object
    /// frees the object's pages.
    pub(crate) fn release_backing(&self, area: Area) {
        let obj = match area.backing {
            Backing::Shared { obj, .. } | Backing::File { obj, .. } => obj,
            Backing::Anon => return,
        };
        if let Some(obj) = Arc::into_inner(obj) {
            obj.release(&self.frames);
        }
    }

    // ---- pages ---------------------------------------------------------------------

    /// Unmaps every page in `[start, end)` and drops the frames' references; the
    /// [`Mmu`] calls back only after the flush that makes each frame unreachable, so a
    /// reference may go at once.
    ///
    /// A 2 MiB leaf must not stick out of the range: the caller split the ends first
    /// ([`split_huge_at`](Self::split_huge_at), which can fail, so it runs before
    /// anything changes).
    pub(crate) fn zap(&mut self, start: usize, end: usize) {
        self.drop_remembered(start, end);
        let zero = self.frames.zero_page();
        let huge_zero = self.frames.huge_zero_page();
        let AddressSpace {
            mmu, frames, rss, ..
        } = self;
        mmu.unmap_range(VirtAddr(start), VirtAddr(end), |_, pte| {
            if !maps_zero(pte, zero, huge_zero) {
                *rss -= Self::leaf_pages(&pte);
                frames.put(pte.pa);
            }
        });
    }

    /// Makes `[start, end)` ready for page-granular changes that cannot fail (unmap,
    /// protect, move): splits the 2 MiB leaves that `start` and `end` cut
    /// ([`split_huge_at`]) and makes the leaf tables fork shares there this space's own
    /// ([`Mmu::attach_range`]). `ENOMEM` if a split or a table copy could not be had
    /// (what was done stays: it is invisible to the program).
    ///
    /// [`split_huge_at`]: Self::split_huge_at
    pub(crate) fn prepare_change(&mut self, start: usize, end: usize) -> Result<(), VmError> {
        self.split_huge_at(start)?;
        self.split_huge_at(end)?;
        self.mmu
            .attach_range(VirtAddr(start), VirtAddr(end))
            .map_err(|_| VmError::NoMem)
    }

    /// Moves every entry of `[src, src + len)` to the same offset in `[dst, dst + len)`
    /// (which holds none, and does not overlap it), without copying a page or touching a
    /// reference count: each present PTE (frame, permissions, copy-on-write bit; zero
    /// page and `PROT_NONE` pages alike) and each remembered entry (swap slot) is
    /// installed at its new address, its reference passing from the old entry to the
    /// new, then the old entries are cleared. [`Mmu::unmap_range`] flushes the old
    /// translations on every hart that may hold them before this returns, so once the
    /// caller drops the space's lock no hart reaches a moved frame through its old
    /// address (a later unmap or copy-on-write break at the new address flushes only
    /// that address, and may then free the frame).
    ///
    /// `ENOMEM` if a page-table page for `dst` could not be had: the entries already
    /// installed at `dst` are cleared again (they held no reference of their own) and
    /// nothing has changed.
    pub(crate) fn move_pages(&mut self, src: usize, dst: usize, len: usize) -> Result<(), VmError> {
        let (src_end, dst_end) = (VirtAddr(src + len), VirtAddr(dst + len));
        let mut failed = false;
        let mut cursor = VirtAddr(src);
        while let Some((va, pte)) = self.mmu.next_mapped(cursor, src_end) {
            let to = VirtAddr(dst + (va.0 - src));
            // A 2 MiB leaf moves whole (the caller split them unless `dst - src` is a
            // multiple of 2 MiB).
            let moved = if pte.huge {
                self.mmu.map_huge(to, pte.pa, pte.flags, pte.cow) == Ok(true)
            } else {
                self.mmu.map(to, pte.pa, pte.flags, pte.cow).is_ok()
            };
            if !moved {
                failed = true;
                break;
            }
            cursor = VirtAddr(va.0 + Self::leaf_pages(&pte) * PAGE_SIZE);
        }
        if !failed && self.swap_entries != 0 {
            failed = self.move_remembered(src, dst, len).is_err();
        }
        if failed {
            self.mmu
                .remembered_range(VirtAddr(dst), dst_end, true, |_, _| {});
            self.mmu.unmap_range(VirtAddr(dst), dst_end, |_, _| {});
            return Err(VmError::NoMem);
        }
        // The references now belong to the new entries: the old ones go without a
        // `put`, after the flush `unmap_range` performs.
        self.mmu
            .remembered_range(VirtAddr(src), src_end, true, |_, _| {});
        self.mmu.unmap_range(VirtAddr(src), src_end, |_, _| {});
        Ok(())
    }

    /// The remembered half of [`move_pages`](Self::move_pages): installs each remembered
    /// entry of `[src, src + len)` at its offset in `dst`, leaving the old ones in place.
    fn move_remembered(&mut self, src: usize, dst: usize, len: usize) -> Result<(), VmError> {
        let mut entries = Vec::new();
        entries
            .try_reserve(self.swap_entries)
            .map_err(|_| VmError::NoMem)?;
        self.mmu
            .remembered_range(VirtAddr(src), VirtAddr(src + len), false, |va, e| {
                if entries.len() < entries.capacity() {
                    entries.push((va, e));
                }
            });
        for (va, entry) in entries {
            let to = VirtAddr(dst + (va.0 - src));
            self.mmu.remember(to, entry).map_err(|_| VmError::NoMem)?;
        }
        Ok(())
    }

    /// Clears the remembered PTEs of `[start, end)`, dropping their swap slots' references
    /// (the [`Mmu::unmap_range`] that follows frees the table pages this empties).
    fn drop_remembered(&mut self, start: usize, end: usize) {
        if self.swap_entries == 0 {
            return;
        }
        let AddressSpace {
            mmu,
            frames,
            swap_entries,
            ..
        } = self;
        mmu.remembered_range(VirtAddr(start), VirtAddr(end), true, |_, entry| {
            frames.drop_remembered(entry);
            *swap_entries -= 1;
        });
    }

    /// Unmaps and forgets everything (what `exec` and exit do to the old space).
    fn clear(&mut self) {
        self.drop_remembered(0, USER_END.0);
        let zero = self.frames.zero_page();
        let huge_zero = self.frames.huge_zero_page();
        let AddressSpace { mmu, frames, .. } = self;
        mmu.teardown(|_, pte| {
            if !maps_zero(pte, zero, huge_zero) {
                frames.put(pte.pa);
            }
        });
        self.rss = 0;
        let areas = core::mem::take(&mut self.areas);
        for (_, area) in areas {
            if let Backing::Shared { obj, .. } = &area.backing {
                obj.leave(self.id);
            }
            self.release_backing(area);
        }
        if let Some(obj) = &self.anon {
            obj.leave(self.id);
        }
    }
}

/// Whether `pte` maps a shared zero page: the 4 KiB one (`zero`), or the huge one
/// (`huge_zero`) as a 2 MiB leaf. Never counted, never written. The callers look both
/// up once per range.
#[inline(always)]
pub(crate) fn maps_zero(pte: PteInfo, zero: PhysAddr, huge_zero: Option<PhysAddr>) -> bool {
    pte.pa == zero || (pte.huge && Some(pte.pa) == huge_zero)
}

/// The owner word for private page `index` (its area's [`Area::anon_index`]) of space
/// `id` whose anonymous object is `anon` (made now if there is none yet).
#[inline]
pub(crate) fn private_owner(
    anon: &mut Option<Arc<MemObject>>,
    id: SpaceId,
    index: u64,
) -> Result<u64, OutOfMemory> {
    match anon {
        Some(obj) => Ok(obj.owner_word(index)),
        None => first_private_owner(anon, id, index),
    }
}

/// [`private_owner`] of a space's first private frame: makes its anonymous object.
#[cold]
#[inline(never)]
fn first_private_owner(
    anon: &mut Option<Arc<MemObject>>,
    id: SpaceId,
    index: u64,
) -> Result<u64, OutOfMemory> {
    let obj = MemObject::anon()?;
    obj.join(id);
    Ok(anon.insert(obj).owner_word(index))
}

impl<M: Mmu, F: FrameSource + Clone> Drop for AddressSpace<M, F> {
    /// Tears the space down with [`Mmu::teardown`]: every PTE removed and, after the flush
    /// that makes it safe, every frame reference dropped (frames shared with other spaces
    /// survive, the rest are freed); every shared object whose last mapper this was is
    /// released. The kernel drops a space only when no hart translates with it any more
    /// (it switched away first).
    fn drop(&mut self) {
        self.clear();
        if self.ever_locked {
            LOCKING_SPACES.fetch_sub(1, Ordering::AcqRel);
        }
    }
}
