//! The kernel's own address space, built with the same `pagoda-mm` page-table code every
//! user address space uses, replacing the boot page table:
//!
//! * the kernel image at its link address with per-section permissions: text R+X,
//!   rodata R, data and bss R+W; no page is both writable and executable;
//! * all RAM direct-mapped R+W (1 GiB leaves where aligned, then 2 MiB, then 4 KiB);
//! * the devices the device tree lists (UART, finisher, RTC, virtio-mmio) direct-mapped
//!   R+W;
//! * kernel stacks: per-hart and per-process slots, each with an unmapped guard page
//!   below it (see [`super::kstack`]).
//!
//! All kernel mappings are global (`G`), so they survive ASID switches; user tables share
//! the kernel half by copying its root entries, which is why every kernel region's root
//! entry is created here, at boot.

use core::ops::Range;
use core::sync::atomic::Ordering;

use pagoda_mm::addr::{PAGE_SIZE, PhysAddr, VirtAddr, align_down, align_up};
use pagoda_mm::layout::{DIRECT_MAP_BASE, KERNEL_IMAGE_BASE};
use pagoda_mm::paging::{PageTable, PagingError, PteFlags};
use spin::{Mutex, Once};

use crate::arch::mmu::KERNEL_SATP;

pub use super::frames::KernelMemory;

use super::kstack::{KernelStack, StackError};
use super::machine;
use crate::boot::BootInfo;
use crate::boot::info::Region;

/// The kernel page table.
static KERNEL_TABLE: Once<Mutex<PageTable<KernelMemory>>> = Once::new();

/// Kernel-text permissions.
const TEXT: PteFlags = PteFlags::R
    .union(PteFlags::X)
    .union(PteFlags::G)
    .union(PteFlags::A);
/// Read-only data.
const RODATA: PteFlags = PteFlags::R.union(PteFlags::G).union(PteFlags::A);
/// Read-write data, RAM and device registers.
pub const DATA: PteFlags = PteFlags::R
    .union(PteFlags::W)
    .union(PteFlags::G)
    .union(PteFlags::A)
    .union(PteFlags::D);

/// Builds the kernel table and switches the calling (boot) hart to it. Returns the
/// number of ASID bits the hardware implements.
pub fn init(info: &BootInfo, kernel_pa: usize) -> Result<u32, PagingError> {
    let mut pt = PageTable::new(KernelMemory)?;
    let to_pa = |va: usize| PhysAddr(va - KERNEL_IMAGE_BASE.as_usize() + kernel_pa);
    let image = crate::arch::image_sections();
    let sections = [
        (image.text, TEXT),
        (image.rodata, RODATA),
        (image.data, DATA),
    ];
    for (Range { start, end }, flags) in sections {
        pt.map_range(VirtAddr(start), to_pa(start), end - start, flags)?;
    }
    for r in &info.ram {
        map_region(&mut pt, *r)?;
    }
    let d = &info.devices;
    for r in d
        .uart
        .iter()
        .map(|u| u.0)
        .chain(d.finisher)
        .chain(d.rtc)
        .chain(d.virtio.iter().map(|s| s.region))
        .chain(d.plic.iter().map(|p| p.region))
    {
        map_region(&mut pt, r)?;
    }
    let satp = pt.satp(0);
    KERNEL_SATP.store(satp, Ordering::Release);
    KERNEL_TABLE.call_once(|| Mutex::new(pt));
    // Every hart's stack, mapped now: this also creates the kernel-stack area's root
    // entry before any user table copies the kernel half.
    for &hart in &info.harts {
        let stack = KernelStack::for_hart(hart).map_err(|e| match e {
            StackError::Paging(p) => p,
            StackError::OutOfMemory => PagingError::OutOfMemory,
        })?;
        crate::smp::set_hart_stack(hart, stack);
    }
    machine::switch_to_kernel_table();
    let hart_slots = info.harts.iter().max().map_or(1, |&h| h + 1);
    Ok(super::tlb::init_asids(hart_slots))
}

/// Direct-maps a physical region (rounded out to pages).
fn map_region(pt: &mut PageTable<KernelMemory>, r: Region) -> Result<(), PagingError> {
    let start = align_down(r.start.0, PAGE_SIZE);
    let end = align_up(r.end.0, PAGE_SIZE).ok_or(PagingError::OutOfRange)?;
    let va = VirtAddr(DIRECT_MAP_BASE.as_usize() + start);
    match pt.map_range(va, PhysAddr(start), end - start, DATA) {
        // Two devices sharing a page are mapped once.
        Err(PagingError::AlreadyMapped) => Ok(()),
        other => other,
    }
}

/// The kernel page table (to map kernel stacks, and for user tables to share).
pub fn table() -> &'static Mutex<PageTable<KernelMemory>> {
    KERNEL_TABLE
        .get()
        .expect("kernel table used before memory::init")
}
