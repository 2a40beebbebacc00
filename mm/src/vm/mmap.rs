//! The memory system calls (`mmap`, `munmap`, `mprotect`, `brk`, `madvise`) with Linux 6.1
//! semantics, and the fixed mappers `exec` uses. None of them maps a page: pages appear on
//! first touch through the fault handler.

use alloc::sync::Arc;
use alloc::vec::Vec;

use super::abi::*;
use super::area::{Area, Backing, HugeAdvice, Lock, Prot};
use super::hal::{FrameSource, Mmu};
use super::object::MemObject;
use super::space::{AddressSpace, StaleRange};
use super::{Access, FaultError, STACK_GUARD_GAP, TASK_UNMAPPED_BASE, Thp, VmError};
use crate::addr::{PAGE_SHIFT, PAGE_SIZE, VirtAddr, VirtRange, align_up, is_aligned};
use crate::layout::{HUGE_PAGE_SIZE, USER_END};

/// The file argument of [`AddressSpace::mmap`], resolved by the kernel from the `fd`.
#[derive(Clone)]
pub struct MmapFile {
    /// The file's memory object (the kernel keeps one per file, so that every mapping of
    /// the file shares it), or `None` if the descriptor names something that cannot be
    /// mapped (a pipe, a directory, a device without `mmap`): the call fails with
    /// `ENODEV`.
    pub file: Option<Arc<MemObject>>,
    /// Whether the descriptor was opened for reading (`O_RDONLY`/`O_RDWR`).
    pub readable: bool,
    /// Whether the descriptor was opened for writing (`O_WRONLY`/`O_RDWR`).
    pub writable: bool,
}

/// Page-rounds a length; `None` when rounding overflows.
pub(super) fn page_len(len: usize) -> Option<usize> {
    align_up(len, PAGE_SIZE)
}

impl<M: Mmu, F: FrameSource + Clone> AddressSpace<M, F> {
    /// `mmap(addr, len, prot, flags, fd, offset)`.
    ///
    /// `file` is the resolved descriptor (`None` if `fd` is not an open descriptor; ignored
    /// with `MAP_ANONYMOUS`). Returns the mapping's address. Checks in Linux's order:
    /// `EINVAL` for a misaligned offset, `EBADF` for a missing file, `EINVAL` for
    /// `MAP_HUGETLB` of a file or shared memory or at an address not 2 MiB aligned, or
    /// length 0, `ENOMEM` if the page-rounded length overflows, the space
    /// has more than `max_map_count` areas or has no room, `EINVAL` / `ENOMEM` / `EPERM`
    /// for a fixed address misaligned / past the user half / below `mmap_min_addr`,
    /// `EEXIST` for `MAP_FIXED_NOREPLACE` over a mapping, `EOVERFLOW` if a file range
    /// passes `i64::MAX`, then the type checks (`EOPNOTSUPP`, `EACCES`, `ENODEV`,
    /// `EINVAL`), then `ENOMEM` past `RLIMIT_AS`. `MAP_HUGETLB` maps whole 2 MiB pages,
    /// all allocated now: `ENOMEM` when a 2 MiB block is missing.
    ///
    /// Placement without `MAP_FIXED`: the hint (rounded down to a page, raised to
    /// `mmap_min_addr`) if the range is free and clear of stack guard gaps; else the
    /// highest free range below [`mmap_base`](AddressSpace::mmap_base); else the lowest
    /// free range above `TASK_UNMAPPED_BASE`. `MAP_FIXED` replaces whatever was mapped.
    ///
    /// `MAP_SHARED` of a file: every such mapping of the file, in every space, maps the
    /// same frames (the file object's pages). For a descriptor opened read-only
    /// `PROT_WRITE` is refused now and by later `mprotect`. A writable shared mapping is
    /// allowed for in-memory files ([`MemObject::memory`], tmpfs), whose pages are the
    /// file's data, so a store is what `read` sees; for other files (the read-only
    /// initramfs) a shared mapping of a writable descriptor fails with `ENODEV`.
    /// `MAP_PRIVATE` pages of a file are private copies read from it (for an in-memory
    /// file: copied from its page at the first touch).
    ///
    /// A mapping is locked (as by `mlock`) under `MAP_LOCKED` or after
    /// `mlockall(MCL_FUTURE)`: `EPERM` for `MAP_LOCKED` when `RLIMIT_MEMLOCK` is 0,
    /// `EAGAIN` when the locked bytes would pass it (checked after `EEXIST`, as Linux).
    /// Eager mode, `MAP_POPULATE` (without `MAP_NONBLOCK`) and a locked mapping (unless
    /// `MCL_ONFAULT`) are populated before this returns; see
    /// [`mmap_deferred`](Self::mmap_deferred) to populate in the caller's own steps.
    pub fn mmap(
        &mut self,
        addr: usize,
        len: usize,
        prot: usize,
        flags: usize,
        file: Option<MmapFile>,
        offset: usize,
    ) -> Result<VirtAddr, VmError> {
        let (start, populate) = self.mmap_deferred(addr, len, prot, flags, file, offset)?;
        if populate {
            self.populate_mapping(start.0, start.0.saturating_add(len));
        }
        Ok(start)
    }

