//! The reverse map: from a frame to every PTE that maps it, in every address space.
//!
//! Object-based, as Linux's since 2.6 (`anon_vma` for anonymous pages, the file's
//! `address_space` for file pages), rather than a chain of PTE pointers per frame:
//!
//! ```text
//!  frame ── owner word ──► MemObject (slot), page index
//!                             │ members: the spaces that may map it
//!                             ▼
//!   for each member space: anonymous object → va = index << PAGE_SHIFT (or, once the
//!                          space moved an area with mremap, the va of index in
//!                          each private area whose indices hold it)
//!                          shared/file object → va of index in each area of the object
//!                          query the PTE at va; it maps the frame? visit it
//! ```
//!
//! What it costs where: a fault that allocates a frame stores one word in the frame's
//! metadata, given with the allocation ([`FrameSource::alloc_zeroed`]); `fork` joins the
//! child to the parent's objects (the family's anonymous object and its shared areas'
//! objects: O(areas), nothing per page); teardown leaves them. A per-frame chain would instead allocate one node per
//! mapped page at every `fork` and fault, and free it at every unmap
//! (`docs/virtual-memory.md`, "Reverse map", gives the measured figures). The walk costs
//! one PTE lookup per member space (anonymous: every space of the fork family) or per
//! area of the object in each member (shared), and visits members that do not map the
//! page for nothing.

use super::area::Backing;
use super::hal::{FrameSource, Mmu, PteInfo, PteState, SwapEntry};
use super::object::{MemObject, SpaceId};
use super::space::AddressSpace;
use super::space::private_owner;
use super::stats::Event;
use super::{FaultError, VmError};
use crate::addr::{PAGE_SHIFT, PAGE_SIZE, PhysAddr, VirtAddr};
use crate::tlb::PendingFlush;

/// The address spaces a reverse-map walk may visit, by identity: the kernel's processes,
/// or a test's spaces.
pub trait SpaceSet<M: Mmu, F: FrameSource + Clone> {
    /// Calls `f` with space `id`, locked as its owner locks it for a fault, if it still
    /// exists (a space being torn down may be skipped: it unmaps everything itself).
    fn with_space(&mut self, id: SpaceId, f: &mut dyn FnMut(&mut AddressSpace<M, F>));
}

/// Visits every PTE that maps the frame `pa`, in every space of `spaces`: `visit` gets
/// the space, the page's address and its PTE, and may change the space (unmap the page,
/// or make it remembered with [`AddressSpace::remember_page`]). Frames without an owner
/// (the zero page, frames no fault allocated) have no mapping to visit.
pub fn for_each_mapping<M, F, S>(
    frames: &F,
    pa: PhysAddr,
    spaces: &mut S,
    mut visit: impl FnMut(&mut AddressSpace<M, F>, VirtAddr, PteInfo),
) where
    M: Mmu,
    F: FrameSource + Clone,
    S: SpaceSet<M, F>,
{
    if pa == frames.zero_page() {
        return;
    }
    let word = frames.owner(pa);
    let Some(obj) = MemObject::by_owner(word) else {
        return;
    };
    let index = MemObject::index_of(word);
    for id in obj.members() {
        spaces.with_space(id, &mut |space| {
            let mut from = 0;
            while let Some((va, next)) = space.next_candidate(&obj, index, from) {
                if let PteState::Present(pte) = space.mmu.query(va)
                    && pte.pa == pa
                {
                    visit(space, va, pte);
                }
                from = next;
            }
        });
    }
}

/// Unmaps, in every member space of `obj`, the pages of its shared mappings from page
/// `from` of the object on (a truncated in-memory file: a later access past the new end
/// faults and gets `SIGBUS`, an access inside it faults the page in again). Private
/// copies already made stay.
pub fn unmap_object_tail<M, F, S>(obj: &MemObject, from: u64, spaces: &mut S)
where
    M: Mmu,
    F: FrameSource + Clone,
    S: SpaceSet<M, F>,
{
    for id in obj.members() {
        spaces.with_space(id, &mut |space| space.zap_object_tail(obj, from));
    }
}

impl<M: Mmu, F: FrameSource + Clone> AddressSpace<M, F> {
    /// Unmaps the pages of `obj` from page `from` on in this space's shared mappings of
    /// it (see [`unmap_object_tail`]).
    pub fn zap_object_tail(&mut self, obj: &MemObject, from: u64) {
        let mut cursor = 0;
        loop {
            let next = self
                .areas
                .range(cursor..)
                .find_map(|(_, a)| match &a.backing {
                    Backing::Shared { obj: o, pgoff } if core::ptr::eq::<MemObject>(&**o, obj) => {
                        let pages = ((a.end - a.start) >> PAGE_SHIFT) as u64;
                        (from < pgoff + pages).then(|| {
                            let skip = from.saturating_sub(*pgoff) as usize;
                            (a.start + (skip << PAGE_SHIFT), a.end)
                        })
                    }
                    _ => None,
                });
            let Some((start, end)) = next else {
                return;
            };
            self.zap(start, end);
            cursor = end;
        }
    }

