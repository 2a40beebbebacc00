//! `mremap`: resizing and moving a mapping with Linux 6.1's semantics, by moving page-table
//! entries, never page contents.
//!
//! ```text
//!  shrink           [A ───── old ─────)            → [A ── new ──)   tail unmapped
//!  grow in place    [A ── old ──)  free            → [A ───── new ─────)
//!  move (MAYMOVE)   [A ── old ──)[B ...   free     → hole            [D ── new ──────)
//!                   every PTE and swap entry of old goes to the same offset of new;
//!                   the old translations are flushed on every hart that ran the space
//!                   before the call returns
//! ```
//!
//! A moved area keeps its protection, flags, lock, backing and offsets, and the index
//! its private pages have in the family's anonymous object ([`Area::anon_pgoff`], Linux's
//! `vm_pgoff`), so their owner words stay valid and the reverse map finds them at their
//! new address; a page still shared copy-on-write with another space stays so.

use super::Thp;
use super::VmError;
use super::abi::{MREMAP_DONTUNMAP, MREMAP_FIXED, MREMAP_MAYMOVE};
use super::area::{Area, Lock};
use super::hal::{FrameSource, Mmu};
use super::mmap::page_len;
use super::space::AddressSpace;
use crate::addr::{PAGE_SIZE, VirtAddr, VirtRange, is_aligned};
use crate::layout::{HUGE_PAGE_SIZE, USER_END};

/// Area-count margin a move keeps below `max_map_count` (Linux's `move_vma`: the splits at
/// both ends of the old range and at the new one may add areas).
const MOVE_MAP_MARGIN: usize = 4;

/// What [`AddressSpace::mremap`] did: the mapping's address, and the range the kernel
/// should fault in now (the grown part of a locked area, or any grown part in eager
/// mode), as it does after `mmap` with `MAP_LOCKED`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Remapped {
    /// The start of the mapping after the call (the old address unless it moved).
    pub addr: VirtAddr,
    /// Pages to populate, if any.
    pub populate: Option<VirtRange>,
}

impl Remapped {
    fn at(addr: usize) -> Self {
        Remapped {
            addr: VirtAddr(addr),
            populate: None,
        }
    }
}

impl<M: Mmu, F: FrameSource + Clone> AddressSpace<M, F> {
    /// `mremap(old_address, old_size, new_size, flags, new_address)`.
    ///
    /// Errors, in Linux's order: `EINVAL` for flags other than `MREMAP_MAYMOVE`,
    /// `MREMAP_FIXED` and `MREMAP_DONTUNMAP`, `FIXED` or `DONTUNMAP` without `MAYMOVE`,
    /// `DONTUNMAP` with a size change, a misaligned `old_address`, or a `new_size` that
    /// rounds to 0; `EFAULT` if no area contains `old_address`. Then:
    ///
    /// - `FIXED` / `DONTUNMAP` ([`mremap_to`](Self::mremap_to)): `EINVAL` for a
    ///   misaligned `new_address`, a new range past the user half or overlapping the old
    ///   one; `ENOMEM` near the area limit; with `FIXED` whatever is mapped at the new
    ///   range is unmapped first, and a shrink unmaps the old range's tail; then the
    ///   checks of a resize (below); `EPERM` for a new range below `mmap_min_addr`.
    /// - otherwise a shrink (or same size) unmaps the tail and returns `old_address`;
    ///   a growth checks the old range: `EINVAL` for `old_size` 0 of a private mapping
    ///   (of a shared one, with `MAYMOVE` or `FIXED`, a second mapping of the same pages
    ///   is made and the old one stays, as Linux does), `EFAULT` if it leaves its area, `EAGAIN` past
    ///   `RLIMIT_MEMLOCK` for a locked area; it grows in place if it ends where its area
    ///   ends and the pages after it are free, else moves with `MAYMOVE` (placed as a
    ///   non-fixed `mmap`), else `ENOMEM`.
    ///
    /// A move installs every present PTE and swap entry of the old range at the same
    /// offset of the new one (no page copied, no reference count touched) and flushes the
    /// old translations everywhere before returning; `ENOMEM` if a page-table page is
    /// missing (then nothing moved). The new area keeps the old one's protection, lock,
    /// backing and offsets; the old range is unmapped, or with `DONTUNMAP` stays mapped,
    /// empty and unlocked (faults there then give fresh pages: zeros for anonymous
    /// memory, the file or object's pages otherwise, as Linux since 5.13).
    pub fn mremap(
        &mut self,
        old_addr: usize,
        old_len: usize,
        new_len: usize,
        flags: usize,
        new_addr: usize,
    ) -> Result<Remapped, VmError> {
        if flags & !(MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP) != 0 {
            return Err(VmError::Inval);
        }
        let may_move = flags & MREMAP_MAYMOVE != 0;
        if flags & MREMAP_FIXED != 0 && !may_move {
            return Err(VmError::Inval);
        }
        if flags & MREMAP_DONTUNMAP != 0 && (!may_move || old_len != new_len) {
            return Err(VmError::Inval);
        }
        if !is_aligned(old_addr, PAGE_SIZE) {
            return Err(VmError::Inval);
        }
        // Linux's PAGE_ALIGN wraps to 0 on overflow: an impossible length is EINVAL.
        let old_len = page_len(old_len).unwrap_or(0);
        let new_len = page_len(new_len)
            .filter(|&l| l != 0)
            .ok_or(VmError::Inval)?;
        if self.area_at(old_addr).is_none() {
            return Err(VmError::Fault);
        }
        if flags & (MREMAP_FIXED | MREMAP_DONTUNMAP) != 0 {
            return self.mremap_to(old_addr, old_len, new_addr, new_len, flags);
        }
        if old_len >= new_len {
            if old_len > new_len {
                // A tail past the user half is munmap's EINVAL.
                let tail = old_addr.checked_add(new_len).ok_or(VmError::Inval)?;
                self.munmap(tail, old_len - new_len)?;
            }
            return Ok(Remapped::at(old_addr));
        }
        let area = self.area_to_resize(old_addr, old_len, new_len)?;
        let (area_start, area_end, lock) = (area.start, area.end, area.lock);
        let old_end = old_addr + old_len;
        let new_end = old_addr.checked_add(new_len).filter(|&e| e <= USER_END.0);
        if old_end == area_end
            && let Some(new_end) = new_end
            && !self.intersects(old_end, new_end)
        {
            // Grow in place: the area takes the free pages after it.
            if let Some(area) = self.areas.get_mut(&area_start) {
                area.end = new_end;
            }
            self.merge_range(area_start, new_end);
            let populate = (lock == Lock::Locked || self.config.eager)
                .then_some(VirtAddr(old_end)..VirtAddr(new_end));
            return Ok(Remapped {
                addr: VirtAddr(old_addr),
                populate,
            });
        }
        if !may_move {
            return Err(VmError::NoMem);
        }
        let dst = self.place_like(old_addr, new_len)?;
        self.move_mapping(old_addr, old_len, dst, new_len, false)
    }