    /// [`mmap`](Self::mmap) without populating: returns the mapping's address and
    /// whether the mapping asks to be populated (eager mode, `MAP_POPULATE` without
    /// `MAP_NONBLOCK`, a mapping locked without `MCL_ONFAULT`), which the kernel does a
    /// piece at a time with [`fault_in`](Self::fault_in).
    pub fn mmap_deferred(
        &mut self,
        addr: usize,
        len: usize,
        prot: usize,
        flags: usize,
        file: Option<MmapFile>,
        offset: usize,
    ) -> Result<(VirtAddr, bool), VmError> {
        if !is_aligned(offset, PAGE_SIZE) {
            return Err(VmError::Inval);
        }
        let file = if flags & MAP_ANONYMOUS != 0 {
            None
        } else {
            Some(file.ok_or(VmError::BadFd)?)
        };
        let hugetlb = flags & MAP_HUGETLB != 0;
        if hugetlb && (file.is_some() || flags & MAP_TYPE != MAP_PRIVATE) {
            // Private anonymous only: no hugetlbfs, and shared memory has no huge pages.
            return Err(VmError::Inval);
        }
        if len == 0 {
            return Err(VmError::Inval);
        }
        // Explicit huge pages: whole 2 MiB pages at a 2 MiB boundary (Linux's hugetlb
        // rounds the length up and refuses an unaligned fixed address).
        let len = if hugetlb {
            if flags & MAP_FIXED != 0 && !is_aligned(addr, HUGE_PAGE_SIZE) {
                return Err(VmError::Inval);
            }
            align_up(len, HUGE_PAGE_SIZE).ok_or(VmError::NoMem)?
        } else {
            len
        };
        let mut flags = flags;
        if flags & MAP_FIXED_NOREPLACE != 0 {
            flags |= MAP_FIXED;
        }
        let fixed = flags & MAP_FIXED != 0;
        let addr = if fixed { addr } else { self.round_hint(addr) };
        let len = page_len(len).ok_or(VmError::NoMem)?;
        self.check_map_count(0)?;
        let huge_sized = file.is_none()
            && flags & MAP_TYPE == MAP_PRIVATE
            && len >= HUGE_PAGE_SIZE
            && (self.config.thp != Thp::Never || hugetlb);
        // A hint is honoured as usual, except by explicit huge pages, which need a 2 MiB
        // boundary.
        let start = match (fixed || (addr != 0 && !hugetlb), huge_sized) {
            // Large private anonymous mappings start on a 2 MiB boundary, so that huge
            // pages can cover them (Linux's `thp_get_unmapped_area`).
            (false, true) => match len
                .checked_add(HUGE_PAGE_SIZE)
                .map(|padded| self.get_unmapped_area(0, padded, false))
            {
                Some(Ok(at)) => align_up(at, HUGE_PAGE_SIZE).unwrap_or(at),
                _ => self.get_unmapped_area(addr, len, fixed)?,
            },
            _ => self.get_unmapped_area(addr, len, fixed)?,
        };
        let end = start + len;
        if flags & MAP_FIXED_NOREPLACE != 0 && self.intersects(start, end) {
            return Err(VmError::Exist);
        }
        let lock = match (flags & MAP_LOCKED != 0, self.def_lock) {
            (_, Lock::OnFault) => Lock::OnFault,
            (true, _) => Lock::Locked,
            (false, def) => def,
        };
        if flags & MAP_LOCKED != 0 && self.config.memlock_limit == Some(0) {
            return Err(VmError::Perm);
        }
        if lock.is_locked() {
            self.check_lock_limit(len)?;
        }
        let prot = Prot::from_bits_truncate((prot & (PROT_READ | PROT_WRITE | PROT_EXEC)) as u8);
        let grows_down = flags & MAP_GROWSDOWN != 0;
        let mut may_write = true;
        let backing = match file {
            Some(f) => {
                // Linux's file_mmap_ok: the mapped file range must fit in a signed offset.
                if (offset as u64)
                    .checked_add(len as u64)
                    .is_none_or(|e| e > i64::MAX as u64)
                {
                    return Err(VmError::Overflow);
                }
                let kind = flags & MAP_TYPE;
                match kind {
                    MAP_SHARED | MAP_SHARED_VALIDATE => {
                        let checked = if kind == MAP_SHARED {
                            flags & LEGACY_MAP_MASK
                        } else {
                            flags
                        };
                        if checked & !LEGACY_MAP_MASK != 0 {
                            return Err(VmError::OpNotSupp);
                        }
                        if prot.contains(Prot::WRITE) && !f.writable {
                            return Err(VmError::Access);
                        }
                        may_write = f.writable;
                    }
                    MAP_PRIVATE => {}
                    _ => return Err(VmError::Inval),
                }
                if !f.readable {
                    return Err(VmError::Access);
                }
                let Some(vm_file) = f.file else {
                    return Err(VmError::NoDev);
                };
                if kind != MAP_PRIVATE && f.writable && !vm_file.is_memory() {
                    return Err(VmError::NoDev);
                }
                if grows_down {
                    return Err(VmError::Inval);
                }
                if kind == MAP_PRIVATE {
                    Backing::File {
                        obj: vm_file,
                        offset: offset as u64,
                        file_end: u64::MAX,
                    }
                } else {
                    Backing::Shared {
                        obj: vm_file,
                        pgoff: (offset / PAGE_SIZE) as u64,
                    }
                }
            }
            None => match flags & MAP_TYPE {
                MAP_SHARED => {
                    if grows_down {
                        return Err(VmError::Inval);
                    }
                    let obj = MemObject::shared().map_err(|_| VmError::NoMem)?;
                    Backing::Shared { obj, pgoff: 0 }
                }
                MAP_PRIVATE => Backing::Anon,
                _ => return Err(VmError::Inval),
            },
        };
        self.check_as_limit(start, end)?;
        if fixed {
            self.check_unmap_split(start, end)?;
            self.prepare_change(start, end)?;
            self.unmap_range(start, end);
        }
        if lock.is_locked() {
            self.note_locking();
        }
        // A member of a shared object only once nothing can fail any more (an error above
        // left no area of it behind, so no membership either).
        if let Backing::Shared { obj, .. } = &backing {
            obj.join(self.id);
        }
        let mut area = Area::new(start, end, prot, backing, may_write, grows_down).locked(lock);
        if hugetlb {
            area.huge = HugeAdvice::Huge;
            self.huge_advised = true;
        }
        self.insert_area(area);
        if hugetlb && let Err(e) = self.populate_huge(start, end) {
            // No free 2 MiB block for every page: ENOMEM, as Linux without a hugetlb pool.
            self.unmap_range(start, end);
            return Err(e);
        }
        let populate = self.config.eager
            || lock == Lock::Locked
            || flags & (MAP_POPULATE | MAP_NONBLOCK) == MAP_POPULATE;
        Ok((VirtAddr(start), populate))
    }

