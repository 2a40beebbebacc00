//! The page-fault handler: demand paging, copy-on-write breaks, stack growth, and the
//! user-range helper behind `copy_from_user` / `copy_to_user`.

use alloc::sync::Arc;

use super::area::{Area, BackedPage, Backing, HugeAdvice, PageOrigin, Prot};
use super::hal::{FrameSource, Mmu, PagePerms, PteInfo, PteState};
use super::huge::{Thp, huge_base, huge_head_of};
use super::object::{MemObject, PageError, SpaceId};
use super::space::{AddressSpace, private_owner};
use super::stats::{Event, SpaceCounters};
use super::{FaultError, STACK_GUARD_GAP, VmError};
use crate::addr::{PAGE_SHIFT, PAGE_SIZE, VirtAddr, align_down};
use crate::layout::{HUGE_PAGE_PAGES, HUGE_PAGE_SIZE, USER_END};

/// The kind of access that faulted (from `scause`: load, store/AMO, instruction page
/// fault).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    /// A load.
    Read,
    /// A store or atomic.
    Write,
    /// An instruction fetch.
    Exec,
}

impl Access {
    /// The PTE permission the access needs.
    pub(crate) fn pte_flag(self) -> PagePerms {
        match self {
            Access::Read => PagePerms::READ,
            Access::Write => PagePerms::WRITE,
            Access::Exec => PagePerms::EXEC,
        }
    }
}

/// How a fault was resolved. Every variant means "return to the faulting instruction";
/// [`FaultOutcome::Spurious`] additionally asks the kernel for a *local* `sfence.vma` of the
/// faulting page before returning, since this hart used a stale translation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultOutcome {
    /// A read of untouched private memory: the shared zero page was mapped read-only.
    ZeroPage,
    /// A write to untouched private memory: a fresh zeroed frame was mapped.
    ZeroFilled,
    /// A private file page was read into a fresh frame and mapped.
    FileRead,
    /// A shared-memory page was mapped (allocated zeroed on its first touch by anyone).
    SharedPage,
    /// A write to a copy-on-write page still shared: the page was copied.
    CowCopied,
    /// A write to a copy-on-write page no longer shared: made writable in place.
    CowTakenOver,
    /// A write to a zero-page mapping: replaced by a fresh zeroed frame.
    ZeroPageUpgraded,
    /// The PTE lacked a permission its area grants (a PTE write-protected by a layer
    /// below, e.g. for dirty tracking): the area's permissions were restored.
    PermissionsRestored,
    /// The PTE already allows the access: the hart held a stale TLB entry (the lazy flush
    /// after an upgrade). Flush the page locally and retry.
    Spurious,
}

