//! Copy-on-write `fork`: the child shares every frame with the parent; private pages are
//! write-protected and marked copy-on-write on both sides, or (`VmConfig::share_tables`)
//! their leaf page tables are shared whole and each side gets its own copy of one on its
//! first access to it (`docs/virtual-memory.md`, "Shared page tables at fork").

use alloc::vec::Vec;

use super::VmError;
use super::area::{Backing, Lock};
use super::hal::{CopyPte, FrameSource, Mmu, OutOfMemory, PagePerms, PteInfo};
use super::space::{AddressSpace, StaleRange, maps_zero};
use super::stats::Event;
use crate::addr::{PAGE_SIZE, PhysAddr, VirtAddr};

/// The resident pages from which fork shares leaf tables instead of copying them: a
/// space this small has few entries per table, and copying them (about 200 instructions
/// each, fork and exit together) costs less than the faults that attach a shared table
/// again (about 2,500). `fork_exit_wait_0M` measured 92,302 instructions sharing and
/// 70,607 copying; with 16 MiB touched, 95,840 sharing and 1,240,320 copying.
const SHARE_MIN_RSS: usize = 1024;

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
    /// - a remembered PTE (a swap entry) is copied, and its slot gains a reference;
    /// - with [`VmConfig::share_tables`](super::VmConfig::share_tables), in a space of at
    ///   least `SHARE_MIN_RSS` resident pages, every leaf table wholly inside a run of
    ///   private areas is instead shared as it is ([`Mmu::share_range`]): no PTE or
    ///   reference changes now, each side attaches its own table on its first access.
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
        // Leaf tables wholly inside a run of private areas are shared, not copied, in a
        // space with enough pages for it to pay: every shared table costs each side a
        // fault when it next touches the table's 2 MiB.
        let share = self.config.share_tables && !eager && self.rss >= SHARE_MIN_RSS;
        let mut batch = StaleRange::default();
        let mut shared_tables = 0;
        let AddressSpace {
            mmu, frames, areas, ..
        } = self;
        // The owner word of page 0 of the family's anonymous object, which the child
        // shares (every private frame the parent maps belongs to it, so it exists when
        // an eager copy needs it).
        let anon_base = child.anon.as_ref().map_or(0, |o| o.owner_word(0));
        // A run of private areas (holes between them map nothing) not yet copied.
        let mut run: Option<(usize, usize)> = None;
        let mut areas = areas.values().peekable();
        loop {
            let area = areas.peek().copied();
            if share && let Some(area) = area.filter(|a| !a.is_shared()) {
                run = Some((run.map_or(area.start, |r| r.0), area.end));
                areas.next();
                continue;
            }
            if let Some((start, end)) = run.take() {
                shared_tables += mmu
                    .share_range(
                        &mut child.mmu,
                        VirtAddr(start),
                        VirtAddr(end),
                        |va, pte| Some(cow_copy(frames, zero, huge_zero, &mut batch, va, pte)),
                        |_, c| {
                            if c.child.0 != zero {
                                frames.put(c.child.0);
                            }
                        },
                    )
                    .map_err(|_| VmError::NoMem)
                    .inspect_err(|_| batch.emit(mmu))?;
            }
            let Some(area) = areas.next() else {
                break;
            };
            let shared = area.is_shared();
            let copy_flags = area.prot.pte_flags(false);
            let mut copy_failed = false;
            let decide = |va: VirtAddr, pte: PteInfo| -> Option<CopyPte> {
                if copy_failed {
                    return None;
                }
                if maps_zero(pte, zero, huge_zero) {
                    return Some(CopyPte {
                        parent: None,
                        child: (pte.pa, pte.flags, pte.cow),
                    });
                }
                if shared {
                    frames.get(pte.pa);
                    return Some(CopyPte {
                        parent: None,
                        child: (pte.pa, pte.flags, pte.cow),
                    });
                }
                if !eager {
                    return Some(cow_copy(frames, zero, huge_zero, &mut batch, va, pte));
                }
                // Eager mode: the child gets its own copy now. Without a frame for it
                // nothing more is copied.
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
                for i in 0..Self::leaf_pages(&pte) {
                    let offset = i * PAGE_SIZE;
                    frames.copy_frame(PhysAddr(copy.0 + offset), PhysAddr(pte.pa.0 + offset));
                }
                Some(CopyPte {
                    parent: None,
                    child: (copy, copy_flags, false),
                })
            };
            let undo = |_: VirtAddr, c: &CopyPte| {
                // Only the default `copy_range` undoes, over tables without 2 MiB leaves.
                if c.child.0 != zero {
                    frames.put(c.child.0);
                }
            };
            let mut result = mmu.copy_range(
                &mut child.mmu,
                VirtAddr(area.start),
                VirtAddr(area.end),
                decide,
                undo,
            );
            if copy_failed {
                result = Err(OutOfMemory);
            }
            if result.is_err() {
                batch.emit(mmu);
                return Err(VmError::NoMem);
            }
        }
        batch.emit(mmu);
        // The child maps every page the parent does (copied, or in a shared table).
        child.rss = self.rss;
        self.copy_remembered(&mut child)?;
        self.counters.record(Event::Fork, 1);
        self.counters
            .record(Event::TableShare, shared_tables as u64);
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

/// Fork's decision for a present private page copied copy-on-write: the child maps the
/// same frame read-only with the copy-on-write mark, and so does the parent from now on
/// (`batch` records the parent PTEs that lose write permission); the frame gains the
/// child's reference. The zero pages are mapped as they are, never counted. Inlined:
/// fork runs it for every page it copies.
#[inline(always)]
fn cow_copy<F: FrameSource>(
    frames: &F,
    zero: PhysAddr,
    huge_zero: Option<PhysAddr>,
    batch: &mut StaleRange,
    va: VirtAddr,
    pte: PteInfo,
) -> CopyPte {
    if maps_zero(pte, zero, huge_zero) {
        return CopyPte {
            parent: None,
            child: (pte.pa, pte.flags, pte.cow),
        };
    }
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
}