    /// `EAGAIN` if locking `len` more bytes would pass `RLIMIT_MEMLOCK` (Linux's
    /// `mlock_future_check`, for locked mappings and a locked heap's growth).
    pub(super) fn check_lock_limit(&self, len: usize) -> Result<(), VmError> {
        match self.config.memlock_limit {
            Some(limit)
                if (len >> PAGE_SHIFT) + (self.locked_bytes() >> PAGE_SHIFT)
                    > limit >> PAGE_SHIFT =>
            {
                Err(VmError::Again)
            }
            _ => Ok(()),
        }
    }

    /// `munmap(addr, len)`: removes every mapping in the page-rounded range (holes are
    /// fine). `EINVAL` for a misaligned `addr`, length 0, or a range leaving the user half;
    /// `ENOMEM` if it would split an area while the space has `max_map_count` areas.
    pub fn munmap(&mut self, addr: usize, len: usize) -> Result<(), VmError> {
        let top = USER_END.0;
        if !is_aligned(addr, PAGE_SIZE) || addr > top || len > top - addr {
            return Err(VmError::Inval);
        }
        let len = page_len(len).ok_or(VmError::Inval)?;
        if len == 0 {
            return Err(VmError::Inval);
        }
        let end = addr + len;
        self.check_unmap_split(addr, end)?;
        self.prepare_change(addr, end)?;
        self.unmap_range(addr, end);
        Ok(())
    }

