//! Transparent huge pages for private anonymous memory: one 2 MiB leaf where a whole
//! aligned 2 MiB range of an area is touched for the first time and the frame source has
//! a free 2 MiB block, and the split back to 4 KiB entries wherever an operation needs
//! 4 KiB granularity.
//!
//! # The rules
//! - A *huge frame* is an order-9 block of 512 frames with one reference count (its
//!   first frame's). A 2 MiB leaf mapping it holds one reference; so does each 4 KiB
//!   entry mapping one of its pages (after a split of a shared leaf), and the frame
//!   source counts a reference to any of its pages on it. It is freed when the last
//!   reference goes.
//! - A 2 MiB leaf lies inside one area. Anything that would cut it (an area boundary
//!   made by `mprotect`, `mlock`, `munmap`, `mremap`, `madvise` on part of it) splits it
//!   first ([`AddressSpace::split_huge_at`]):
//!   - the huge zero page's leaf is dropped (its pages read as zeros again on the next
//!     fault);
//!   - a huge frame this leaf alone references becomes 512 ordinary frames under 512
//!     4 KiB entries (no copy; [`FrameSource::split_huge`]);
//!   - a huge frame something else also references (another space, after `fork`)
//!     stays one: the 512 4 KiB entries each take a reference to it.
//! - A write to a shared huge frame splits this space's leaf (as above) and copies the
//!   one page written, as Linux does; copying all 2 MiB at the first write measured
//!   595,540 instructions against about 3,000, which fork-then-exec pays for nothing
//!   (`docs/huge-pages.md`).
//! - Reclaim swaps ordinary frames only: a cold huge frame is split first
//!   ([`AddressSpace::split_huge_page`]) when one leaf alone maps it; one shared after
//!   `fork` stays whole until the sharing ends (`docs/huge-pages.md`).

use super::hal::{FrameSource, Mmu, PteInfo};
use super::space::{AddressSpace, private_owner};
use super::stats::Event;
use super::{FaultOutcome, VmError};
use crate::addr::{PAGE_SIZE, PhysAddr, VirtAddr, align_down};
use crate::layout::{HUGE_PAGE_PAGES, HUGE_PAGE_SIZE};

/// When faults map huge pages (Linux's `/sys/kernel/mm/transparent_hugepage/enabled`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Thp {
    /// Every private anonymous area, unless `madvise(MADV_NOHUGEPAGE)` says otherwise.
    Always,
    /// Only areas given `madvise(MADV_HUGEPAGE)`.
    Madvise,
    /// Never.
    Never,
}

/// The first address of the 2 MiB range holding `va`.
#[inline]
pub(crate) const fn huge_base(va: usize) -> usize {
    align_down(va, HUGE_PAGE_SIZE)
}

/// The first frame of the huge frame holding `pa` (huge frames are 2 MiB aligned).
#[inline]
pub const fn huge_head_of(pa: PhysAddr) -> PhysAddr {
    PhysAddr(align_down(pa.0, HUGE_PAGE_SIZE))
}

impl<M: Mmu, F: FrameSource + Clone> AddressSpace<M, F> {
    /// A write fault on the present 2 MiB leaf `pte` (queried at `va`) that lacks write:
    /// the huge zero page is replaced by a zeroed huge frame; a copy-on-write huge frame
    /// only this leaf references is taken over. Otherwise (a shared huge frame, or no
    /// free 2 MiB block for the zero page's replacement) the leaf is split as the
    /// module's rules say and `None` says "resolve the 4 KiB fault now" (which copies
    /// the one page written).
    pub(super) fn write_huge(
        &mut self,
        va: usize,
        pte: PteInfo,
    ) -> Result<Option<FaultOutcome>, VmError> {
        let base = huge_base(va);
        let head = huge_head_of(pte.pa);
        let area = self.area_at(base).ok_or(VmError::Fault)?;
        let (prot, index) = (area.prot, area.anon_index(base));
        let writable = prot.pte_flags(false);
        let is_zero = Some(head) == self.frames.huge_zero_page();
        if !is_zero && !pte.cow {
            // Write taken away below the policy (never happens today): give it back.
            self.mmu.protect(VirtAddr(base), writable, false);
            return Ok(Some(FaultOutcome::PermissionsRestored));
        }
        if !is_zero && self.frames.refcount(head) == 1 {
            // Ours alone: gaining write on a present PTE needs no flush.
            self.mmu.protect(VirtAddr(base), writable, false);
            self.counters.record(Event::CowTakeover, 1);
            return Ok(Some(FaultOutcome::CowTakenOver));
        }
        if !is_zero {
            // Shared with another space: this space's leaf becomes 4 KiB entries over
            // the same frames, and only the page written is copied (as Linux does; a
            // whole 2 MiB copy measured 595,540 instructions for the first write,
            // `docs/huge-pages.md`).
            self.split_huge_leaf(base)?;
            return Ok(None);
        }
        let owner = private_owner(&mut self.anon, self.id, index).map_err(|_| VmError::NoMem)?;
        let Ok(fresh) = self.frames.alloc_huge(owner, true) else {
            self.counters.record(Event::ThpFaultFallback, 1);
            self.split_huge_leaf(base)?;
            return Ok(None);
        };
        if self.mmu.map_huge(VirtAddr(base), fresh, writable, false) != Ok(true) {
            self.frames.put(fresh);
            return Err(VmError::NoMem);
        }
        // The zero frames may be cached read-only, as one 2 MiB entry: one address's
        // flush drops it (a fence for an address drops the leaf that covers it, of any
        // size) before the new frames are used.
        self.mmu.flush_page(VirtAddr(base));
        self.rss += HUGE_PAGE_PAGES;
        self.counters.record(Event::ZeroPageUpgrade, 1);
        self.counters.record(Event::ThpFaultAlloc, 1);
        Ok(Some(FaultOutcome::ZeroPageUpgraded))
    }

