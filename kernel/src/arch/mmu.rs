//! Address translation on this hart: loading `satp`, and `sfence.vma` in its four forms.
//!
//! Each function is one or two instructions and `#[inline(always)]`: the context switch,
//! the fault path and every flush go through them. The fences are safe (they only drop
//! cached translations); loading `satp` is not, since the next instruction is fetched
//! through the new table.

use core::sync::atomic::AtomicUsize;

use pagoda_mm::addr::VirtAddr;
use pagoda_mm::paging::SATP_ASID_SHIFT;
use pagoda_mm::tlb::MAX_ASID_BITS;

/// `satp` of the kernel table (ASID 0): stored once by `memory::kspace` when the table
/// is built, read by the other harts' entry code ([`super::entry`]) and by
/// `memory::machine` when a hart goes back to the kernel table.
#[unsafe(no_mangle)]
pub static KERNEL_SATP: AtomicUsize = AtomicUsize::new(0);

/// Drops every cached translation of this hart (`sfence.vma`).
#[inline(always)]
pub fn sfence_all() {
    // SAFETY: `sfence.vma` only invalidates address-translation caches.
    unsafe { core::arch::asm!("sfence.vma") }
}

/// Drops this hart's cached translations of page `va` in every address space.
#[inline(always)]
pub fn sfence_page(va: VirtAddr) {
    // SAFETY: `sfence.vma` only invalidates address-translation caches.
    unsafe { core::arch::asm!("sfence.vma {0}, zero", in(reg) va.0) }
}

/// Drops this hart's cached non-global translations tagged with `asid`.
#[inline(always)]
pub fn sfence_asid(asid: u16) {
    // SAFETY: `sfence.vma` only invalidates address-translation caches.
    unsafe { core::arch::asm!("sfence.vma zero, {0}", in(reg) asid as usize) }
}

/// Drops this hart's cached non-global translation of page `va` tagged with `asid`.
#[inline(always)]
pub fn sfence_page_asid(va: VirtAddr, asid: u16) {
    // SAFETY: `sfence.vma` only invalidates address-translation caches.
    unsafe { core::arch::asm!("sfence.vma {0}, {1}", in(reg) va.0, in(reg) asid as usize) }
}

/// Loads `satp` (no fence: translations cached under other ASIDs stay valid).
///
/// # Safety
///
/// The table `satp` names must map the running code, its stack and every kernel address
/// used afterwards exactly as the table it replaces does (the kernel half), and stay
/// alive while it is in this hart's `satp`.
#[inline(always)]
pub unsafe fn write_satp(satp: usize) {
    // SAFETY: the caller's contract.
    unsafe { core::arch::asm!("csrw satp, {0}", in(reg) satp) }
}

/// Loads `satp`, then drops every cached translation of this hart.
///
/// # Safety
///
/// As [`write_satp`].
#[inline(always)]
pub unsafe fn write_satp_and_flush(satp: usize) {
    // SAFETY: the caller's contract.
    unsafe { core::arch::asm!("csrw satp, {0}", "sfence.vma", in(reg) satp) }
}

/// How many ASID bits `satp` implements: writes all ones into the ASID field of the
/// current `satp`, reads it back, restores the value and flushes.
pub fn asid_bits() -> u32 {
    let mask = (1usize << MAX_ASID_BITS) - 1;
    let read: usize;
    // SAFETY: same table and mode, only the ASID field changes; it is restored at once
    // and the TLB flushed, so no stale translation under a wrong ASID survives.
    unsafe {
        core::arch::asm!(
            "csrr {s}, satp",
            "or {p}, {s}, {m}",
            "csrw satp, {p}",
            "csrr {r}, satp",
            "csrw satp, {s}",
            "sfence.vma",
            s = out(reg) _,
            p = out(reg) _,
            m = in(reg) mask << SATP_ASID_SHIFT,
            r = out(reg) read,
        );
    }
    ((read >> SATP_ASID_SHIFT) & mask).count_ones()
}