    /// `mprotect(addr, len, prot)`: changes the protection of every page in the range,
    /// splitting areas at its ends and merging neighbours that become alike.
    ///
    /// Linux's rules: `EINVAL` for a misaligned `addr`, unknown `prot` bits, both
    /// `PROT_GROWSDOWN` and `PROT_GROWSUP`, or a grows flag on a non-stack area; length 0
    /// succeeds; `ENOMEM` if the rounded range overflows or is not fully mapped, `EACCES`
    /// if `PROT_WRITE` is asked of an area that may never be written. The areas are
    /// processed in address order and a failure (a hole, `EACCES`) stops the walk *after*
    /// the earlier areas were changed, exactly as Linux leaves them.
    ///
    /// Present pages get the new permissions right away (copy-on-write and zero-page PTEs
    /// stay read-only); only pages that lose a permission are flushed.
    pub fn mprotect(&mut self, addr: usize, len: usize, prot: usize) -> Result<(), VmError> {
        if !is_aligned(addr, PAGE_SIZE) {
            return Err(VmError::Inval);
        }
        if len == 0 {
            return Ok(());
        }
        let len = page_len(len).ok_or(VmError::NoMem)?;
        let end = addr.checked_add(len).ok_or(VmError::NoMem)?;
        let grows = prot & (PROT_GROWSDOWN | PROT_GROWSUP);
        let prot = prot & !grows;
        if grows == PROT_GROWSDOWN | PROT_GROWSUP {
            return Err(VmError::Inval);
        }
        if prot & !(PROT_READ | PROT_WRITE | PROT_EXEC | PROT_SEM) != 0 {
            return Err(VmError::Inval);
        }
        let new = Prot::from_bits_truncate((prot & (PROT_READ | PROT_WRITE | PROT_EXEC)) as u8);
        let first = self.find_area(addr).ok_or(VmError::NoMem)?;
        let mut start = addr;
        if grows & PROT_GROWSDOWN != 0 {
            if first.start >= end {
                return Err(VmError::NoMem);
            }
            if !first.grows_down {
                return Err(VmError::Inval);
            }
            start = first.start;
        } else {
            if first.start > start {
                return Err(VmError::NoMem);
            }
            if grows & PROT_GROWSUP != 0 {
                return Err(VmError::Inval);
            }
        }
        let result = self.mprotect_walk(start, end, new);
        self.merge_range(start, end);
        result
    }

    fn mprotect_walk(&mut self, start: usize, end: usize, new: Prot) -> Result<(), VmError> {
        let mut at = start;
        loop {
            let area = self.area_at(at).ok_or(VmError::NoMem)?;
            if new.contains(Prot::WRITE) && !area.may_write {
                return Err(VmError::Access);
            }
            let stop = area.end.min(end);
            if area.prot != new {
                self.mmu
                    .attach_range(VirtAddr(at), VirtAddr(stop))
                    .map_err(|_| VmError::NoMem)?;
                for cut in [at, stop] {
                    self.cut_at(cut)?;
                }
                if let Some(area) = self.areas.get_mut(&at) {
                    area.prot = new;
                }
                self.reprotect_pages(at, stop, new);
            }
            at = stop;
            if at >= end {
                return Ok(());
            }
        }
    }

