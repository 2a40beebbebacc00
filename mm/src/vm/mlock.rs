//! Locked and resident memory: `mlock`, `mlock2`, `munlock`, `mlockall`, `munlockall`
//! and `mincore`, with Linux 6.1's semantics.
//!
//! The lock is a property of an area ([`Lock`]): it is split and merged with the area,
//! so `mprotect`, `munmap` and `MAP_FIXED` over part of a locked range keep the rest
//! locked, and it is never inherited: `fork` gives the child unlocked areas and no
//! `mlockall(MCL_FUTURE)`, `execve` starts from a new space. Reclaim asks
//! [`mapped_by_locked_area`] before it takes a page, and keeps a page any locked area maps.
//!
//! ```text
//!   mlock(addr, len)      ─► lock_range: areas of [start, end) split at its ends, marked
//!                            Locked (holes: ENOMEM after the areas before them), merged
//!                         ─► the kernel faults the range in, a piece at a time
//!                            (fault_in: swapped-out pages come back, memory is reclaimed)
//!   mlock2(.., ONFAULT)   ─► marked OnFault, nothing faulted in
//!   munlock               ─► marked Unlocked
//!   mlockall(flags)       ─► every area (MCL_CURRENT), new mappings (MCL_FUTURE: def_lock)
//!   VmLck                 = bytes of locked areas (Linux's locked_vm)
//!   Mlocked               = resident pages (not the zero page) in locked areas
//! ```
//!
//! `RLIMIT_MEMLOCK` is [`VmConfig::memlock_limit`](super::VmConfig::memlock_limit):
//! `None` stands for `CAP_IPC_LOCK`, which Linux lets lock any amount; with a limit, a
//! limit of 0 refuses every lock (`EPERM`) and passing it is `ENOMEM` for `mlock` and
//! `mlockall(MCL_CURRENT)`, `EAGAIN` for a locked mapping (see `mmap.rs`).

use super::abi::{MCL_CURRENT, MCL_FUTURE, MCL_ONFAULT, MLOCK_ONFAULT};
use super::area::{Backing, Lock, Prot};
use super::hal::{FrameSource, Mmu, PteState, SwapEntry};
use super::rmap::{SpaceSet, for_each_mapping};
use super::space::{AddressSpace, spaces_may_lock};
use super::{Access, FaultError, VmError};
use crate::addr::{PAGE_SHIFT, PAGE_SIZE, PhysAddr, VirtAddr};
use crate::layout::USER_END;

/// Linux's `PAGE_ALIGN(len + offset_in_page(addr))` and `addr & PAGE_MASK`, in wrapping
/// arithmetic as Linux computes them (so `mlock(p, SIZE_MAX)` locks nothing and
/// succeeds, and a length that wraps past the top is `EINVAL` later).
fn linux_page_range(addr: usize, len: usize) -> (usize, usize) {
    let off = addr & (PAGE_SIZE - 1);
    let len = len.wrapping_add(off).wrapping_add(PAGE_SIZE - 1) & !(PAGE_SIZE - 1);
    (addr & !(PAGE_SIZE - 1), len)
}

impl<M: Mmu, F: FrameSource + Clone> AddressSpace<M, F> {
    /// Whether `va` lies in a locked area (its page may never be reclaimed).
    pub fn is_locked(&self, va: VirtAddr) -> bool {
        self.area_at(va.0).is_some_and(|a| a.lock.is_locked())
    }

    /// Bytes of locked areas: `VmLck` in `/proc/PID/status` (Linux's `locked_vm`, which
    /// counts locked areas whether or not their pages are present).
    pub fn locked_bytes(&self) -> usize {
        self.areas
            .values()
            .filter(|a| a.lock.is_locked())
            .map(|a| a.end - a.start)
            .sum()
    }

    /// Pages present in locked areas, the shared zero page not counted: this space's
    /// share of `Mlocked` in `/proc/meminfo`.
    pub fn locked_resident_pages(&self) -> usize {
        self.areas
            .values()
            .filter(|a| a.lock.is_locked())
            .map(|a| self.present_pages(a.start, a.end))
            .sum()
    }

    /// Pages present in `[start, end)` (inside one area) that are not a zero page.
    fn present_pages(&self, start: usize, end: usize) -> usize {
        let mut n = 0;
        let mut at = VirtAddr(start);
        while let Some((va, pte)) = self.mmu.next_mapped(at, VirtAddr(end)) {
            let pages = Self::leaf_pages(&pte);
            if !self.is_zero_frame(pte.pa) {
                n += pages;
            }
            at = VirtAddr(va.0 + pages * PAGE_SIZE);
        }
        n
    }