    /// A free place for `len` bytes moved from `src`: one at the same offset in a 2 MiB
    /// range as `src` when the mapping is large enough to hold huge pages (so its 2 MiB
    /// leaves move whole), else wherever [`place`](Self::place) puts it.
    fn place_like(&self, src: usize, len: usize) -> Result<usize, VmError> {
        if self.config.thp != Thp::Never
            && len >= HUGE_PAGE_SIZE
            && let Some(padded) = len.checked_add(HUGE_PAGE_SIZE)
            && let Ok(at) = self.place(0, padded)
        {
            return Ok(at + (src.wrapping_sub(at) & (HUGE_PAGE_SIZE - 1)));
        }
        self.place(0, len)
    }

    /// `mremap` with `MREMAP_FIXED` or `MREMAP_DONTUNMAP` (Linux's `mremap_to`).
    fn mremap_to(
        &mut self,
        old_addr: usize,
        old_len: usize,
        new_addr: usize,
        new_len: usize,
        flags: usize,
    ) -> Result<Remapped, VmError> {
        let top = USER_END.0;
        if !is_aligned(new_addr, PAGE_SIZE) || new_len > top || new_addr > top - new_len {
            return Err(VmError::Inval);
        }
        if old_addr.saturating_add(old_len) > new_addr && new_addr + new_len > old_addr {
            return Err(VmError::Inval);
        }
        self.check_map_count(MOVE_MAP_MARGIN + 2)?;
        let fixed = flags & MREMAP_FIXED != 0;
        if fixed {
            self.munmap(new_addr, new_len)?;
        }
        let mut old_len = old_len;
        if old_len > new_len {
            self.munmap(old_addr + new_len, old_len - new_len)?;
            old_len = new_len;
        }
        self.area_to_resize(old_addr, old_len, new_len)?;
        if flags & MREMAP_DONTUNMAP != 0 {
            // The old range stays mapped beside the new one.
            self.check_as_growth(old_len)?;
        }
        let dst = self.get_unmapped_area(new_addr, new_len, fixed)?;
        self.move_mapping(
            old_addr,
            old_len,
            dst,
            new_len,
            flags & MREMAP_DONTUNMAP != 0,
        )
    }