    /// Gives the present pages of `[start, end)` the permissions of protection `prot`,
    /// flushing only the pages that lost a permission.
    fn reprotect_pages(&mut self, start: usize, end: usize, prot: Prot) {
        let (writable, read_only) = (prot.pte_flags(false), prot.pte_flags(true));
        if writable == read_only {
            // No write in the new protection: every PTE gets the same flags (a
            // copy-on-write or zero page like any other), without the per-PTE choice
            // below (mprotect_1M: about 7 instructions a page less).
            let mut batch = StaleRange::default();
            self.mmu
                .update_range(VirtAddr(start), VirtAddr(end), |va, pte| {
                    if pte.flags == read_only {
                        return None;
                    }
                    if pte.flags.is_accessible() && !pte.flags.difference(read_only).is_empty() {
                        // `update_range` visits the PTEs in address order.
                        batch.add_ascending(va.0);
                    }
                    Some((read_only, pte.cow))
                });
            batch.emit(&mut self.mmu);
            return;
        }
        let zero = self.frames.zero_page();
        let huge_zero = self.frames.huge_zero_page();
        let mut batch = StaleRange::default();
        self.mmu
            .update_range(VirtAddr(start), VirtAddr(end), |va, pte| {
                // `maps_zero` spelled out: through the helper this closure measured 20,132
                // instructions for mprotect_1M against 18,980.
                let flags = if pte.cow || pte.pa == zero || (pte.huge && Some(pte.pa) == huge_zero)
                {
                    read_only
                } else {
                    writable
                };
                if flags == pte.flags {
                    return None;
                }
                if !pte.flags.difference(flags).is_empty() && pte.flags.is_accessible() {
                    // `update_range` visits the PTEs in address order.
                    batch.add_ascending(va.0);
                }
                Some((flags, pte.cow))
            });
        batch.emit(&mut self.mmu);
    }

    /// `brk(addr)`: moves the program break and returns the new one, or the old one if the
    /// request is refused (Linux's brk never fails with an errno).
    ///
    /// Below the initial break: refused (so `brk(0)` queries). Within the same page: only
    /// the recorded value changes. Shrinking always succeeds and unmaps the pages above the
    /// new break. Growing maps `[old, new)` read-write (merged with the heap area) unless
    /// that would come within one page of the next mapping (or within the guard gap of a
    /// stack), leave the user half, or the space has too many areas.
    pub fn brk(&mut self, addr: usize) -> VirtAddr {
        let orig = VirtAddr(self.brk);
        if addr < self.start_brk {
            return orig;
        }
        let (Some(newbrk), Some(oldbrk)) = (page_len(addr), page_len(self.brk)) else {
            return orig;
        };
        if newbrk == oldbrk {
            self.brk = addr;
            return VirtAddr(addr);
        }
        if addr <= self.brk {
            if self.check_unmap_split(newbrk, oldbrk).is_err()
                || self.prepare_change(newbrk, oldbrk).is_err()
            {
                return orig;
            }
            self.unmap_range(newbrk, oldbrk);
            self.brk = addr;
            return VirtAddr(addr);
        }
        if newbrk > USER_END.0 || oldbrk < self.config.mmap_min_addr {
            return orig;
        }
        if let Some(next) = self.find_area(oldbrk)
            && newbrk + PAGE_SIZE > next.start_gap(STACK_GUARD_GAP)
        {
            return orig;
        }
        // After mlockall(MCL_FUTURE) the new heap is locked (and populated), within
        // RLIMIT_MEMLOCK.
        let lock = self.def_lock;
        if lock.is_locked() && self.check_lock_limit(newbrk - oldbrk).is_err() {
            return orig;
        }
        if self.check_as_growth(newbrk - oldbrk).is_err() {
            return orig;
        }
        let heap = Area::new(
            oldbrk,
            newbrk,
            Prot::READ | Prot::WRITE,
            Backing::Anon,
            true,
            false,
        )
        .locked(lock);
        let extends = oldbrk
            .checked_sub(1)
            .and_then(|last| self.area_at(last))
            .is_some_and(|prev| prev.can_merge(&heap));
        if !extends && self.areas.len() > self.config.max_map_count {
            return orig;
        }
        self.insert_area(heap);
        self.brk = addr;
        if self.config.eager || lock == Lock::Locked {
            self.populate_mapping(oldbrk, newbrk);
        }
        VirtAddr(addr)
    }

    /// Sets the initial program break (exec: the page-rounded end of the bss). `EINVAL`
    /// if it is not inside the user half.
    pub fn init_brk(&mut self, start: VirtAddr) -> Result<(), VmError> {
        let start = page_len(start.0)
            .filter(|&s| s < USER_END.0)
            .ok_or(VmError::Inval)?;
        self.start_brk = start;
        self.brk = start;
        Ok(())
    }

    /// The current program break.
    pub fn current_brk(&self) -> VirtAddr {
        VirtAddr(self.brk)
    }

