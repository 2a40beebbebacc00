//! The Sv39 address-space layout: every address, size and limit, named once by purpose.
//!
//! ```text
//!  virtual address                         what lives there
//!  0xffff_ffff_ffff_ffff ┐
//!                        │ kernel image (text RX, rodata R, data/bss RW), linked at
//!  0xffff_ffff_8000_0000 ┘ KERNEL_IMAGE_BASE, backed by wherever the firmware loaded it
//!  0xffff_ffe0_0000_0000 ┐ kernel stacks: one slot per hart / per process, each
//!                        │ KERNEL_STACK_SIZE of stack above an unmapped guard page
//!  0xffff_ffc0_0000_0000 ┐ direct map: physical address P at DIRECT_MAP_BASE + P,
//!                        │ RAM and device MMIO (DIRECT_MAP_SIZE = 128 GiB of PA space)
//!  ...                     non-canonical hole (faults)
//!  0x0000_003f_ffff_ffff ┐ user half: USER_END is exclusive
//!  0x0000_0000_0000_0000 ┘
//! ```
//!
//! Nothing here names a physical address: RAM, devices and reserved ranges come from the
//! device tree at boot.

use crate::addr::{PAGE_SIZE, VirtAddr, align_down};

/// Bytes in one 2 MiB "megapage" (a level-1 leaf).
pub const MEGAPAGE_SIZE: usize = 1 << 21;
/// Bytes in one 1 GiB "gigapage" (a level-2 leaf).
pub const GIGAPAGE_SIZE: usize = 1 << 30;
/// The size of a user huge page (transparent huge pages: one Sv39 megapage leaf).
pub const HUGE_PAGE_SIZE: usize = MEGAPAGE_SIZE;
/// 4 KiB pages in a user huge page.
pub const HUGE_PAGE_PAGES: usize = HUGE_PAGE_SIZE / PAGE_SIZE;
/// The buddy order of a user huge page's frame block.
pub const HUGE_PAGE_ORDER: usize = HUGE_PAGE_PAGES.trailing_zeros() as usize;

/// Exclusive top of the user half of Sv39 (256 GiB), as Linux's `TASK_SIZE` for Sv39.
pub const USER_END: VirtAddr = VirtAddr(0x40_0000_0000);

/// Top of a new process's stack (exclusive): the stack area ends at the top of the user
/// half, as on Linux without address-space randomisation.
pub const USER_STACK_TOP: VirtAddr = USER_END;

/// Bytes of stack area `execve` creates; the area grows on demand below that, up to the
/// stack limit (Linux likewise starts with a small stack area and expands it).
pub const USER_STACK_INITIAL: usize = 128 * 1024;

/// Bytes kept free below a stack area (Linux's `stack_guard_gap`, 256 pages): no other
/// mapping is placed there and the stack does not grow closer than this to an accessible
/// mapping below it.
pub const STACK_GUARD_GAP: usize = 256 * PAGE_SIZE;

/// Least distance between the top of the user half and `mmap_base` (Linux's `MIN_GAP`).
pub const MMAP_MIN_GAP: usize = 128 << 20;

/// Greatest distance between the top of the user half and `mmap_base` (Linux's
/// `MAX_GAP`: five sixths of the user half).
pub const MMAP_MAX_GAP: usize = USER_END.0 / 6 * 5;

/// Where bottom-up placement starts when the top-down search finds no room (Linux's
/// `TASK_UNMAPPED_BASE`: a third of the user half).
pub const TASK_UNMAPPED_BASE: usize = align_down(USER_END.0 / 3, PAGE_SIZE);

/// Lowest address of the kernel half (the first canonical address with bit 38 set).
pub const KERNEL_HALF_START: VirtAddr = VirtAddr(0xffff_ffc0_0000_0000);

/// Where physical address 0 appears in the kernel's direct map.
pub const DIRECT_MAP_BASE: VirtAddr = KERNEL_HALF_START;
/// How much physical address space the direct map covers; RAM above it is not used.
pub const DIRECT_MAP_SIZE: usize = 128 * GIGAPAGE_SIZE;

/// Start of the kernel-stack area (slots of guard page + stack).
pub const KERNEL_STACKS_BASE: VirtAddr = VirtAddr(0xffff_ffe0_0000_0000);
/// Size of one kernel stack (per hart and per process).
pub const KERNEL_STACK_SIZE: usize = 64 * 1024;
/// Unmapped bytes below each kernel stack: an overflow faults here instead of corrupting.
pub const KERNEL_STACK_GUARD: usize = 4096;
/// Distance between consecutive kernel-stack slots.
pub const KERNEL_STACK_SLOT: usize = KERNEL_STACK_SIZE + KERNEL_STACK_GUARD;
/// Number of kernel-stack slots (harts plus processes).
pub const KERNEL_STACK_SLOTS: usize = 4096;

/// Most harts the kernel runs on; hart ids must be below it (per-hart state is an array).
pub const MAX_HARTS: usize = 32;

/// Link address of the kernel image; its first byte is loaded at a 2 MiB-aligned physical
/// address chosen by the firmware.
pub const KERNEL_IMAGE_BASE: VirtAddr = VirtAddr(0xffff_ffff_8000_0000);
/// Largest kernel image the early boot mapping covers.
pub const KERNEL_IMAGE_MAX: usize = 64 * MEGAPAGE_SIZE;

/// The kernel virtual address of physical address `pa` in the direct map.
#[inline]
pub const fn phys_to_virt(pa: crate::addr::PhysAddr) -> VirtAddr {
    VirtAddr(DIRECT_MAP_BASE.0 + pa.0)
}

/// Top (exclusive) and bottom of kernel-stack slot `slot`; the guard page lies just below
/// the bottom.
#[inline]
pub const fn kernel_stack(slot: usize) -> (VirtAddr, VirtAddr) {
    let bottom = KERNEL_STACKS_BASE.0 + slot * KERNEL_STACK_SLOT + KERNEL_STACK_GUARD;
    (VirtAddr(bottom + KERNEL_STACK_SIZE), VirtAddr(bottom))
}

// The regions above must not overlap; checked when the crate compiles.
const _: () = {
    assert!(DIRECT_MAP_BASE.0 + DIRECT_MAP_SIZE <= KERNEL_STACKS_BASE.0);
    assert!(kernel_stack(KERNEL_STACK_SLOTS - 1).0.0 <= KERNEL_IMAGE_BASE.0);
    assert!(KERNEL_HALF_START.is_canonical());
    assert!(VirtAddr(USER_END.0 - 1).is_canonical());
    assert!(!USER_END.is_canonical());
};
