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

use core::ptr::NonNull;
use core::sync::atomic::{AtomicUsize, Ordering};

use pagoda_mm::addr::{PAGE_SIZE, PhysAddr, VirtAddr, align_down, align_up};
use pagoda_mm::layout::{DIRECT_MAP_BASE, KERNEL_IMAGE_BASE, phys_to_virt};
use pagoda_mm::paging::{PageTable, PagingError, PagingMemory, PteFlags, TablePage};
use spin::{Mutex, Once};

use super::frames;
use super::kstack::{KernelStack, StackError};
use crate::boot::BootInfo;
use crate::boot::info::Region;

/// Page-table pages from [`frames::alloc_table`] (zeroed, pooled per hart), reached
/// through the direct map.
#[derive(Clone, Copy, Debug, Default)]
pub struct KernelMemory;

// SAFETY: pages come zeroed from `frames::alloc_table` (frames: 4 KiB aligned, ours until
// freed) and the direct map makes every RAM page readable and writable at a fixed
// address.
unsafe impl PagingMemory for KernelMemory {
    fn alloc_table(&self) -> Option<PhysAddr> {
        frames::alloc_table(false)
    }

    unsafe fn free_table(&self, pa: PhysAddr) {
        // SAFETY: the table code's contract: `pa` came from `alloc_table`, is all zero and
        // nothing reaches it any more (the kernel table frees a page only after the flush).
        unsafe { frames::free_table(pa) };
    }

    fn table_ptr(&self, pa: PhysAddr) -> NonNull<TablePage> {
        let va = phys_to_virt(pa).as_usize() as *mut TablePage;
        // A direct-map address is never null.
        NonNull::new(va).unwrap_or(NonNull::dangling())
    }
}

/// The kernel page table.
static KERNEL_TABLE: Once<Mutex<PageTable<KernelMemory>>> = Once::new();

/// `satp` of the kernel table (ASID 0), read by secondary harts' entry code.
#[unsafe(no_mangle)]
pub static KERNEL_SATP: AtomicUsize = AtomicUsize::new(0);

unsafe extern "C" {
    static __text_start: u8;
    static __text_end: u8;
    static __rodata_start: u8;
    static __rodata_end: u8;
    static __data_start: u8;
    static __kernel_end: u8;
}

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
    let sections = [
        (
            &raw const __text_start as usize,
            &raw const __text_end as usize,
            TEXT,
        ),
        (
            &raw const __rodata_start as usize,
            &raw const __rodata_end as usize,
            RODATA,
        ),
        (
            &raw const __data_start as usize,
            &raw const __kernel_end as usize,
            DATA,
        ),
    ];
    for (start, end, flags) in sections {
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
        .chain(d.virtio.iter().copied())
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
    switch_to_kernel_table();
    let hart_slots = info.harts.iter().max().map_or(1, |&h| h + 1);
    Ok(super::tlb::init_asids(satp, hart_slots))
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

/// Makes the calling hart translate with the kernel table (no user mappings).
pub fn switch_to_kernel_table() {
    let satp = KERNEL_SATP.load(Ordering::Acquire);
    // SAFETY: the kernel table maps everything the kernel touches (image, stacks, RAM,
    // devices) at the addresses the boot table did.
    unsafe { core::arch::asm!("csrw satp, {0}", "sfence.vma", in(reg) satp) };
}

/// Loads the kernel table into `satp` without a flush (leaving a user table: see
/// [`super::uspace::activate_kernel`]).
pub fn leave_user_table() {
    let satp = KERNEL_SATP.load(Ordering::Acquire);
    // SAFETY: the kernel table maps the kernel half exactly as every user table does
    // (they share its root entries), so the running code and stack stay mapped.
    unsafe { core::arch::asm!("csrw satp, {0}", in(reg) satp) };
}

/// The kernel page table (to map kernel stacks, and for user tables to share).
pub fn table() -> &'static Mutex<PageTable<KernelMemory>> {
    KERNEL_TABLE
        .get()
        .expect("kernel table used before memory::init")
}