    /// `madvise(addr, len, advice)` for `MADV_NORMAL`, `MADV_RANDOM`, `MADV_SEQUENTIAL`,
    /// `MADV_WILLNEED` (accepted hints without effect) and `MADV_DONTNEED` (drop the pages
    /// of the mapped parts of the range). `EINVAL` for other advice, a misaligned `addr` or
    /// an overflowing range; length 0 succeeds; `ENOMEM` if part of the range is unmapped
    /// (after the mapped parts were processed, as Linux); `MADV_DONTNEED` on a locked
    /// area is `EINVAL`, after the areas before it were processed.
    pub fn madvise(&mut self, addr: usize, len: usize, advice: usize) -> Result<(), VmError> {
        if !matches!(
            advice,
            MADV_NORMAL
                | MADV_RANDOM
                | MADV_SEQUENTIAL
                | MADV_WILLNEED
                | MADV_DONTNEED
                | MADV_HUGEPAGE
                | MADV_NOHUGEPAGE
        ) {
            return Err(VmError::Inval);
        }
        if !is_aligned(addr, PAGE_SIZE) {
            return Err(VmError::Inval);
        }
        let len = page_len(len).ok_or(VmError::Inval)?;
        let end = addr.checked_add(len).ok_or(VmError::Inval)?;
        if end == addr {
            return Ok(());
        }
        let mut pieces: Vec<(usize, usize)> = Vec::new();
        let mut covered = 0;
        let mut at = addr;
        let mut locked = false;
        while let Some(area) = self.find_area(at).filter(|a| a.start < end) {
            if advice == MADV_DONTNEED && area.lock.is_locked() {
                // Linux refuses to drop locked pages: EINVAL at the first locked area,
                // the areas before it already processed.
                locked = true;
                break;
            }
            let (s, e) = (area.start.max(at), area.end.min(end));
            pieces.push((s, e));
            covered += e - s;
            at = e;
            if at >= end {
                break;
            }
        }
        if advice == MADV_DONTNEED {
            for (s, e) in pieces {
                self.prepare_change(s, e)?;
                self.zap(s, e);
            }
        } else if let MADV_HUGEPAGE | MADV_NOHUGEPAGE = advice {
            let huge = if advice == MADV_HUGEPAGE {
                HugeAdvice::Huge
            } else {
                HugeAdvice::Never
            };
            for (s, e) in pieces {
                self.advise_huge(s, e, huge)?;
            }
            self.merge_range(addr, end);
        }
        if locked {
            return Err(VmError::Inval);
        }
        if covered == end - addr {
            Ok(())
        } else {
            Err(VmError::NoMem)
        }
    }

    /// Records huge-page advice for `[start, end)` (inside one area), splitting the area
    /// at the ends when the advice differs (`ENOMEM` at the area limit, as `mprotect`).
    fn advise_huge(&mut self, start: usize, end: usize, huge: HugeAdvice) -> Result<(), VmError> {
        if self.area_at(start).is_none_or(|a| a.huge == huge) {
            return Ok(());
        }
        for cut in [start, end] {
            self.cut_at(cut)?;
        }
        if let Some(area) = self.areas.get_mut(&start) {
            area.huge = huge;
        }
        self.huge_advised |= huge == HugeAdvice::Huge;
        Ok(())
    }

    /// Exec: maps `[va, va + len)` privately from `file` at `offset`, with file contents for
    /// the first `file_bytes` bytes and zeros after (an ELF `PT_LOAD` segment with
    /// `p_filesz = file_bytes`, `p_memsz = len`, both rounded to pages at `va` by the
    /// caller). Replaces whatever was mapped there (like the ELF loader's `MAP_FIXED`).
    ///
    /// `EINVAL` if `va` or `offset` is not page aligned, `len` is 0 or `file_bytes > len`;
    /// `ENOMEM` if the range leaves the user half; `EPERM` below `mmap_min_addr`;
    /// `EOVERFLOW` if the file range overflows.
    pub fn map_file_private(
        &mut self,
        va: VirtAddr,
        len: usize,
        prot: Prot,
        file: Arc<MemObject>,
        offset: u64,
        file_bytes: usize,
    ) -> Result<(), VmError> {
        if !is_aligned(offset as usize, PAGE_SIZE) || file_bytes > len {
            return Err(VmError::Inval);
        }
        let (start, end) = self.check_fixed(va, len)?;
        let file_end = offset
            .checked_add(file_bytes as u64)
            .ok_or(VmError::Overflow)?;
        offset
            .checked_add((end - start) as u64)
            .ok_or(VmError::Overflow)?;
        let backing = Backing::File {
            obj: file,
            offset,
            file_end,
        };
        self.replace_with(Area::new(start, end, prot, backing, true, false))
    }

