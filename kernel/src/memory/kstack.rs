//! Kernel stacks: [`KERNEL_STACK_SIZE`] bytes each, in their own slot of the
//! kernel-stack area, with an unmapped guard page below. Slot `h` (`h < MAX_HARTS`) is
//! hart `h`'s own stack; process stacks take the slots above.
//!
//! A stack overflow runs into the guard page and faults; the trap entry notices that the
//! stack pointer is below the running stack's limit ([`HartLocal`]'s `stack_limit`) and
//! reports it on an emergency stack instead of writing below the guard.
//!
//! A few process stacks that die are kept mapped in a small pool ([`POOL_SIZE`]) and
//! handed to the next process: creating a process then costs no allocation, no mapping
//! and, more importantly, dropping one no TLB flush on every hart.
//!
//! [`HartLocal`]: crate::arch::trap::HartLocal

use pagoda_mm::addr::Pfn;
use pagoda_mm::frame::FrameUse;
use pagoda_mm::layout::{KERNEL_STACK_SIZE, KERNEL_STACK_SLOTS, MAX_HARTS, kernel_stack};
use pagoda_mm::paging::PagingError;
use pagoda_mm::tlb::{FlushBatch, FlushTarget};
use spin::Mutex;

use super::kspace::{DATA, table};
use super::{frames, tlb};

/// Frames of one stack, as a buddy order.
const STACK_ORDER: usize =
    (KERNEL_STACK_SIZE / pagoda_mm::addr::PAGE_SIZE).trailing_zeros() as usize;
const _: () = assert!(KERNEL_STACK_SIZE.is_power_of_two());

/// Which slots are taken, a bit per slot; the hart slots are permanently taken.
static SLOTS: Mutex<[u64; KERNEL_STACK_SLOTS / 64]> = Mutex::new({
    let mut words = [0u64; KERNEL_STACK_SLOTS / 64];
    let mut hart = 0;
    while hart < MAX_HARTS {
        words[hart / 64] |= 1 << (hart % 64);
        hart += 1;
    }
    words
});

/// Process stacks kept mapped for reuse, at most.
pub const POOL_SIZE: usize = 8;

/// Mapped process stacks nobody uses: (slot, frames).
static POOL: Mutex<arrayvec::ArrayVec<(usize, Pfn), POOL_SIZE>> =
    Mutex::new(arrayvec::ArrayVec::new_const());

/// Why a stack could not be made.
#[derive(Debug)]
pub enum StackError {
    /// No free slot or no memory.
    OutOfMemory,
    /// The page table refused the mapping.
    Paging(PagingError),
}

/// A mapped kernel stack; unmapped (with a global TLB flush) and freed when dropped.
#[derive(Debug)]
pub struct KernelStack {
    slot: usize,
    pfn: Pfn,
}

impl KernelStack {
    /// A stack for a process (refused once free memory is down to the kernel's reserve,
    /// see [`frames::user_may_allocate`]).
    pub fn new() -> Result<KernelStack, StackError> {
        if let Some((slot, pfn)) = POOL.lock().pop() {
            return Ok(KernelStack { slot, pfn });
        }
        if !frames::user_may_allocate() {
            return Err(StackError::OutOfMemory);
        }
        let slot = {
            let mut slots = SLOTS.lock();
            let (w, bit) = slots
                .iter()
                .enumerate()
                .find_map(|(w, word)| (*word != u64::MAX).then(|| (w, word.trailing_ones())))
                .ok_or(StackError::OutOfMemory)?;
            slots[w] |= 1 << bit;
            w * 64 + bit as usize
        };
        Self::map(slot).inspect_err(|_| release_slot(slot))
    }

    /// Hart `hart`'s own stack.
    pub fn for_hart(hart: usize) -> Result<KernelStack, StackError> {
        Self::map(hart)
    }

    fn map(slot: usize) -> Result<KernelStack, StackError> {
        let pfn =
            frames::alloc(STACK_ORDER, FrameUse::Kernel).map_err(|_| StackError::OutOfMemory)?;
        let (_, bottom) = kernel_stack(slot);
        let mapped = table()
            .lock()
            .map_range(bottom, pfn.addr(), KERNEL_STACK_SIZE, DATA);
        if let Err(e) = mapped {
            frames::put(pfn);
            return Err(StackError::Paging(e));
        }
        Ok(KernelStack { slot, pfn })
    }

    /// One past the highest byte (the initial stack pointer).
    pub fn top(&self) -> usize {
        kernel_stack(self.slot).0.as_usize()
    }

    /// The lowest byte; the guard page lies just below.
    pub fn bottom(&self) -> usize {
        kernel_stack(self.slot).1.as_usize()
    }
}

fn release_slot(slot: usize) {
    SLOTS.lock()[slot / 64] &= !(1 << (slot % 64));
}

impl Drop for KernelStack {
    fn drop(&mut self) {
        // A process stack goes back to the pool while it has room (still mapped; its
        // contents are the kernel's own, never shown to anyone).
        if self.slot >= MAX_HARTS && POOL.lock().try_push((self.slot, self.pfn)).is_ok() {
            return;
        }
        unmap_and_free(self.slot, self.pfn);
    }
}

/// Unmaps the stack in `slot` (with a TLB flush on every hart), frees its frames and,
/// for a process stack, its slot.
fn unmap_and_free(slot: usize, pfn: Pfn) {
    let harts = crate::smp::online_mask();
    let mut batch = FlushBatch::new(&tlb::HartTlb, FlushTarget::Kernel { harts });
    let bottom = kernel_stack(slot).1;
    let unmapped = table()
        .lock()
        .unmap_range(bottom, KERNEL_STACK_SIZE, &mut batch, |_| {});
    drop(batch);
    if unmapped.is_ok() {
        frames::put(pfn);
    }
    if slot >= MAX_HARTS {
        release_slot(slot);
    }
}

/// Unmaps and frees every pooled stack (before memory statistics are reported, and for
/// tests that check that memory comes back).
pub fn drain_pool() {
    while let Some((slot, pfn)) = POOL.lock().pop() {
        unmap_and_free(slot, pfn);
    }
}