    /// The page count `mlock` and `mlockall` hold against `RLIMIT_MEMLOCK`.
    fn locked_pages(&self) -> usize {
        self.locked_bytes() >> PAGE_SHIFT
    }

    /// Locked bytes already inside `[start, end)` (Linux's `count_mm_mlocked_page_nr`).
    fn locked_within(&self, start: usize, end: usize) -> usize {
        self.areas
            .range(..end)
            .map(|(_, a)| a)
            .filter(|a| a.lock.is_locked() && a.end > start)
            .map(|a| a.end.min(end) - a.start.max(start))
            .sum()
    }

    /// `EPERM` when the limit forbids every lock (Linux's `can_do_mlock`: a zero
    /// `RLIMIT_MEMLOCK` without `CAP_IPC_LOCK`).
    fn can_lock(&self) -> Result<(), VmError> {
        match self.config.memlock_limit {
            Some(0) => Err(VmError::Perm),
            _ => Ok(()),
        }
    }

    /// `mlock(addr, len)` and `mlock2(addr, len, flags)`: locks the areas of the
    /// page-rounded range (`addr` need not be aligned). Returns the range the kernel
    /// must then fault in ([`fault_in`](Self::fault_in)), empty with `MLOCK_ONFAULT`.
    ///
    /// Linux's order: `EINVAL` for flags other than `MLOCK_ONFAULT`; `EPERM` if the limit
    /// is 0; `ENOMEM` if the locked pages would pass `RLIMIT_MEMLOCK` (pages of the range
    /// already locked count once); `EINVAL` if the range wraps; length 0 succeeds; then
    /// the areas are locked in address order and a hole is `ENOMEM` after the areas
    /// before it were locked, as is a split refused at the area limit.
    pub fn mlock(
        &mut self,
        addr: usize,
        len: usize,
        flags: usize,
    ) -> Result<core::ops::Range<VirtAddr>, VmError> {
        if flags & !MLOCK_ONFAULT != 0 {
            return Err(VmError::Inval);
        }
        self.can_lock()?;
        let (start, len) = linux_page_range(addr, len);
        if let Some(limit) = self.config.memlock_limit {
            let mut locked = (len >> PAGE_SHIFT) + self.locked_pages();
            if locked > limit >> PAGE_SHIFT {
                let end = start.saturating_add(len);
                locked -= self.locked_within(start, end) >> PAGE_SHIFT;
            }
            if locked > limit >> PAGE_SHIFT {
                return Err(VmError::NoMem);
            }
        }
        let lock = if flags & MLOCK_ONFAULT != 0 {
            Lock::OnFault
        } else {
            Lock::Locked
        };
        let end = self.apply_lock(start, len, lock)?;
        Ok(match lock {
            Lock::Locked => VirtAddr(start)..VirtAddr(end),
            _ => VirtAddr(start)..VirtAddr(start),
        })
    }

    /// `munlock(addr, len)`: unlocks the areas of the page-rounded range. `EINVAL` if it
    /// wraps, `ENOMEM` at a hole (after the areas before it were unlocked); length 0
    /// succeeds.
    pub fn munlock(&mut self, addr: usize, len: usize) -> Result<(), VmError> {
        let (start, len) = linux_page_range(addr, len);
        self.apply_lock(start, len, Lock::Unlocked).map(|_| ())
    }

    /// Gives every area of `[start, start + len)` the lock `lock` (Linux's
    /// `apply_vma_lock_flags`); returns the end of the range.
    fn apply_lock(&mut self, start: usize, len: usize, lock: Lock) -> Result<usize, VmError> {
        let end = start.wrapping_add(len);
        if end < start {
            return Err(VmError::Inval);
        }
        if end == start {
            return Ok(end);
        }
        if self.area_at(start).is_none() {
            return Err(VmError::NoMem);
        }
        if lock.is_locked() {
            self.note_locking();
        }
        let result = self.lock_walk(start, end, lock);
        self.merge_range(start, end);
        result.map(|()| end)
    }