    /// Exec: maps `[va, va + len)` (page-rounded) as private anonymous memory with `prot`,
    /// replacing whatever was mapped there. Errors as [`AddressSpace::map_file_private`].
    pub fn map_anon(&mut self, va: VirtAddr, len: usize, prot: Prot) -> Result<(), VmError> {
        let (start, end) = self.check_fixed(va, len)?;
        self.replace_with(Area::new(start, end, prot, Backing::Anon, true, false))
    }

    /// Exec: creates the read-write stack area `[top - size, top)` (`size` page-rounded),
    /// which grows down on faults below it up to `stack_rlimit` bytes, keeping
    /// [`STACK_GUARD_GAP`] free above any lower mapping. Returns its range. `ENOMEM` if
    /// `size` exceeds `stack_rlimit` or does not fit below `top`; other errors as
    /// [`AddressSpace::map_file_private`].
    pub fn map_stack(&mut self, top: VirtAddr, size: usize) -> Result<VirtRange, VmError> {
        let size = page_len(size).ok_or(VmError::NoMem)?;
        if size > self.config.stack_rlimit {
            return Err(VmError::NoMem);
        }
        let bottom = top.0.checked_sub(size).ok_or(VmError::NoMem)?;
        let (start, end) = self.check_fixed(VirtAddr(bottom), size)?;
        let stack = Area::new(
            start,
            end,
            Prot::READ | Prot::WRITE,
            Backing::Anon,
            true,
            true,
        );
        self.replace_with(stack)?;
        Ok(VirtAddr(start)..VirtAddr(end))
    }

    // ---- helpers -------------------------------------------------------------------

    /// Validates a fixed range for the exec mappers; returns it page-rounded.
    fn check_fixed(&self, va: VirtAddr, len: usize) -> Result<(usize, usize), VmError> {
        if !va.is_page_aligned() || len == 0 {
            return Err(VmError::Inval);
        }
        let len = page_len(len).ok_or(VmError::NoMem)?;
        let end =
            va.0.checked_add(len)
                .filter(|&e| e <= USER_END.0)
                .ok_or(VmError::NoMem)?;
        if va.0 < self.config.mmap_min_addr {
            return Err(VmError::Perm);
        }
        Ok((va.0, end))
    }

    /// Replaces everything in the area's range by the area.
    fn replace_with(&mut self, area: Area) -> Result<(), VmError> {
        self.check_map_count(0)?;
        self.check_as_limit(area.start, area.end)?;
        self.check_unmap_split(area.start, area.end)?;
        self.prepare_change(area.start, area.end)?;
        self.unmap_range(area.start, area.end);
        let (start, end) = (area.start, area.end);
        self.insert_area(area);
        if self.config.eager {
            self.populate_mapping(start, end);
        }
        Ok(())
    }

    /// `ENOMEM` if the space has more than `max_map_count` areas once `margin` more are
    /// counted (`mmap` checks with 0, as Linux; `mremap` keeps Linux's margin for the
    /// splits a move may make).
    pub(super) fn check_map_count(&self, margin: usize) -> Result<(), VmError> {
        if self.areas.len() + margin > self.config.max_map_count {
            return Err(VmError::NoMem);
        }
        Ok(())
    }

    /// `ENOMEM` if unmapping `[start, end)` would cut one area in three while the space
    /// is at its area limit.
    pub(super) fn check_unmap_split(&self, start: usize, end: usize) -> Result<(), VmError> {
        match self.area_at(start) {
            Some(a)
                if a.start < start
                    && a.end > end
                    && self.areas.len() >= self.config.max_map_count =>
            {
                Err(VmError::NoMem)
            }
            _ => Ok(()),
        }
    }

    /// Unmaps the pages and removes the areas of `[start, end)`.
    pub(super) fn unmap_range(&mut self, start: usize, end: usize) {
        self.zap(start, end);
        self.remove_areas(start, end);
    }

    /// Linux's `round_hint_to_min`: a non-zero hint is rounded down to a page and raised
    /// to `mmap_min_addr`.
    pub(super) fn round_hint(&self, hint: usize) -> usize {
        let hint = hint & !(PAGE_SIZE - 1);
        let min = self.config.mmap_min_addr;
        if hint != 0 && hint < min {
            page_len(min).unwrap_or(min)
        } else {
            hint
        }
    }

