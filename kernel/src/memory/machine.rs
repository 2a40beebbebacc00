//! The `unsafe` core of `memory`: what is sound only because of how the machine is set
//! up. Every other file of `memory` except the frame allocator ([`super::frames`]), the
//! global allocator ([`super::heap`]) and the in-kernel tests is safe Rust
//! (`deny(unsafe_code)`).
//!
//! * frames reached through the direct map: zeroing, copying and filling a frame the
//!   caller owns ([`zero_page`], [`copy_page`], [`fill_frame`], [`write_frame`]);
//! * loading `satp`: the kernel table ([`switch_to_kernel_table`], [`leave_user_table`])
//!   or a user table ([`load_user_table`]), each with the argument for why the running
//!   code stays mapped.
//!
//! A frame function's caller owns the frames it names (allocated to it, not mapped
//! anywhere another hart could write them); that is the rule of `memory`, which alone
//! sees this module.

use core::sync::atomic::Ordering;

use pagoda_mm::addr::{PAGE_SIZE, PhysAddr};
use pagoda_mm::layout::phys_to_virt;
use pagoda_mm::paging::PagingMemory;
use pagoda_mm::tlb::TlbOps;
use pagoda_mm::vm::Sv39Mmu;

use crate::arch::mmu::{self, KERNEL_SATP};

/// Words in one page.
const PAGE_WORDS: usize = PAGE_SIZE / 8;
/// Words [`zero_page`] stores per loop iteration: four 64-byte lines, so that the loop's
/// own two instructions (pointer step and branch) come once per 256 bytes (zeroing 4 KiB
/// takes 544 instructions, against 640 with one line per iteration).
const ZERO_WORDS: usize = 32;
/// Words [`copy_page`] moves per loop iteration: one 64-byte line (a 256-byte block
/// measured slower: the compiler then moves it through a `memcpy` call).
const COPY_WORDS: usize = 8;

/// Zeroes the frame at `pa`, [`ZERO_WORDS`] stores per iteration (the generic `memset`
/// moves a word at a time; this is on the demand-zero fault path, and zeroes fresh table
/// pages).
pub(super) fn zero_page(pa: PhysAddr) {
    let dst = frame_ptr(pa) as *mut u64;
    for line in 0..PAGE_WORDS / ZERO_WORDS {
        for word in 0..ZERO_WORDS {
            // SAFETY: `pa` is a frame the caller owns, direct-mapped and page aligned, so
            // every word of it is valid and aligned. Volatile keeps the compiler from
            // turning the loop back into a call to the word-at-a-time `memset`.
            unsafe { dst.add(line * ZERO_WORDS + word).write_volatile(0) };
        }
    }
}

/// Copies the frame at `src` into the frame at `dst`, [`COPY_WORDS`] words per iteration
/// (on the copy-on-write fault path). Never inlined: inlined into the fault handler, the
/// unrolled loop competes for registers with the handler's live values and spills (a
/// copy-on-write fault measured 2,903 instructions inlined against 2,345 as a call).
#[inline(never)]
pub(super) fn copy_page(dst: PhysAddr, src: PhysAddr) {
    let d = frame_ptr(dst) as *mut [u64; COPY_WORDS];
    let s = frame_ptr(src) as *const [u64; COPY_WORDS];
    for i in 0..PAGE_WORDS / COPY_WORDS {
        // SAFETY: both are allocated, direct-mapped, page-aligned frames and distinct (the
        // destination is fresh and the caller's alone).
        unsafe { d.add(i).write(s.add(i).read()) };
    }
}

/// Calls `f` with the bytes of the frame at `pa` (which the caller owns and nobody
/// writes meanwhile).
pub(super) fn with_frame<R>(pa: PhysAddr, f: impl FnOnce(&[u8]) -> R) -> R {
    // SAFETY: `pa` is a whole frame the caller owns, direct-mapped; nothing writes it
    // while the shared borrow lives (the caller's contract), and the borrow ends with `f`.
    f(unsafe { core::slice::from_raw_parts(frame_ptr(pa), PAGE_SIZE) })
}

/// The direct-map pointer to the frame at `pa`.
fn frame_ptr(pa: PhysAddr) -> *mut u8 {
    phys_to_virt(pa).as_usize() as *mut u8
}