impl<M: Mmu, F: FrameSource + Clone> AddressSpace<M, F> {
    /// Resolves a page fault at `va` for `access`, for instruction, load and store page
    /// faults from user mode and from kernel accesses to user memory.
    ///
    /// Looks up the area (growing a stack down if `va` lies just below one), checks the
    /// area's protection, then resolves: zero page or zeroed frame for anonymous memory,
    /// a file read for file pages (zeros past the area's file bytes), the shared object's
    /// page for shared memory, a copy or take-over for copy-on-write, a fresh frame for a
    /// write to the zero page. It installs the PTE and requests exactly the flush needed:
    /// none for a PTE that was not present or only gained rights, one page when a present
    /// PTE changed its frame.
    ///
    /// Errors: [`FaultError::Unmapped`] outside every area (kernel-half addresses too),
    /// [`FaultError::AccessDenied`] against the area's protection, [`FaultError::Bus`] for
    /// file pages beyond the end of the file or unreadable, [`FaultError::OutOfMemory`],
    /// [`FaultError::SwappedOut`] for a page in swap (nothing changed: the kernel reads it
    /// and calls [`AddressSpace::swap_in_page`]).
    /// On error nothing changed (except a stack area that grew).
    pub fn handle_fault(
        &mut self,
        va: VirtAddr,
        access: Access,
    ) -> Result<FaultOutcome, FaultError> {
        if va.0 >= USER_END.0 {
            return Err(FaultError::Unmapped);
        }
        let page = align_down(va.0, PAGE_SIZE);
        // At most twice: again after growing a stack down to `page`.
        let mut grown = false;
        loop {
            let mut state = self.mmu.query(VirtAddr(page));
            if let PteState::Present(pte) = state
                && pte.shared
            {
                // In a leaf table fork shares: this space's own before anything is
                // decided on the PTE (the frame's count is the shared table's).
                self.mmu
                    .attach(VirtAddr(page))
                    .map_err(|_| FaultError::OutOfMemory)?;
                state = self.mmu.query(VirtAddr(page));
            }
            if let PteState::Present(pte) = state
                && pte.huge
                && !pte.flags.contains(access.pte_flag())
            {
                match self.huge_fault(page, access, pte)? {
                    Ok(outcome) => {
                        self.counters.record(Event::MinorFault, 1);
                        return Ok(outcome);
                    }
                    Err(now) => state = now,
                }
            }
            // Whether an untouched page may get a huge page (the area decides the rest).
            let huge_mode = match self.config.thp {
                Thp::Madvise if !self.huge_advised => Thp::Never,
                mode => mode,
            };
            let AddressSpace {
                mmu,
                frames,
                areas,
                counters,
                rss,
                anon,
                id,
                ..
            } = self;
            // One area lookup on the way of every fault.
            let Some(area) = areas
                .range(..=page)
                .next_back()
                .map(|(_, a)| a)
                .filter(|a| a.end > page)
            else {
                if grown {
                    return Err(FaultError::Unmapped);
                }
                self.grow_stack(page)?;
                grown = true;
                continue;
            };
            if !area.allows(access) {
                return Err(FaultError::AccessDenied);
            }
            // An untouched page in a space that may take huge pages tries one first.
            // Its `Fault` is its own: the 4 KiB path's below is never passed out of
            // line, so it lives in registers.
            if matches!(state, PteState::Absent)
                && huge_mode != Thp::Never
                && let Some(outcome) = (Fault {
                    mmu: &mut *mmu,
                    frames: &*frames,
                    counters: &mut *counters,
                    rss: &mut *rss,
                    anon: &mut *anon,
                    id: *id,
                    area,
                    page,
                })
                .fill_huge(access, huge_mode)
            {
                counters.record(Event::MinorFault, 1);
                return Ok(outcome);
            }
            let mut fault = Fault {
                mmu,
                frames,
                counters,
                rss,
                anon,
                id: *id,
                area,
                page,
            };
            let outcome = match state {
                PteState::Absent => fault.fill(access)?,
                PteState::Present(pte) => fault.resolve_present(pte, access)?,
                // The kernel reads it in (sleeping, without this space's lock) and
                // comes back through `swap_in_page`.
                PteState::Remembered(entry) => return Err(FaultError::SwappedOut(entry)),
            };
            let event = match outcome {
                FaultOutcome::Spurious => Event::Spurious,
                _ => Event::MinorFault,
            };
            fault.counters.record(event, 1);
            return Ok(outcome);
        }
    }

    /// A fault at `page` on the 2 MiB leaf `pte` that lacks the access's right: resolved
    /// whole (or split, and the 4 KiB fault left to the caller: `Err` with what the table
    /// holds at `page` now). Out of line: the 4 KiB fault path stays as short as it was.
    #[inline(never)]
    fn huge_fault(
        &mut self,
        page: usize,
        access: Access,
        pte: PteInfo,
    ) -> Result<Result<FaultOutcome, PteState>, FaultError> {
        let Some(prot) = self
            .area_at(page)
            .filter(|a| a.allows(access))
            .map(|a| a.prot)
        else {
            // The 4 KiB path reports the error.
            return Ok(Err(PteState::Present(pte)));
        };
        if access == Access::Write {
            return match self.write_huge(page, pte) {
                Ok(Some(outcome)) => Ok(Ok(outcome)),
                // Split: the 4 KiB entry is resolved as any other.
                Ok(None) => Ok(Err(self.mmu.query(VirtAddr(page)))),
                Err(VmError::NoMem) => Err(FaultError::OutOfMemory),
                Err(_) => Err(FaultError::Unmapped),
            };
        }
        // A right the area grants is missing (never today): restore it, never write on
        // a shared or zero huge frame.
        let read_only = pte.cow || self.is_zero_frame(huge_head_of(pte.pa));
        self.mmu
            .protect(VirtAddr(page), prot.pte_flags(read_only), pte.cow);
        Ok(Ok(FaultOutcome::PermissionsRestored))
    }