    /// The area holding the old range of a resize (Linux's `vma_to_resize`): `EFAULT` if
    /// none contains `old_addr` or the range leaves it, `EINVAL` for `old_len` 0 of a
    /// private mapping, and for
    /// a growth `EINVAL` if the file offset overflows, `EAGAIN` for a locked area past
    /// `RLIMIT_MEMLOCK`, `ENOMEM` past `RLIMIT_AS`.
    fn area_to_resize(
        &self,
        old_addr: usize,
        old_len: usize,
        new_len: usize,
    ) -> Result<&Area, VmError> {
        let area = self.area_at(old_addr).ok_or(VmError::Fault)?;
        if old_len == 0 && !area.is_shared() {
            // Linux duplicates only shared mappings this way.
            return Err(VmError::Inval);
        }
        if old_len > area.end - old_addr {
            return Err(VmError::Fault);
        }
        if new_len > old_len {
            let pgoff = area.anon_index(old_addr);
            if pgoff.checked_add((new_len / PAGE_SIZE) as u64).is_none() {
                return Err(VmError::Inval);
            }
            if area.lock.is_locked() {
                self.check_lock_limit(new_len - old_len)?;
            }
            self.check_as_growth(new_len - old_len)?;
        }
        Ok(area)
    }

    /// `mremap` with `old_size` 0 of the shared mapping at `src` (Linux's old "duplicate
    /// a shared area"): a second mapping of the same object pages, from `src`'s offset,
    /// at the free range `[dst, dst + new_len)`; the old one stays. Nothing is mapped
    /// yet: faults find the object's pages.
    fn duplicate_shared(
        &mut self,
        src: usize,
        dst: usize,
        new_len: usize,
    ) -> Result<Remapped, VmError> {
        self.check_map_count(1)?;
        let area = self.area_at(src).ok_or(VmError::Fault)?;
        let mut dup = area.clone();
        if src > dup.start {
            // The part from `src` on, its object offset advanced.
            dup = dup.split_off(src);
        }
        dup.start = dst;
        dup.end = dst + new_len;
        let lock = dup.lock;
        self.insert_area(dup);
        let populate = (lock == Lock::Locked || self.config.eager)
            .then_some(VirtAddr(dst)..VirtAddr(dst + new_len));
        Ok(Remapped {
            addr: VirtAddr(dst),
            populate,
        })
    }

    /// Moves `[src, src + old_len)` (inside one area) to the free range
    /// `[dst, dst + new_len)` (Linux's `move_vma`): the entries first
    /// ([`move_pages`](Self::move_pages): `ENOMEM` and nothing changed if a table page is
    /// missing), then the area, which keeps everything but its addresses; the old range
    /// is removed, or with `dontunmap` stays as an empty, unlocked area.
    fn move_mapping(
        &mut self,
        src: usize,
        old_len: usize,
        dst: usize,
        new_len: usize,
        dontunmap: bool,
    ) -> Result<Remapped, VmError> {
        if old_len == 0 {
            return self.duplicate_shared(src, dst, new_len);
        }
        self.check_map_count(MOVE_MAP_MARGIN)?;
        let src_end = src + old_len;
        // 2 MiB leaves move whole when the distance keeps them aligned; those cut by
        // the range's ends, or all of them when it does not, are split first.
        self.prepare_change(src, src_end)?;
        self.mmu
            .attach_range(VirtAddr(dst), VirtAddr(dst + old_len))
            .map_err(|_| VmError::NoMem)?;
        if !dst.wrapping_sub(src).is_multiple_of(HUGE_PAGE_SIZE) {
            self.split_huge_range(src, src_end)?;
        }
        self.move_pages(src, dst, old_len)?;
        self.split_at(src);
        self.split_at(src_end);
        let moved = if dontunmap {
            let copy = self.areas.get(&src).cloned();
            if let Some(old) = self.areas.get_mut(&src) {
                old.lock = Lock::Unlocked;
            }
            self.merge_range(src, src_end);
            copy
        } else {
            self.areas.remove(&src)
        };
        let Some(mut area) = moved else {
            // `area_to_resize` found the area holding the range; the splits kept it.
            return Err(VmError::Fault);
        };
        area.start = dst;
        area.end = dst + new_len;
        if area.anon_moved() {
            self.anon_moved = true;
        }
        let lock = area.lock;
        self.insert_area(area);
        let populate = (new_len > old_len && (lock == Lock::Locked || self.config.eager))
            .then_some(VirtAddr(dst + old_len)..VirtAddr(dst + new_len));
        Ok(Remapped {
            addr: VirtAddr(dst),
            populate,
        })
    }
}
