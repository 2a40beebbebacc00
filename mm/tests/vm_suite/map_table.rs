//! The simulated page table: a map from page to PTE, flushing through [`SimHarts`] as the
//! [`Mmu`] contract asks (removals flushed before their frames are handed back).

use std::collections::BTreeMap;

use pagoda_mm::addr::{PAGE_SIZE, PhysAddr, VirtAddr, VirtRange};
use pagoda_mm::vm::{Mmu, OutOfMemory, PagePerms, PteInfo, PteState, SwapEntry, TlbFlush};

use crate::harts::{Flush, SimHarts, Table};

pub struct MapTable {
    ptes: BTreeMap<usize, PteInfo>,
    remembered: BTreeMap<usize, SwapEntry>,
    harts: SimHarts,
}

impl Table for MapTable {
    fn create(harts: SimHarts) -> Self {
        MapTable {
            ptes: BTreeMap::new(),
            remembered: BTreeMap::new(),
            harts,
        }
    }

    fn activate(&self, _: usize) {}

    fn leave(&self, _: usize) {}

    fn tables_below_root(&self) -> usize {
        0
    }
}

impl Mmu for MapTable {
    fn take_accessed(&mut self, va: VirtAddr) -> bool {
        self.ptes
            .get_mut(&va.0)
            .is_some_and(|p| core::mem::replace(&mut p.accessed, false))
    }

    fn map(
        &mut self,
        va: VirtAddr,
        pa: PhysAddr,
        flags: PagePerms,
        cow: bool,
    ) -> Result<(), OutOfMemory> {
        assert!(va.is_page_aligned() && pa.is_page_aligned());
        assert!(flags.contains(PagePerms::USER));
        assert!(!flags.contains(PagePerms::WRITE) || flags.contains(PagePerms::READ));
        let pte = PteInfo {
            pa,
            flags,
            cow,
            accessed: false,
            dirty: false,
            huge: false,
            shared: false,
        };
        self.remembered.remove(&va.0);
        self.ptes.insert(va.0, pte);
        Ok(())
    }

    fn unmap(&mut self, va: VirtAddr) -> Option<PhysAddr> {
        let mut removed = None;
        self.unmap_range(va, VirtAddr(va.0 + PAGE_SIZE), |_, pte| {
            removed = Some(pte.pa)
        });
        removed
    }

    fn protect(&mut self, va: VirtAddr, flags: PagePerms, cow: bool) {
        assert!(!flags.contains(PagePerms::WRITE) || flags.contains(PagePerms::READ));
        if let Some(pte) = self.ptes.get_mut(&va.0) {
            pte.flags = flags;
            pte.cow = cow;
        }
    }

    fn query(&self, va: VirtAddr) -> PteState {
        if let Some(&entry) = self.remembered.get(&va.0) {
            return PteState::Remembered(entry);
        }
        self.ptes
            .get(&va.0)
            .map_or(PteState::Absent, |&pte| PteState::Present(pte))
    }

    fn remember(&mut self, va: VirtAddr, entry: SwapEntry) -> Result<Option<PteInfo>, OutOfMemory> {
        let old = self.ptes.remove(&va.0);
        if old.is_some_and(|pte| pte.flags.is_accessible()) {
            self.flush_page(va);
        }
        self.remembered.insert(va.0, entry);
        Ok(old)
    }

    fn remembered_range(
        &mut self,
        start: VirtAddr,
        end: VirtAddr,
        take: bool,
        mut f: impl FnMut(VirtAddr, SwapEntry),
    ) {
        let found: Vec<(usize, SwapEntry)> = self
            .remembered
            .range(start.0..end.0)
            .map(|(&va, &e)| (va, e))
            .collect();
        for (va, entry) in found {
            if take {
                self.remembered.remove(&va);
            }
            f(VirtAddr(va), entry);
        }
    }

    fn next_mapped(&self, from: VirtAddr, end: VirtAddr) -> Option<(VirtAddr, PteInfo)> {
        self.ptes
            .range(from.0..end.0)
            .next()
            .map(|(&va, &pte)| (VirtAddr(va), pte))
    }

    /// Removes, flushes the accessible pages (their covering range), then calls `f`.
    fn unmap_range(
        &mut self,
        start: VirtAddr,
        end: VirtAddr,
        mut f: impl FnMut(VirtAddr, PteInfo),
    ) {
        let gone: Vec<usize> = self
            .remembered
            .range(start.0..end.0)
            .map(|(&va, _)| va)
            .collect();
        for va in gone {
            self.remembered.remove(&va);
        }
        let pages: Vec<usize> = self.ptes.range(start.0..end.0).map(|(&va, _)| va).collect();
        let removed: Vec<(usize, PteInfo)> = pages
            .iter()
            .map(|va| (*va, self.ptes.remove(va).unwrap()))
            .collect();
        let stale: Vec<usize> = removed
            .iter()
            .filter(|(_, pte)| pte.flags.is_accessible())
            .map(|(va, _)| *va)
            .collect();
        match stale[..] {
            [] => {}
            [page] => self.flush_page(VirtAddr(page)),
            [lo, .., hi] => self.flush_range(VirtAddr(lo)..VirtAddr(hi + PAGE_SIZE)),
        }
        for (va, pte) in removed {
            f(VirtAddr(va), pte);
        }
    }
}

impl TlbFlush for MapTable {
    fn flush_page(&mut self, va: VirtAddr) {
        self.harts.shootdown(Some(&[va.0]));
        self.harts.record(Flush::Page(va.0));
    }

    fn flush_range(&mut self, range: VirtRange) {
        let pages: Vec<usize> = (range.start.0..range.end.0).step_by(PAGE_SIZE).collect();
        self.harts.shootdown(Some(&pages));
        self.harts.record(Flush::Range(range.start.0, range.end.0));
    }

    fn flush_all(&mut self) {
        self.harts.shootdown(None);
        self.harts.record(Flush::All);
    }
}