/// Fills the frame at `dst` with `bytes` (at most a page) and zeroes the rest of it.
pub(super) fn fill_frame(dst: PhysAddr, bytes: &[u8]) {
    let len = bytes.len().min(PAGE_SIZE);
    // SAFETY: `dst` is a frame the caller owns, direct-mapped; `bytes` lies outside it
    // (the caller's data, not a frame it hands in), and `len` is at most a page.
    unsafe {
        core::ptr::copy_nonoverlapping(bytes.as_ptr(), frame_ptr(dst), len);
        core::ptr::write_bytes(frame_ptr(dst).add(len), 0, PAGE_SIZE - len);
    }
}

/// Copies `bytes` into the frame at `pa` from byte `offset` on; the bytes must fit in the
/// frame.
pub(super) fn write_frame(pa: PhysAddr, offset: usize, bytes: &[u8]) {
    debug_assert!(offset <= PAGE_SIZE && bytes.len() <= PAGE_SIZE - offset);
    // SAFETY: the frame is the caller's (mapped writable in one space only, or a page of
    // an in-memory file, which user programs may store to meanwhile: raw pointers, no
    // reference to the frame) and reached through the direct map whatever table is
    // active; the range lies inside it.
    unsafe {
        core::ptr::copy_nonoverlapping(bytes.as_ptr(), frame_ptr(pa).add(offset), bytes.len())
    };
}

/// Copies the bytes of the frame at `pa` from byte `offset` on into `buf`; the range
/// must lie inside the frame. The frame may be a page of an in-memory file that user
/// programs map writable and store to meanwhile: the copy goes through raw pointers (no
/// reference to the frame is formed) and sees their bytes as they are, as `read` of a
/// file mapped shared does on Linux.
pub(super) fn read_frame(pa: PhysAddr, offset: usize, buf: &mut [u8]) {
    debug_assert!(offset <= PAGE_SIZE && buf.len() <= PAGE_SIZE - offset);
    let len = buf.len().min(PAGE_SIZE.saturating_sub(offset));
    // SAFETY: the frame is allocated and held by the caller's reference, reached through
    // the direct map whatever table is active; the range lies inside it; `buf` is the
    // caller's kernel buffer, outside every frame of user memory.
    unsafe { core::ptr::copy_nonoverlapping(frame_ptr(pa).add(offset), buf.as_mut_ptr(), len) };
}

/// Stores `len` zero bytes into the frame at `pa` from byte `offset` on (the range
/// inside the frame); as [`read_frame`], the frame may be mapped by user programs.
pub(super) fn zero_frame_range(pa: PhysAddr, offset: usize, len: usize) {
    let offset = offset.min(PAGE_SIZE);
    let len = len.min(PAGE_SIZE - offset);
    // SAFETY: the frame is allocated and held by the caller's reference, reached through
    // the direct map; the range lies inside it.
    unsafe { core::ptr::write_bytes(frame_ptr(pa).add(offset), 0, len) };
}

/// Makes the calling hart translate with the kernel table (no user mappings).
#[inline(always)]
pub(super) fn switch_to_kernel_table() {
    let satp = KERNEL_SATP.load(Ordering::Acquire);
    // SAFETY: `kspace::init` stores the kernel table's `satp` before any hart loads it;
    // that table maps everything the kernel touches (image, stacks, RAM, devices) at the
    // addresses the boot table did, and is never freed.
    unsafe { mmu::write_satp_and_flush(satp) };
}

/// Loads the kernel table into `satp` without a flush (leaving a user table: see
/// [`super::uspace::activate_kernel`]).
#[inline(always)]
pub(super) fn leave_user_table() {
    let satp = KERNEL_SATP.load(Ordering::Acquire);
    // SAFETY: the kernel table maps the kernel half exactly as every user table does
    // (they share its root entries), so the running code and stack stay mapped.
    unsafe { mmu::write_satp(satp) };
}

/// Makes `mmu` this hart's translation with `asid` (no fence: the caller flushed if the
/// ASID was recycled).
#[inline(always)]
pub(super) fn load_user_table<M: PagingMemory, T: TlbOps>(mmu: &Sv39Mmu<M, T>, asid: u16) {
    // SAFETY: a user table shares the kernel half's root entries with the kernel table
    // (`Sv39Mmu::new` copies them), so the running code and stack stay mapped; the
    // caller (a task taking the hart) holds the space, which outlives its stay in `satp`.
    unsafe { mmu::write_satp(mmu.satp(asid)) };
}