    /// The lowest address at which this space may map page `index` of `obj`, in the areas
    /// starting at or above `from`, with where to continue the search (no heap: the
    /// walk runs in reclaim). An anonymous page is looked for at its index's address
    /// unless `mremap` ever moved an area of the space: then in every private area whose
    /// indices hold it (O(areas)); a shared or file page in each area of its object.
    fn next_candidate(
        &self,
        obj: &MemObject,
        index: u64,
        from: usize,
    ) -> Option<(VirtAddr, usize)> {
        if obj.is_anon() && !self.anon_moved {
            let va = (index as usize) << PAGE_SHIFT;
            return (va >= from && self.area_at(va).is_some()).then_some((VirtAddr(va), va + 1));
        }
        self.areas.range(from..).find_map(|(_, a)| {
            let va = match &a.backing {
                _ if obj.is_anon() => a.anon_va(index)?,
                Backing::Shared { obj: o, pgoff }
                    if core::ptr::eq::<MemObject>(&**o, obj)
                        && (*pgoff..*pgoff + ((a.end - a.start) >> PAGE_SHIFT) as u64)
                            .contains(&index) =>
                {
                    a.start + (((index - pgoff) as usize) << PAGE_SHIFT)
                }
                _ => return None,
            };
            Some((VirtAddr(va), a.end))
        })
    }

    /// Swap-out of one page: replaces the present private PTE at `va` by a remembered
    /// entry holding `entry` (the caller hands over one reference to its slot), and drops
    /// the frame's reference after the flush that makes it unreachable; returns the
    /// frame. A later fault on the page reports [`FaultError::SwappedOut`] (the kernel
    /// brings it back with [`swap_in_page`](Self::swap_in_page)); `fork` copies the
    /// entry, `mprotect` keeps it, `munmap` and teardown drop it.
    ///
    /// `EINVAL` for a page that is not present, maps the zero page, or lies in a shared
    /// area (shared pages stay in their object: the object would write them out);
    /// `ENOMEM` if the table could not be changed.
    pub fn remember_page(&mut self, va: VirtAddr, entry: SwapEntry) -> Result<PhysAddr, VmError> {
        self.remember_with(va, |mmu| mmu.remember(va, entry))
    }

    /// As [`remember_page`](Self::remember_page), with the flush left owed in `pending`
    /// (see [`Mmu::remember_deferred`]): the PTE's reference to the frame is dropped at
    /// once, so the caller must hold a reference of its own until it has issued
    /// `pending`, and must not write the frame out before (a hart may still write to it
    /// through a stale translation). Reclaim unmaps a batch of pages this way and
    /// flushes once for all of them.
    pub fn remember_page_deferred(
        &mut self,
        va: VirtAddr,
        entry: SwapEntry,
        pending: &mut PendingFlush,
    ) -> Result<PhysAddr, VmError> {
        self.remember_with(va, |mmu| mmu.remember_deferred(va, entry, pending))
    }

    fn remember_with(
        &mut self,
        va: VirtAddr,
        replace: impl FnOnce(&mut M) -> Result<Option<PteInfo>, super::hal::OutOfMemory>,
    ) -> Result<PhysAddr, VmError> {
        let area = self.area_at(va.0).ok_or(VmError::Inval)?;
        let pte = self.mmu.query(va).present().ok_or(VmError::Inval)?;
        if area.is_shared() || pte.pa == self.frames.zero_page() {
            return Err(VmError::Inval);
        }
        replace(&mut self.mmu).map_err(|_| VmError::NoMem)?;
        self.frames.put(pte.pa);
        self.rss -= 1;
        self.swap_entries += 1;
        Ok(pte.pa)
    }
}

impl<M: Mmu, F: FrameSource + Clone> AddressSpace<M, F> {
    /// Clears the accessed bit of the page at `va` (see [`Mmu::take_accessed`]); whether
    /// it was used since the last call.
    pub fn take_accessed(&mut self, va: VirtAddr) -> bool {
        self.mmu.take_accessed(va)
    }

    /// The owner word a private frame at `va` gets (the family's anonymous object, made
    /// now if the space has none; the page index its area gives `va`, which `mremap`
    /// keeps): what a frame read back from swap for `va` carries. `EINVAL` if no area
    /// covers `va`; `ENOMEM` if the object could not be made.
    pub fn private_owner_of(&mut self, va: VirtAddr) -> Result<u64, VmError> {
        let index = self.area_at(va.0).ok_or(VmError::Inval)?.anon_index(va.0);
        private_owner(&mut self.anon, self.id, index).map_err(|_| VmError::NoMem)
    }

