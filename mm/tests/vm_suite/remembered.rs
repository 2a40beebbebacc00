//! The "not present, remembered" state of the real Sv39 table (room for swap entries):
//! `Sv39Mmu::remember` replaces a PTE after flushing it on every hart, `query` reports
//! the token, a fault there is a bus error, `munmap` clears it.

use pagoda_mm::addr::{PAGE_SIZE, VirtAddr};
use pagoda_mm::vm::abi::*;
use pagoda_mm::vm::{Access, AddressSpace, FaultError, Mmu, PagePerms, PteState, VmConfig};

use super::sim::SimFrames;
use crate::harts::{SimHarts, Table};
use crate::sv39_table::Sv39Table;

const P: usize = PAGE_SIZE;
const VA: usize = 0x10_0000;

#[test]
fn remember_flushes_the_page_it_replaces_on_every_hart() {
    let harts = SimHarts::new(2);
    let mut table = Sv39Table::create(harts.clone());
    table.activate(1);
    let (va, pa) = (VirtAddr(VA), pagoda_mm::addr::PhysAddr(0x9000_0000));
    let rw = PagePerms::READ | PagePerms::WRITE | PagePerms::USER;
    table.map(va, pa, rw, false).unwrap();
    harts.fill(1, VA, (pa, rw));
    let old = table.remember(va, 42).unwrap().expect("a page was present");
    assert_eq!((old.pa, old.flags), (pa, rw));
    assert_eq!(
        harts.cached(1, VA),
        None,
        "flushed before the frame was handed back"
    );
    assert_eq!(table.query(va), PteState::Remembered(42));
    assert_eq!(table.next_mapped(va, VirtAddr(VA + P)), None);
    // Remembering over a remembered or empty page replaces nothing present.
    assert_eq!(table.remember(va, 43), Ok(None));
    assert_eq!(table.query(va), PteState::Remembered(43));
    table.unmap_range(va, VirtAddr(VA + P), |_, _| panic!("nothing present"));
    assert_eq!(table.query(va), PteState::Absent);
    assert_eq!(table.tables_below_root(), 0);
}

#[test]
fn a_fault_on_a_remembered_page_is_a_bus_error_and_munmap_clears_it() {
    let frames = SimFrames::new();
    let mut table = Sv39Table::create(SimHarts::new(1));
    table.remember(VirtAddr(VA), 7).unwrap();
    let mut s = AddressSpace::new(table, frames.clone(), VmConfig::LINUX_DEFAULT);
    let a = s
        .mmap(
            VA,
            P,
            PROT_READ | PROT_WRITE,
            MAP_PRIVATE | MAP_ANONYMOUS,
            None,
            0,
        )
        .unwrap();
    assert_eq!(a, VirtAddr(VA), "the hint was free");
    assert_eq!(s.handle_fault(a, Access::Read), Err(FaultError::Bus));
    assert_eq!(s.mmu().query(a), PteState::Remembered(7));
    s.munmap(VA, P).unwrap();
    assert_eq!(s.mmu().query(a), PteState::Absent);
    assert_eq!(s.mmu().tables_below_root(), 0);
    assert_eq!(frames.live(), 0);
}