    fn lock_walk(&mut self, start: usize, end: usize, lock: Lock) -> Result<(), VmError> {
        let mut at = start;
        loop {
            let area = self.area_at(at).ok_or(VmError::NoMem)?;
            let stop = area.end.min(end);
            if area.lock != lock {
                for cut in [at, stop] {
                    self.cut_at(cut)?;
                }
                if let Some(area) = self.areas.get_mut(&at) {
                    area.lock = lock;
                }
            }
            at = stop;
            if at >= end {
                return Ok(());
            }
        }
    }

    /// `mlockall(flags)`: `MCL_CURRENT` locks every area, `MCL_FUTURE` every mapping made
    /// later (until `munlockall`, or an `mlockall` without it), `MCL_ONFAULT` makes
    /// either lock pages only as they are touched. Returns whether the kernel must then
    /// fault every area in (`MCL_CURRENT` without `MCL_ONFAULT`; failures are ignored).
    ///
    /// `EINVAL` for no flag, an unknown one, or `MCL_ONFAULT` alone; `EPERM` if the limit
    /// is 0; `ENOMEM` with `MCL_CURRENT` if the whole space is larger than the limit.
    pub fn mlockall(&mut self, flags: usize) -> Result<bool, VmError> {
        if flags == 0 || flags & !(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) != 0 {
            return Err(VmError::Inval);
        }
        if flags == MCL_ONFAULT {
            return Err(VmError::Inval);
        }
        self.can_lock()?;
        if flags & MCL_CURRENT != 0
            && let Some(limit) = self.config.memlock_limit
        {
            let total: usize = self.areas.values().map(|a| a.end - a.start).sum();
            if total >> PAGE_SHIFT > limit >> PAGE_SHIFT {
                return Err(VmError::NoMem);
            }
        }
        let lock = if flags & MCL_ONFAULT != 0 {
            Lock::OnFault
        } else {
            Lock::Locked
        };
        self.note_locking();
        self.def_lock = if flags & MCL_FUTURE != 0 {
            lock
        } else {
            Lock::Unlocked
        };
        if flags & MCL_CURRENT == 0 {
            return Ok(false);
        }
        self.lock_all(lock);
        Ok(lock == Lock::Locked)
    }

    /// `munlockall()`: unlocks every area and ends `MCL_FUTURE`.
    pub fn munlockall(&mut self) {
        self.def_lock = Lock::Unlocked;
        self.lock_all(Lock::Unlocked);
    }

    /// Gives every area the lock `lock` (whole areas: nothing is split), then merges.
    fn lock_all(&mut self, lock: Lock) {
        for area in self.areas.values_mut() {
            area.lock = lock;
        }
        self.merge_range(0, USER_END.0);
    }

    /// Faults in the pages of `[from, end)` for `mlock`, `mlockall` and locked mappings,
    /// at most `budget` pages of areas per call (holes are skipped for free). Writable
    /// private pages are faulted for writing (copy-on-write is broken, the zero page
    /// replaced), the others for reading (or executing, for execute-only areas); pages
    /// already mapped with that right and `MLOCK_ONFAULT` areas are skipped.
    ///
    /// `Ok(None)` when the range is done, `Ok(Some(va))` when the budget ran out (call
    /// again from `va`). `Err((va, e))` stops at page `va`: a page in swap
    /// ([`FaultError::SwappedOut`]: the kernel reads it back, then calls again from
    /// `va`), no memory ([`FaultError::OutOfMemory`]), or, unless `ignore_errors`, a page
    /// that cannot be faulted in (a `PROT_NONE` area, a file page past the end of its
    /// file), which `mlock` reports as `ENOMEM` as Linux does. With `ignore_errors`
    /// (`mlockall`, `MAP_LOCKED`) such pages are skipped.
    pub fn fault_in(
        &mut self,
        from: VirtAddr,
        end: VirtAddr,
        budget: usize,
        ignore_errors: bool,
    ) -> Result<Option<VirtAddr>, (VirtAddr, FaultError)> {
        let mut va = from.0 & !(PAGE_SIZE - 1);
        let mut left = budget;
        while va < end.0 {
            let Some(area) = self.find_area(va).filter(|a| a.start < end.0) else {
                return Ok(None);
            };
            va = va.max(area.start);
            let stop = area.end.min(end.0);
            if area.lock == Lock::OnFault {
                va = stop;
                continue;
            }
            let access = if area.prot.contains(Prot::WRITE) && !area.is_shared() {
                Access::Write
            } else if area.allows(Access::Read) {
                Access::Read
            } else if area.allows(Access::Exec) {
                Access::Exec
            } else if ignore_errors {
                va = stop;
                continue;
            } else {
                return Err((VirtAddr(va), FaultError::AccessDenied));
            };
            while va < stop {
                if left == 0 {
                    return Ok(Some(VirtAddr(va)));
                }
                left -= 1;
                let ready = self
                    .mmu
                    .query(VirtAddr(va))
                    .present()
                    .is_some_and(|pte| pte.flags.contains(access.pte_flag()));
                if !ready {
                    match self.handle_fault(VirtAddr(va), access) {
                        Ok(_) => {}
                        Err(e @ (FaultError::SwappedOut(_) | FaultError::OutOfMemory)) => {
                            return Err((VirtAddr(va), e));
                        }
                        Err(_) if ignore_errors => {}
                        Err(e) => return Err((VirtAddr(va), e)),
                    }
                }
                va += PAGE_SIZE;
            }
        }
        Ok(None)
    }