    /// Swap-in of one page: if the PTE at `va` still remembers `entry`, maps `pa` (which
    /// holds the page's contents; the caller keeps its own reference, this adds the PTE's)
    /// there and drops the entry's reference to its slot. Always read-only
    /// copy-on-write: the frame stays in the swap cache, whose copy is valid until the
    /// first write, which takes the frame over
    /// ([`FrameSource::take_exclusive`]) or copies it as for any shared private page.
    /// `Ok(false)` if the PTE changed meanwhile (the page was unmapped, or another thread
    /// of the space brought it in): nothing done.
    ///
    /// `major`: the fault had to wait for the disk, as Linux counts a major fault (a page
    /// found in the swap cache, read ahead by an earlier fault, is a minor one; `swapoff`
    /// brings pages back without a fault and counts none).
    pub fn swap_in_page(
        &mut self,
        va: VirtAddr,
        entry: SwapEntry,
        pa: PhysAddr,
        major: bool,
    ) -> Result<bool, FaultError> {
        let mapped = self.install_remembered(va, entry, pa)?;
        if mapped && major {
            self.counters.record(Event::MajorFault, 1);
        }
        Ok(mapped)
    }

    /// Visits the remembered (swapped-out) pages at or above `from` in address order
    /// until `f` declines one (returns false); that page's address, to resume from, or
    /// `None` when the walk reached the end of the space.
    pub fn remembered_pages(
        &mut self,
        from: VirtAddr,
        mut f: impl FnMut(VirtAddr, SwapEntry) -> bool,
    ) -> Option<VirtAddr> {
        let mut cursor = from.0;
        loop {
            let (start, end, _) = self.area_span_from(cursor)?;
            let mut declined = None;
            self.mmu
                .remembered_range(VirtAddr(start), VirtAddr(end), false, |va, entry| {
                    if declined.is_none() && !f(va, entry) {
                        declined = Some(va);
                    }
                });
            if declined.is_some() {
                return declined;
            }
            cursor = end;
        }
    }

    /// Visits the present pages of the private areas at or above `from` in address
    /// order (the shared zero pages excepted; a 2 MiB leaf once, at its first address
    /// with its first frame) until `f` declines one (returns false);
    /// that page's address, to resume from, or `None` when the walk reached the end of
    /// the space. The frames are held by this space's PTEs for as long as the caller
    /// holds the space (what putting them on reclaim's lists needs).
    pub fn private_pages(
        &mut self,
        from: VirtAddr,
        mut f: impl FnMut(VirtAddr, PhysAddr) -> bool,
    ) -> Option<VirtAddr> {
        let zero = self.frames.zero_page();
        let mut cursor = from.0;
        loop {
            let (start, end, shared) = self.area_span_from(cursor)?;
            let mut at = VirtAddr(start);
            while !shared && let Some((va, pte)) = self.mmu.next_mapped(at, VirtAddr(end)) {
                // A 2 MiB leaf once, with its head frame (reclaim lists a huge frame by
                // its head); the huge zero page, like the small one, is no one's.
                if pte.pa != zero && Some(pte.pa) != self.frames.huge_zero_page() && !f(va, pte.pa)
                {
                    return Some(va);
                }
                at = VirtAddr(va.0 + Self::leaf_pages(&pte) * PAGE_SIZE);
            }
            cursor = end;
        }
    }

    /// The part at or above `cursor` of the area containing it, or else of the next
    /// area up: `(start, end, shared)`; `None` above the last area.
    fn area_span_from(&self, cursor: usize) -> Option<(usize, usize, bool)> {
        match self.area_at(cursor) {
            Some(a) => Some((cursor, a.end, a.is_shared())),
            None => {
                let (_, a) = self.areas.range(cursor..).next()?;
                Some((a.start, a.end, a.is_shared()))
            }
        }
    }

    fn install_remembered(
        &mut self,
        va: VirtAddr,
        entry: SwapEntry,
        pa: PhysAddr,
    ) -> Result<bool, FaultError> {
        if self.mmu.query(va) != PteState::Remembered(entry) {
            return Ok(false);
        }
        let prot = self.area_at(va.0).ok_or(FaultError::Unmapped)?.prot;
        self.frames.get(pa);
        if self.mmu.map(va, pa, prot.pte_flags(true), true).is_err() {
            self.frames.put(pa);
            return Err(FaultError::OutOfMemory);
        }
        self.rss += 1;
        self.swap_entries -= 1;
        self.frames.drop_remembered(entry);
        Ok(true)
    }
}

/// Whether a frame's owner word names a private anonymous object: the frames reclaim may
/// swap out (shared and file objects keep their pages).
#[inline]
pub fn owner_is_private(word: u64) -> bool {
    MemObject::is_private_word(word)
}
