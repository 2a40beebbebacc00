//! Copy-on-write `fork`: the child shares every frame with the parent; private pages are
//! write-protected and marked copy-on-write on both sides.

use super::VmError;
use super::hal::{FrameSource, Mmu, PteFlags};
use super::space::{AddressSpace, FlushBatch};
use super::stats::Event;
use crate::addr::{PAGE_SIZE, VirtAddr};

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
        let mut batch = FlushBatch::default();
        let mut result = Ok(());
        'areas: for area in self.areas.values() {
            let shared = area.is_shared();
            let mut cursor = area.start;
            while let Some((va, pte)) = self.mmu.next_mapped(VirtAddr(cursor), VirtAddr(area.end)) {
                cursor = va.0 + PAGE_SIZE;
                if self.config.eager && !shared && pte.pa != zero {
                    // Eager mode: the child gets its own copy now.
                    let copied = self.frames.alloc_uninit().and_then(|copy| {
                        self.frames.copy_frame(copy, pte.pa);
                        let flags = area.prot.pte_flags(false);
                        child.mmu.map(va, copy, flags, false).inspect_err(|_| {
                            self.frames.put(copy);
                        })
                    });
                    if copied.is_err() {
                        result = Err(VmError::NoMem);
                        break 'areas;
                    }
                    child.rss += 1;
                    continue;
                }
                let (flags, cow) = if shared || pte.pa == zero {
                    (pte.flags, pte.cow)
                } else {
                    let read_only = pte.flags.difference(PteFlags::WRITE);
                    if !pte.cow {
                        self.mmu.protect(va, read_only, true);
                        if pte.flags.contains(PteFlags::WRITE) {
                            batch.add(va.0);
                        }
                    }
                    (read_only, true)
                };
                if pte.pa != zero {
                    self.frames.get(pte.pa);
                }
                if child.mmu.map(va, pte.pa, flags, cow).is_err() {
                    if pte.pa != zero {
                        self.frames.put(pte.pa);
                    }
                    result = Err(VmError::NoMem);
                    break 'areas;
                }
                if pte.pa != zero {
                    child.rss += 1;
                }
            }
        }
        batch.emit(&mut self.mmu);
        result?;
        self.counters.record(Event::Fork, 1);
        Ok(child)
    }
}