    /// Linux's `get_unmapped_area` with the top-down layout.
    pub(super) fn get_unmapped_area(
        &self,
        addr: usize,
        len: usize,
        fixed: bool,
    ) -> Result<usize, VmError> {
        let top = USER_END.0;
        let min = self.config.mmap_min_addr;
        if len > top || len > top - min {
            return Err(VmError::NoMem);
        }
        let addr = if fixed { addr } else { self.place(addr, len)? };
        if addr > top - len {
            return Err(VmError::NoMem);
        }
        if !is_aligned(addr, PAGE_SIZE) {
            return Err(VmError::Inval);
        }
        if addr < min {
            return Err(VmError::Perm);
        }
        Ok(addr)
    }

    /// Chooses an address for a non-fixed mapping of `len` bytes: the hint if free, else
    /// top-down below `mmap_base`, else bottom-up above `TASK_UNMAPPED_BASE`.
    pub(super) fn place(&self, hint: usize, len: usize) -> Result<usize, VmError> {
        let top = USER_END.0;
        let min = self.config.mmap_min_addr;
        if hint != 0
            && let Some(hint) = page_len(hint)
            && top - len >= hint
            && hint >= min
            && self
                .find_area(hint)
                .is_none_or(|a| hint + len <= a.start_gap(STACK_GUARD_GAP))
        {
            return Ok(hint);
        }
        let low = min.max(PAGE_SIZE);
        self.search_top_down(len, low, self.mmap_base)
            .or_else(|| self.search_bottom_up(len, TASK_UNMAPPED_BASE.max(low), top))
            .ok_or(VmError::NoMem)
    }

    /// The highest `a` with `low <= a`, `a + len <= high` and `[a, a + len)` clear of every
    /// area and every stack's guard gap.
    fn search_top_down(&self, len: usize, low: usize, high: usize) -> Option<usize> {
        let mut ceiling = high;
        for area in self
            .areas
            .range(..high.saturating_add(STACK_GUARD_GAP))
            .map(|(_, a)| a)
            .rev()
        {
            if ceiling < low.checked_add(len)? {
                return None;
            }
            if ceiling >= area.end.checked_add(len)? {
                return Some(ceiling - len);
            }
            ceiling = ceiling.min(area.start_gap(STACK_GUARD_GAP));
        }
        (ceiling >= low.checked_add(len)?).then(|| ceiling - len)
    }

    /// The lowest `a` with `low <= a`, `a + len <= high` and `[a, a + len)` clear of every
    /// area and every stack's guard gap.
    fn search_bottom_up(&self, len: usize, low: usize, high: usize) -> Option<usize> {
        let mut floor = low;
        for area in self.areas.values().filter(|a| a.end > low) {
            if floor.checked_add(len)? > high {
                return None;
            }
            if area.start_gap(STACK_GUARD_GAP) >= floor + len {
                return Some(floor);
            }
            floor = floor.max(area.end);
        }
        (floor.checked_add(len)? <= high).then_some(floor)
    }

    /// Faults in every page of `[start, end)` as `MAP_POPULATE` asks (write faults for
    /// private writable memory, read faults otherwise; inaccessible areas and holes
    /// skipped), for a kernel that populates a large range a piece at a time (between
    /// pieces it may reschedule and act on a fatal signal). `ENOMEM` when memory ran out:
    /// the pages before the one that failed stay populated. Other fault errors (a file
    /// page past the end of its file) skip that page, as Linux's `mm_populate` does.
    pub fn populate(&mut self, start: VirtAddr, end: VirtAddr) -> Result<(), VmError> {
        for va in (start.0 & !(PAGE_SIZE - 1)..end.0).step_by(PAGE_SIZE) {
            let Some(area) = self.area_at(va).filter(|a| a.lock != Lock::OnFault) else {
                continue;
            };
            let access = if area.prot.contains(Prot::WRITE) && !area.is_shared() {
                Access::Write
            } else if area.allows(Access::Read) {
                Access::Read
            } else {
                continue;
            };
            // Any other failure skips the page.
            if let Err(FaultError::OutOfMemory) = self.handle_fault(VirtAddr(va), access) {
                return Err(VmError::NoMem);
            }
        }
        Ok(())
    }

    /// [`populate`](Self::populate) for the mapping calls themselves (eager mode,
    /// `MAP_POPULATE`, `MAP_LOCKED`): running out of memory is ignored like Linux's
    /// `mm_populate` ignores it; the mapping itself succeeded.
    fn populate_mapping(&mut self, start: usize, end: usize) {
        let _ = self.populate(VirtAddr(start), VirtAddr(end));
    }
}
