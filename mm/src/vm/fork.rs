//! Copy-on-write `fork`: the child shares every frame with the parent; private pages are
//! write-protected and marked copy-on-write on both sides.

use super::VmError;
use super::hal::{FrameSource, Mmu, PteFlags};
use super::space::{AddressSpace, FlushBatch};
use super::stats::Event;
use crate::addr::VirtAddr;

impl<M: Mmu, F: FrameSource + Clone> AddressSpace<M, F> {
    /// Creates the child address space of `fork` over the empty page table `child_mmu`.
    ///
    /// The child gets the same areas, program break and limits, and a PTE for every page
    /// present in the parent, built without copying any data page:
    /// - a private page (anonymous or file) is mapped read-only with the copy-on-write bit
    ///   in both spaces, and its frame gains a reference for the child; parent PTEs that
    ///   lose write permission are flushed (one request after the walk);
    /// - a shared-memory page is mapped identically (writable if the area is) and gains a
    ///   reference;
    /// - a zero-page PTE is copied as is (the zero page is never counted).
    ///
    /// `ENOMEM` if the child's page table cannot be built; the partial child is then torn
    /// down and every reference it took dropped. The parent keeps its copy-on-write marks,
    /// which is harmless: its next write to such a page takes the frame over (refcount 1).
    pub fn fork(&mut self, child_mmu: M) -> Result<AddressSpace<M, F>, VmError> {
        let mut child = AddressSpace::new(child_mmu, self.frames.clone(), self.config);
        child.areas = self.areas.clone();
        child.start_brk = self.start_brk;
        child.brk = self.brk;
        let zero = self.frames.zero_page();
        let eager = self.config.eager;
        let mut batch = FlushBatch::default();
        let mut failed = false;
        let AddressSpace {
            mmu, frames, areas, ..
        } = self;
        for area in areas.values() {
            let shared = area.is_shared();
            let copy_flags = area.prot.pte_flags(false);
            let child_mmu = &mut child.mmu;
            let child_rss = &mut child.rss;
            mmu.update_range(VirtAddr(area.start), VirtAddr(area.end), &mut |va, pte| {
                if failed {
                    return None;
                }
                if eager && !shared && pte.pa != zero {
                    // Eager mode: the child gets its own copy now.
                    let copied = frames.alloc_uninit().and_then(|copy| {
                        frames.copy_frame(copy, pte.pa);
                        child_mmu.map(va, copy, copy_flags, false).inspect_err(|_| {
                            frames.put(copy);
                        })
                    });
                    match copied {
                        Ok(()) => *child_rss += 1,
                        Err(_) => failed = true,
                    }
                    return None;
                }
                let (flags, cow, parent_change) = if shared || pte.pa == zero {
                    (pte.flags, pte.cow, None)
                } else {
                    let read_only = pte.flags.difference(PteFlags::WRITE);
                    let change = (!pte.cow).then_some((read_only, true));
                    if change.is_some() && pte.flags.contains(PteFlags::WRITE) {
                        batch.add(va.0);
                    }
                    (read_only, true, change)
                };
                if pte.pa != zero {
                    frames.get(pte.pa);
                }
                if child_mmu.map(va, pte.pa, flags, cow).is_err() {
                    if pte.pa != zero {
                        frames.put(pte.pa);
                    }
                    failed = true;
                    // The parent's PTE stays as it was: nothing was shared.
                    return None;
                }
                if pte.pa != zero {
                    *child_rss += 1;
                }
                parent_change
            });
            if failed {
                break;
            }
        }
        batch.emit(mmu);
        if failed {
            return Err(VmError::NoMem);
        }
        self.counters.record(Event::Fork, 1);
        Ok(child)
    }
}