    /// `mincore`'s argument checks: `EINVAL` for a misaligned `addr`, `ENOMEM` for a
    /// range leaving the user half. Returns the number of pages (and bytes of the
    /// vector): `len` rounded up to pages.
    pub fn mincore_pages(addr: usize, len: usize) -> Result<usize, VmError> {
        if addr & (PAGE_SIZE - 1) != 0 {
            return Err(VmError::Inval);
        }
        if addr.checked_add(len).is_none_or(|e| e > USER_END.0) {
            return Err(VmError::NoMem);
        }
        Ok(len.div_ceil(PAGE_SIZE))
    }

    /// One step of `mincore`: the residency of the pages from `start` (page aligned) to
    /// the end of its area or of `vec`, one byte each, 1 if the page is resident and 0 if
    /// not; returns the number of bytes written. `ENOMEM` if no area contains `start`
    /// (the kernel's loop continues with the next area, so a hole ends the call with
    /// `ENOMEM` after the pages before it were reported, as on Linux).
    ///
    /// Resident: a present PTE (the zero page too); a swapped-out page whose slot the
    /// swap cache still holds (`in_swap_cache`); an untouched page of a shared object
    /// that holds it; an untouched page of a file (pagoda's files are in memory), up to
    /// its end and, for private mappings, its file bytes. Not resident: untouched
    /// anonymous memory, a page in swap and not in the cache.
    pub fn mincore(
        &self,
        start: VirtAddr,
        vec: &mut [u8],
        mut in_swap_cache: impl FnMut(SwapEntry) -> bool,
    ) -> Result<usize, VmError> {
        let area = self.area_at(start.0).ok_or(VmError::NoMem)?;
        let pages = ((area.end - start.0) >> PAGE_SHIFT).min(vec.len());
        for (i, byte) in vec[..pages].iter_mut().enumerate() {
            let va = start.0 + (i << PAGE_SHIFT);
            let resident = match self.mmu.query(VirtAddr(va)) {
                PteState::Present(_) => true,
                PteState::Remembered(entry) => in_swap_cache(entry),
                PteState::Absent => {
                    let index = ((va - area.start) >> PAGE_SHIFT) as u64;
                    match &area.backing {
                        Backing::Anon => false,
                        Backing::Shared { obj, pgoff } => {
                            obj.resident(pgoff + index).is_some()
                                || obj
                                    .vm_file()
                                    .is_some_and(|f| ((pgoff + index) << PAGE_SHIFT) < f.size())
                        }
                        Backing::File {
                            obj,
                            offset,
                            file_end,
                        } => {
                            let off = offset + (index << PAGE_SHIFT);
                            off < *file_end && obj.vm_file().is_some_and(|f| off < f.size())
                        }
                    }
                }
            };
            *byte = u8::from(resident);
        }
        Ok(pages)
    }
}

/// Whether any PTE mapping the frame `pa`, in any space of `spaces`, lies in a locked
/// area: reclaim must then keep the frame. Free (no walk) while no live space has ever
/// locked an area.
pub fn mapped_by_locked_area<M, F, S>(frames: &F, pa: PhysAddr, spaces: &mut S) -> bool
where
    M: Mmu,
    F: FrameSource + Clone,
    S: SpaceSet<M, F>,
{
    if !spaces_may_lock() {
        return false;
    }
    let mut locked = false;
    for_each_mapping(frames, pa, spaces, |space, va, _| {
        locked |= space.is_locked(va);
    });
    locked
}