    /// Makes `[va, va + len)` accessible for a kernel copy to (`write`) or from user memory:
    /// faults in every page not yet mapped with the needed permission. `EFAULT` if a page
    /// cannot be (unmapped, protected, beyond a file's end, or the range leaves the user
    /// half); `ENOMEM` if memory ran out. Length 0 always succeeds.
    ///
    /// The translations installed may be stale in this hart's TLB (no flush is requested
    /// for new PTEs): the kernel's user-access fault fixup must call
    /// [`AddressSpace::handle_fault`] and honour [`FaultOutcome::Spurious`].
    pub fn ensure_user_range(
        &mut self,
        va: VirtAddr,
        len: usize,
        write: bool,
    ) -> Result<(), VmError> {
        if len == 0 {
            return Ok(());
        }
        let end =
            va.0.checked_add(len)
                .filter(|&e| e <= USER_END.0)
                .ok_or(VmError::Fault)?;
        let access = if write { Access::Write } else { Access::Read };
        let mut page = align_down(va.0, PAGE_SIZE);
        while page < end {
            let ready = self
                .mmu
                .query(VirtAddr(page))
                .present()
                .is_some_and(|pte| pte.flags.contains(access.pte_flag()));
            if !ready {
                self.handle_fault(VirtAddr(page), access)
                    .map_err(FaultError::to_vm_error)?;
            }
            page += PAGE_SIZE;
        }
        Ok(())
    }

    /// Extends the stack area just above `page` down to `page` (Linux's
    /// `expand_downwards`): the area must grow down, `page` must be at or above
    /// `mmap_min_addr`, the grown stack must fit in `stack_rlimit`, and an accessible,
    /// non-stack area below must stay at least [`STACK_GUARD_GAP`] away.
    fn grow_stack(&mut self, page: usize) -> Result<(), FaultError> {
        let stack = self
            .areas
            .range(page..)
            .next()
            .map(|(_, a)| a)
            .ok_or(FaultError::Unmapped)?;
        if !stack.grows_down || page < self.config.mmap_min_addr {
            return Err(FaultError::Unmapped);
        }
        if stack.end - page > self.config.stack_rlimit
            || self.check_as_growth(stack.start - page).is_err()
        {
            return Err(FaultError::Unmapped);
        }
        if let Some((_, below)) = self.areas.range(..page).next_back()
            && !below.grows_down
            && below.prot != Prot::NONE
            && page - below.end < STACK_GUARD_GAP
        {
            return Err(FaultError::Unmapped);
        }
        let old_start = stack.start;
        // The grown pages keep indices that continue the stack's (`mremap` may have
        // moved it, so they need not be their addresses).
        let anon_pgoff = stack
            .anon_pgoff
            .checked_sub(((old_start - page) >> PAGE_SHIFT) as u64)
            .ok_or(FaultError::Unmapped)?;
        if let Some(mut stack) = self.areas.remove(&old_start) {
            stack.start = page;
            stack.anon_pgoff = anon_pgoff;
            self.areas.insert(page, stack);
        }
        self.counters
            .record(Event::StackGrowth, ((old_start - page) / PAGE_SIZE) as u64);
        self.merge_range(page, page);
        Ok(())
    }
}

/// One fault being resolved: the space's parts it needs, borrowed side by side.
struct Fault<'a, M: Mmu, F: FrameSource> {
    mmu: &'a mut M,
    frames: &'a F,
    counters: &'a mut SpaceCounters,
    rss: &'a mut usize,
    anon: &'a mut Option<Arc<MemObject>>,
    id: SpaceId,
    area: &'a Area,
    page: usize,
}