    /// Maps every 2 MiB page of the new `MAP_HUGETLB` area `[start, end)` (2 MiB
    /// aligned) with a zeroed huge frame now. `ENOMEM` when one is missing (the pages
    /// mapped so far stay: the caller unmaps the range).
    pub(super) fn populate_huge(&mut self, start: usize, end: usize) -> Result<(), VmError> {
        let area = self.area_at(start).ok_or(VmError::NoMem)?;
        let (flags, first) = (area.prot.pte_flags(false), area.anon_index(start));
        let owner = private_owner(&mut self.anon, self.id, first).map_err(|_| VmError::NoMem)?;
        for base in (start..end).step_by(HUGE_PAGE_SIZE) {
            let index = ((base - start) / PAGE_SIZE) as u64;
            let pa = self
                .frames
                .alloc_huge(owner + index, true)
                .map_err(|_| VmError::NoMem)?;
            if self.mmu.map_huge(VirtAddr(base), pa, flags, false) != Ok(true) {
                self.frames.put(pa);
                return Err(VmError::NoMem);
            }
            self.rss += HUGE_PAGE_PAGES;
            self.counters.record(Event::ThpFaultAlloc, 1);
        }
        Ok(())
    }

    /// Makes `at` a place where 4 KiB work may start or end: if a 2 MiB leaf covers `at`
    /// (and `at` is not its start), it is split as the module's rules say. `ENOMEM` if a
    /// table page or the copies of a shared huge frame could not be had; then nothing
    /// changed.
    pub(crate) fn split_huge_at(&mut self, at: usize) -> Result<(), VmError> {
        if at.is_multiple_of(HUGE_PAGE_SIZE) {
            // A boundary between two 2 MiB ranges cuts no leaf.
            return Ok(());
        }
        self.split_huge_leaf(huge_base(at))
    }

    /// Splits the 2 MiB leaf holding `va`, if there is one, as the module's rules say:
    /// reclaim does this before it swaps out the pages of a cold huge frame, which then
    /// become 512 ordinary frames when this leaf alone referenced it. `ENOMEM` if the
    /// table page could not be had (nothing changed).
    pub fn split_huge_page(&mut self, va: VirtAddr) -> Result<(), VmError> {
        self.split_huge_leaf(huge_base(va.0))
    }

    /// Splits every 2 MiB leaf in `[start, end)` (page-granular work ahead over all of
    /// it: a move to an address that is not 2 MiB apart).
    pub(crate) fn split_huge_range(&mut self, start: usize, end: usize) -> Result<(), VmError> {
        let mut at = VirtAddr(start);
        while let Some((va, pte)) = self.mmu.next_mapped(at, VirtAddr(end)) {
            if pte.huge {
                self.split_huge_leaf(va.0)?;
            }
            at = VirtAddr(va.0 + if pte.huge { HUGE_PAGE_SIZE } else { PAGE_SIZE });
        }
        Ok(())
    }

    /// Splits the 2 MiB leaf at `base`, if there is one (see the module's rules).
    fn split_huge_leaf(&mut self, base: usize) -> Result<(), VmError> {
        let Some(pte) = self.mmu.query(VirtAddr(base)).present().filter(|p| p.huge) else {
            return Ok(());
        };
        let head = huge_head_of(pte.pa);
        let range = (VirtAddr(base), VirtAddr(base + HUGE_PAGE_SIZE));
        if Some(head) == self.frames.huge_zero_page() {
            // Zeros: nothing is lost by dropping the leaf (not counted in RSS).
            self.mmu.unmap_range(range.0, range.1, |_, _| {});
            self.counters.record(Event::ThpSplit, 1);
            return Ok(());
        }
        if self.frames.refcount(head) == 1 {
            self.mmu.split_huge(range.0).map_err(|_| VmError::NoMem)?;
            self.frames.split_huge(head);
            self.counters.record(Event::ThpSplit, 1);
            return Ok(());
        }
        // Shared with another space: 512 4 KiB entries over the same frames, each
        // holding a reference to the huge frame (which is freed when the last goes).
        self.mmu.split_huge(range.0).map_err(|_| VmError::NoMem)?;
        for _ in 1..HUGE_PAGE_PAGES {
            self.frames.get(head);
        }
        self.counters.record(Event::ThpSplit, 1);
        Ok(())
    }

    /// The pages a present leaf stands for (512 for a 2 MiB leaf).
    #[inline]
    pub(crate) fn leaf_pages(pte: &PteInfo) -> usize {
        if pte.huge { HUGE_PAGE_PAGES } else { 1 }
    }

    /// Whether `pa` is one of the zero pages (4 KiB or huge), which are never counted.
    #[inline]
    pub(crate) fn is_zero_frame(&self, pa: PhysAddr) -> bool {
        pa == self.frames.zero_page() || Some(pa) == self.frames.huge_zero_page()
    }
}
