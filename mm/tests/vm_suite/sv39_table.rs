//! The real page table under the suite: pagoda-mm's [`Sv39Mmu`] over a simulated
//! physical memory (one per space, so the suite can check that teardown frees every
//! table page) and [`SimHarts`] for the fences.

use std::ptr::NonNull;
use std::sync::{Arc, LazyLock};

use pagoda_mm::addr::PhysAddr;
use pagoda_mm::paging::{PageTable, PagingMemory, TablePage};
use pagoda_mm::tlb::AsidAllocator;
use pagoda_mm::vm::Sv39Mmu;

use crate::harts::{SimHarts, Table};
use crate::sim_memory::SimMemory;

/// Table pages one space may use (reserved lazily by the host).
const SPACE_TABLE_PAGES: usize = 512;

/// The real table of one space.
pub type Sv39Table = Sv39Mmu<SpaceMemory, SimHarts>;

/// The kernel table whose (empty) kernel half every user table shares.
static KERNEL: LazyLock<PageTable<SimMemory>> =
    LazyLock::new(|| PageTable::new(SimMemory::new(1)).expect("kernel root"));

/// ASIDs for every space of the suite (16 bits, as many harts as any test uses).
static ASIDS: LazyLock<AsidAllocator> = LazyLock::new(|| AsidAllocator::new(16, 4));

/// One space's simulated memory, shared with the test that checks it.
#[derive(Clone)]
pub struct SpaceMemory(Arc<SimMemory>);

impl SpaceMemory {
    /// Table pages in use.
    fn live_tables(&self) -> usize {
        self.0.live_tables()
    }
}

// SAFETY: forwards every call to `SimMemory`, which upholds the contract.
unsafe impl PagingMemory for SpaceMemory {
    fn alloc_table(&self) -> Option<PhysAddr> {
        self.0.alloc_table()
    }

    unsafe fn free_table(&self, pa: PhysAddr) {
        // SAFETY: the caller upholds `free_table`'s contract.
        unsafe { self.0.free_table(pa) }
    }

    fn table_ptr(&self, pa: PhysAddr) -> NonNull<TablePage> {
        self.0.table_ptr(pa)
    }
}

impl Table for Sv39Table {
    fn create(harts: SimHarts) -> Self {
        let mem = SpaceMemory(Arc::new(SimMemory::new(SPACE_TABLE_PAGES)));
        let table = Sv39Mmu::new(mem, harts, &KERNEL).expect("user root");
        table.activate(0);
        table
    }

    fn activate(&self, hart: usize) {
        let switch = ASIDS.asid_for(self.context(), hart);
        if (switch.flush_all || switch.flush_asid) && !self.tlb().skips_switch_flush() {
            // The simulated TLBs are per space: this hart's entries are the ASID's.
            self.tlb().drop_on(hart, None);
        }
    }

    fn leave(&self, hart: usize) {
        self.context().leave(hart);
    }

    fn tables_below_root(&self) -> usize {
        self.memory().live_tables() - 1
    }
}
