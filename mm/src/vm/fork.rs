//! Copy-on-write `fork`: the child shares every frame with the parent; private pages are
//! write-protected and marked copy-on-write on both sides.

use alloc::vec::Vec;

use super::VmError;
use super::area::{Backing, Lock};
use super::hal::{CopyPte, FrameSource, Mmu, OutOfMemory, PagePerms, PteInfo};
use super::space::{AddressSpace, StaleRange};
use super::stats::Event;
use crate::addr::{PAGE_SIZE, PhysAddr, VirtAddr};

impl<M: Mmu, F: FrameSource + Clone> AddressSpace<M, F> {
    /// Creates the child address space of `fork` over the empty page table `child_mmu`.
    ///
    /// The child gets the same areas (unlocked: memory locks are not inherited, nor is
    /// `mlockall(MCL_FUTURE)`), program break and limits, and a PTE for every page
    /// present in the parent, built without copying any data page:
    /// - a private page (anonymous or file) is mapped read-only with the copy-on-write bit
    ///   in both spaces, and its frame gains a reference for the child; parent PTEs that
    ///   lose write permission are flushed (one request after the walk);
    /// - a shared-memory page is mapped identically (writable if the area is) and gains a
    ///   reference;
    /// - a zero-page PTE is copied as is (the zero page is never counted);
    /// - a remembered PTE (a swap entry) is copied, and its slot gains a reference.
    ///
    /// For the reverse map, the child joins every memory object the parent's pages may
    /// belong to and shares the parent's anonymous object (the family's: the child's own
    /// private frames belong to it too), and joins the object of each shared area
    /// (O(areas), nothing per page).
    ///
    /// `ENOMEM` if the child's page table cannot be built; the partial child is then torn
    /// down and every reference it took dropped. The parent keeps its copy-on-write marks,
    /// which is harmless: its next write to such a page takes the frame over (refcount 1).
    pub fn fork(&mut self, child_mmu: M) -> Result<AddressSpace<M, F>, VmError> {
        let mut child = AddressSpace::new(child_mmu, self.frames.clone(), self.config);
        child.areas = self.areas.clone();
        // Locks are not inherited (Linux clears VM_LOCKED in the child's areas and its
        // def_flags): areas that differed only in their lock become one.
        if self.ever_locked {
            for area in child.areas.values_mut() {
                area.lock = Lock::Unlocked;
            }
            child.merge_range(0, crate::layout::USER_END.0);
        }
        child.start_brk = self.start_brk;
        child.brk = self.brk;
        child.anon_moved = self.anon_moved;
        child.huge_advised = self.huge_advised;
        child.join_objects(self).map_err(|_| VmError::NoMem)?;
        let zero = self.frames.zero_page();
        let huge_zero = self.frames.huge_zero_page();
        let eager = self.config.eager;
        let mut batch = StaleRange::default();
        let mut result = Ok(());
        let AddressSpace {
            mmu, frames, areas, ..
        } = self;
        // The owner word of page 0 of the family's anonymous object, which the child
        // shares (every private frame the parent maps belongs to it, so it exists when
        // an eager copy needs it).
        let anon_base = child.anon.as_ref().map_or(0, |o| o.owner_word(0));
        for area in areas.values() {
            let shared = area.is_shared();
            let copy_flags = area.prot.pte_flags(false);
            let (mut added, mut removed) = (0usize, 0usize);
            let mut copy_failed = false;
            let decide = |va: VirtAddr, pte: PteInfo| -> Option<CopyPte> {
                if copy_failed {
                    return None;
                }
                if pte.pa == zero || Some(pte.pa) == huge_zero {
                    return Some(CopyPte {
                        parent: None,
                        child: (pte.pa, pte.flags, pte.cow),
                    });
                }
                let pages = Self::leaf_pages(&pte);
                let c = if shared {
                    frames.get(pte.pa);
                    CopyPte {
                        parent: None,
                        child: (pte.pa, pte.flags, pte.cow),
                    }
                } else if eager {
                    // Eager mode: the child gets its own copy now. Without a frame for
                    // it nothing more is copied.
                    let owner = anon_base | area.anon_index(va.0);
                    let copy = if pte.huge {
                        frames.alloc_huge(owner, false)
                    } else {
                        frames.alloc_uninit(owner)
                    };
                    let Ok(copy) = copy else {
                        copy_failed = true;
                        return None;
                    };
                    for i in 0..pages {
                        let offset = i * PAGE_SIZE;
                        frames.copy_frame(PhysAddr(copy.0 + offset), PhysAddr(pte.pa.0 + offset));
                    }
                    CopyPte {
                        parent: None,
                        child: (copy, copy_flags, false),
                    }
                } else {
                    let read_only = pte.flags.difference(PagePerms::WRITE);
                    let parent = (!pte.cow).then_some((read_only, true));
                    if parent.is_some() && pte.flags.contains(PagePerms::WRITE) {
                        batch.add(va.0);
                    }
                    frames.get(pte.pa);
                    CopyPte {
                        parent,
                        child: (pte.pa, read_only, true),
                    }
                };
                added += pages;
                Some(c)
            };
            let undo = |_: VirtAddr, c: &CopyPte| {
                // Only the default `copy_range` undoes, over tables without 2 MiB leaves.
                if c.child.0 != zero {
                    frames.put(c.child.0);
                    removed += 1;
                }
            };
            result = mmu.copy_range(
                &mut child.mmu,
                VirtAddr(area.start),
                VirtAddr(area.end),
                decide,
                undo,
            );
            child.rss += added - removed;
            if copy_failed {
                result = Err(OutOfMemory);
            }
            if result.is_err() {
                break;
            }
        }
        batch.emit(mmu);
        result.map_err(|_| VmError::NoMem)?;
        self.copy_remembered(&mut child)?;
        self.counters.record(Event::Fork, 1);
        Ok(child)
    }

    /// Makes this (new, child) space a member of every object `parent`'s pages may
    /// belong to, sharing `parent`'s anonymous object.
    fn join_objects(&mut self, parent: &AddressSpace<M, F>) -> Result<(), OutOfMemory> {
        if let Some(obj) = &parent.anon {
            obj.join(self.id);
            self.anon = Some(obj.clone());
        }
        for area in parent.areas.values() {
            if let Backing::Shared { obj, .. } = &area.backing {
                obj.join(self.id);
            }
        }
        Ok(())
    }

    /// Copies every remembered PTE into `child` (the same swap entry, one more reference
    /// to its slot). Nothing to do, and nothing walked, while the parent has none.
    fn copy_remembered(&mut self, child: &mut AddressSpace<M, F>) -> Result<(), VmError> {
        if self.swap_entries == 0 {
            return Ok(());
        }
        let mut entries = Vec::new();
        entries
            .try_reserve(self.swap_entries)
            .map_err(|_| VmError::NoMem)?;
        let end = crate::layout::USER_END;
        self.mmu
            .remembered_range(crate::addr::VirtAddr(0), end, false, |va, e| {
                entries.push((va, e))
            });
        for (va, entry) in entries {
            child.mmu.remember(va, entry).map_err(|_| VmError::NoMem)?;
            self.frames.dup_remembered(entry);
            child.swap_entries += 1;
        }
        Ok(())
    }
}
