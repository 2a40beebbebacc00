//! Harts: per-hart state reached through `tp`, per-hart guarded stacks, starting the
//! secondary harts through SBI HSM, and pinning the running hart ([`ThisHart`]).

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicUsize, Ordering};

use pagoda_mm::cpu::CpuLocal;
use pagoda_mm::layout::{KERNEL_IMAGE_BASE, MAX_HARTS};
use pagoda_mm::tlb::AtomicHartMask;
use spin::Once;

use crate::arch::trap::{HartLocal, hart_local, init_hart};
use crate::boot::BootInfo;
use crate::memory::kstack::KernelStack;

/// How long the boot hart waits for the others to report in.
const START_TIMEOUT_NS: u64 = 2_000_000_000;

/// SBI's "already available" error: `hart_start` of a hart that is not stopped.
const SBI_ERR_ALREADY_AVAILABLE: usize = -6isize as usize;

/// Size of each hart's emergency stack (used only to report a kernel stack overflow).
const EMERGENCY_STACK_SIZE: usize = 8 * 1024;

/// One hart's [`HartLocal`], written by the trap entry through `tp`/`sscratch`.
struct HartSlot(UnsafeCell<HartLocal>);

// SAFETY: slot `h` is used only by hart `h` (through its `tp`), never shared.
unsafe impl Sync for HartSlot {}

static HART_LOCALS: [HartSlot; MAX_HARTS] = [const {
    HartSlot(UnsafeCell::new(HartLocal {
        kernel_sp: 0,
        user_sp: 0,
        hart_id: 0,
        stack_limit: 0,
        emergency_sp: 0,
        current: 0,
    }))
}; MAX_HARTS];

#[repr(C, align(16))]
struct EmergencyStack([u8; EMERGENCY_STACK_SIZE]);

/// One emergency stack per hart.
static mut EMERGENCY: [EmergencyStack; MAX_HARTS] =
    [const { EmergencyStack([0; EMERGENCY_STACK_SIZE]) }; MAX_HARTS];

/// Each hart's own guarded kernel stack.
static HART_STACKS: [Once<KernelStack>; MAX_HARTS] = [const { Once::new() }; MAX_HARTS];

/// Harts running kernel code.
static ONLINE: AtomicUsize = AtomicUsize::new(0);
/// The same, as a mask (kernel TLB flushes go to these harts).
static ONLINE_MASK: AtomicHartMask = AtomicHartMask::new();

/// Sets up the calling hart: its [`HartLocal`] (reached through `tp`) and trap vector.
pub fn init_this_hart(hart: usize) {
    let slot = HART_LOCALS[hart].0.get();
    // SAFETY: only the address of this hart's emergency stack is taken.
    let emergency = unsafe { &raw mut EMERGENCY[hart] } as usize + EMERGENCY_STACK_SIZE;
    // SAFETY: hart ids are below MAX_HARTS (checked when the device tree was parsed, and
    // firmware starts only those harts); slot `hart` belongs to this hart alone.
    unsafe {
        (*slot).hart_id = hart;
        (*slot).emergency_sp = emergency;
        init_hart(slot);
    }
    ONLINE_MASK.insert(hart);
    ONLINE.fetch_add(1, Ordering::AcqRel);
}

/// The id of the hart running this code.
pub fn hart_id() -> usize {
    // SAFETY: `tp` points at this hart's HartLocal from `init_this_hart` on.
    unsafe { (*hart_local()).hart_id }
}

/// Sets the lowest valid address of the kernel stack this hart is about to run on.
pub fn set_stack_limit(limit: usize) {
    // SAFETY: this hart's own HartLocal; the trap entry only reads the field.
    unsafe { (*hart_local()).stack_limit = limit };
}

/// Records hart `hart`'s guarded stack (made when the kernel table is built).
pub fn set_hart_stack(hart: usize, stack: KernelStack) {
    HART_STACKS[hart].call_once(|| stack);
}

/// Hart `hart`'s guarded stack.
pub fn hart_stack(hart: usize) -> Option<&'static KernelStack> {
    HART_STACKS[hart].get()
}

/// The online harts.
pub fn online_mask() -> &'static AtomicHartMask {
    &ONLINE_MASK
}

unsafe extern "C" {
    fn _start_secondary();
}

/// Starts every hart of `info` except `boot_hart` and waits until they are online.
/// `kernel_pa` is the physical load address of the image (HSM wants a physical entry).
pub fn start_secondaries(info: &BootInfo, boot_hart: usize, kernel_pa: usize) -> usize {
    let entry = _start_secondary as *const () as usize - KERNEL_IMAGE_BASE.as_usize() + kernel_pa;
    let mut expected = online();
    let deadline = crate::timer::now_ns() + START_TIMEOUT_NS;
    for &hart in info.harts.iter().filter(|&&h| h != boot_hart) {
        let Some(stack) = hart_stack(hart) else {
            continue;
        };
        let mut ret = sbi_rt::hart_start(hart, entry, stack.top());
        // A hart the firmware also sent to `_start` is still on its way to stopping
        // itself (it lost the boot lottery, `arch::entry`): start it once it has.
        while ret.error == SBI_ERR_ALREADY_AVAILABLE && crate::timer::now_ns() < deadline {
            core::hint::spin_loop();
            ret = sbi_rt::hart_start(hart, entry, stack.top());
        }
        if ret.is_ok() {
            expected += 1;
        } else {
            crate::println!("smp: hart {hart} did not start: {:?}", ret);
        }
    }
    while online() < expected && crate::timer::now_ns() < deadline {
        core::hint::spin_loop();
    }
    online()
}

/// Harts currently online.
pub fn online() -> usize {
    ONLINE.load(Ordering::Acquire)
}

/// First Rust code on a secondary hart (called from `arch::entry`, already on its
/// guarded stack and the kernel page table).
pub extern "C" fn secondary_main(hart: usize) -> ! {
    init_this_hart(hart);
    if let Some(stack) = hart_stack(hart) {
        set_stack_limit(stack.bottom());
    }
    crate::timer::init_this_hart();
    crate::proc::sched::run()
}

/// Interrupts-off pin: this hart's caches (heap magazines, frame cache) are used by
/// nothing else meanwhile.
pub struct HartPin {
    was_enabled: bool,
}

impl Drop for HartPin {
    fn drop(&mut self) {
        if self.was_enabled {
            crate::arch::enable_interrupts();
        }
    }
}

/// The running hart, pinned by masking interrupts: the [`CpuLocal`] of the kernel's
/// heap and frame allocator.
pub struct ThisHart;

// SAFETY: with interrupts masked nothing else runs on this hart (no preemption in
// kernel mode, and interrupt handlers are masked), so the pin is exclusive.
unsafe impl CpuLocal for ThisHart {
    type Pin = HartPin;

    fn pin() -> (usize, HartPin) {
        let was_enabled = crate::arch::disable_interrupts();
        (crate::smp::hart_id(), HartPin { was_enabled })
    }
}