impl<M: Mmu, F: FrameSource> Fault<'_, M, F> {
    fn va(&self) -> VirtAddr {
        VirtAddr(self.page)
    }

    /// The owner word of a private frame for this page (the space's anonymous object,
    /// made now if it has none yet).
    #[inline(always)]
    fn owner(&mut self) -> Result<u64, FaultError> {
        private_owner(self.anon, self.id, self.area.anon_index(self.page))
            .map_err(|_| FaultError::OutOfMemory)
    }

    /// Maps a frame just obtained (holding one reference for this PTE); on failure the
    /// reference is dropped again.
    fn install(&mut self, pa: crate::addr::PhysAddr, flags: PagePerms) -> Result<(), FaultError> {
        if self.mmu.map(self.va(), pa, flags, false).is_err() {
            self.frames.put(pa);
            return Err(FaultError::OutOfMemory);
        }
        *self.rss += 1;
        Ok(())
    }

    /// Fills the untouched 2 MiB range around the page with one leaf if the area takes
    /// huge pages under `mode` and covers the whole aligned range, and nothing is mapped
    /// there: the huge zero page for a read, a zeroed huge frame for a write. `None` to
    /// map 4 KiB (also when no 2 MiB block or table page could be had).
    #[inline(never)]
    fn fill_huge(&mut self, access: Access, mode: Thp) -> Option<FaultOutcome> {
        let area = self.area;
        let wanted = match (mode, area.huge) {
            (_, HugeAdvice::Never) | (Thp::Never, _) => false,
            (Thp::Always, _) | (_, HugeAdvice::Huge) => true,
            (Thp::Madvise, HugeAdvice::Default) => false,
        };
        let base = huge_base(self.page);
        if !wanted
            || !matches!(area.backing, Backing::Anon)
            || base < area.start
            || base + HUGE_PAGE_SIZE > area.end
            || !self.mmu.huge_slot_free(VirtAddr(base))
        {
            return None;
        }
        let prot = area.prot;
        if access != Access::Write {
            let zero = self.frames.huge_zero_page()?;
            let mapped = self
                .mmu
                .map_huge(VirtAddr(base), zero, prot.pte_flags(true), false);
            if mapped != Ok(true) {
                return None;
            }
            self.counters.record(Event::ZeroPageMap, 1);
            return Some(FaultOutcome::ZeroPage);
        }
        let owner = private_owner(self.anon, self.id, area.anon_index(base)).ok()?;
        let Ok(pa) = self.frames.alloc_huge(owner, true) else {
            self.counters.record(Event::ThpFaultFallback, 1);
            return None;
        };
        if self
            .mmu
            .map_huge(VirtAddr(base), pa, prot.pte_flags(false), false)
            != Ok(true)
        {
            self.frames.put(pa);
            return None;
        }
        *self.rss += HUGE_PAGE_PAGES;
        self.counters.record(Event::ThpFaultAlloc, 1);
        self.counters.record(Event::ZeroFill, 1);
        Some(FaultOutcome::ZeroFilled)
    }

    /// Resolves a fault on a page with no PTE. New PTEs need no flush. Anonymous memory
    /// is resolved here, inlined into the one caller (the 4 KiB fault path); file and
    /// shared pages out of line, in [`fill_backed`](Self::fill_backed).
    #[inline(always)]
    fn fill(&mut self, access: Access) -> Result<FaultOutcome, FaultError> {
        let prot = self.area.prot;
        match self.area.source(self.page) {
            PageOrigin::Anon if access != Access::Write => {
                let zero = self.frames.zero_page();
                self.mmu
                    .map(self.va(), zero, prot.pte_flags(true), false)
                    .map_err(|_| FaultError::OutOfMemory)?;
                self.counters.record(Event::ZeroPageMap, 1);
                Ok(FaultOutcome::ZeroPage)
            }
            PageOrigin::Anon => {
                let owner = self.owner()?;
                let pa = self
                    .frames
                    .alloc_zeroed(owner)
                    .map_err(|_| FaultError::OutOfMemory)?;
                self.install(pa, prot.pte_flags(false))?;
                self.counters.record(Event::ZeroFill, 1);
                Ok(FaultOutcome::ZeroFilled)
            }
            PageOrigin::Backed(origin) => self.fill_backed(origin),
        }
    }

    /// [`fill`](Self::fill) of a page backed by a file or a shared object.
    #[inline(never)]
    fn fill_backed(&mut self, origin: BackedPage) -> Result<FaultOutcome, FaultError> {
        let prot = self.area.prot;
        match origin {
            BackedPage::Shared(obj, index) => {
                let pa = match obj.page(index, self.frames) {
                    Ok(Some(pa)) => pa,
                    Ok(None) | Err(PageError::Io | PageError::NoSpace) => {
                        return Err(FaultError::Bus);
                    }
                    Err(PageError::OutOfMemory) => return Err(FaultError::OutOfMemory),
                };
                self.install(pa, prot.pte_flags(false))?;
                self.counters.record(Event::SharedFill, 1);
                Ok(FaultOutcome::SharedPage)
            }
            BackedPage::Cache(obj, index) => {
                if index << PAGE_SHIFT >= obj.size() {
                    return Err(FaultError::Bus);
                }
                let owner = self.owner()?;
                let pa = match obj.cached(index, self.frames) {
                    Some(cached) => {
                        let copy = self.frames.alloc_uninit(owner);
                        if let Ok(copy) = copy {
                            self.frames.copy_frame(copy, cached);
                        }
                        self.frames.put(cached);
                        copy
                    }
                    None => self.frames.alloc_zeroed(owner),
                }
                .map_err(|_| FaultError::OutOfMemory)?;
                // The frame is this space's own copy: writable right away if the area is.
                self.install(pa, prot.pte_flags(false))?;
                self.counters.record(Event::FileRead, 1);
                Ok(FaultOutcome::FileRead)
            }
            BackedPage::File(file, offset, len) => {
                if offset >= file.size() {
                    return Err(FaultError::Bus);
                }
                let owner = self.owner()?;
                let pa = self
                    .frames
                    .alloc_uninit(owner)
                    .map_err(|_| FaultError::OutOfMemory)?;
                if file.read_page(offset, len, pa).is_err() {
                    self.frames.put(pa);
                    return Err(FaultError::Bus);
                }
                // The frame is this space's own copy: writable right away if the area is.
                self.install(pa, prot.pte_flags(false))?;
                self.counters.record(Event::FileRead, 1);
                Ok(FaultOutcome::FileRead)
            }
        }
    }

    /// Resolves a fault on a present PTE.
    fn resolve_present(
        &mut self,
        pte: PteInfo,
        access: Access,
    ) -> Result<FaultOutcome, FaultError> {
        if pte.flags.contains(access.pte_flag()) {
            return Ok(FaultOutcome::Spurious);
        }
        let prot = self.area.prot;
        let zero = self.frames.zero_page();
        if access == Access::Write && pte.pa == zero {
            let owner = self.owner()?;
            let pa = self
                .frames
                .alloc_zeroed(owner)
                .map_err(|_| FaultError::OutOfMemory)?;
            self.install(pa, prot.pte_flags(false))?;
            self.mmu.flush_page(self.va());
            self.counters.record(Event::ZeroPageUpgrade, 1);
            return Ok(FaultOutcome::ZeroPageUpgraded);
        }
        if access == Access::Write && pte.cow {
            if self.frames.refcount(pte.pa) == 1 || self.frames.take_exclusive(pte.pa) {
                // Ours alone: gaining write on a present PTE needs no flush.
                self.mmu.protect(self.va(), prot.pte_flags(false), false);
                self.counters.record(Event::CowTakeover, 1);
                return Ok(FaultOutcome::CowTakenOver);
            }
            let owner = self.owner()?;
            let copy = self
                .frames
                .alloc_uninit(owner)
                .map_err(|_| FaultError::OutOfMemory)?;
            self.frames.copy_frame(copy, pte.pa);
            if self
                .mmu
                .map(self.va(), copy, prot.pte_flags(false), false)
                .is_err()
            {
                self.frames.put(copy);
                return Err(FaultError::OutOfMemory);
            }
            // The old frame may be cached read-only elsewhere: flush, then let it go.
            self.mmu.flush_page(self.va());
            self.frames.put(pte.pa);
            self.counters.record(Event::CowCopy, 1);
            return Ok(FaultOutcome::CowCopied);
        }
        self.mmu.protect(
            self.va(),
            prot.pte_flags(pte.cow || pte.pa == zero),
            pte.cow,
        );
        Ok(FaultOutcome::PermissionsRestored)
    }
}
