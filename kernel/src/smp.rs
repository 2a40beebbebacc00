//! Secondary harts: started through SBI HSM, each on its own stack.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicUsize, Ordering};

use pagoda_mm::layout::{KERNEL_IMAGE_BASE, MAX_HARTS};

use crate::arch::trap::{HartLocal, hart_local, init_hart};
use crate::boot::BootInfo;

/// Stack size of a secondary hart while it has no guarded kernel stack.
const SECONDARY_STACK_SIZE: usize = 16 * 1024;
/// How long the boot hart waits for the others to report in.
const START_TIMEOUT_NS: u64 = 2_000_000_000;

#[repr(C, align(4096))]
struct Stack([u8; SECONDARY_STACK_SIZE]);

/// One stack per possible hart id; hart `h` uses `STACKS[h]`.
static mut STACKS: [Stack; MAX_HARTS] = [const { Stack([0; SECONDARY_STACK_SIZE]) }; MAX_HARTS];

/// One hart's [`HartLocal`], written by the trap entry through `tp`/`sscratch`.
struct HartSlot(UnsafeCell<HartLocal>);

// SAFETY: slot `h` is used only by hart `h` (through its `tp`), never shared.
unsafe impl Sync for HartSlot {}

static HART_LOCALS: [HartSlot; MAX_HARTS] = [const {
    HartSlot(UnsafeCell::new(HartLocal {
        kernel_sp: 0,
        user_sp: 0,
        hart_id: 0,
    }))
}; MAX_HARTS];

/// Sets up the calling hart: its [`HartLocal`] (reached through `tp`) and trap vector.
pub fn init_this_hart(hart: usize) {
    let slot = HART_LOCALS[hart].0.get();
    // SAFETY: hart ids are below MAX_HARTS (checked when the device tree was parsed, and
    // firmware starts only those harts); slot `hart` belongs to this hart alone.
    unsafe {
        (*slot).hart_id = hart;
        init_hart(slot);
    }
}

/// The id of the hart running this code.
pub fn hart_id() -> usize {
    // SAFETY: `tp` points at this hart's HartLocal from `init_this_hart` on.
    unsafe { (*hart_local()).hart_id }
}

/// Harts running kernel code (the boot hart counts itself).
static ONLINE: AtomicUsize = AtomicUsize::new(1);

unsafe extern "C" {
    fn _start_secondary();
}

/// Starts every hart of `info` except `boot_hart` and waits until they are online.
/// `kernel_pa` is the physical load address of the image (HSM wants a physical entry).
pub fn start_secondaries(info: &BootInfo, boot_hart: usize, kernel_pa: usize) -> usize {
    let entry = _start_secondary as *const () as usize - KERNEL_IMAGE_BASE.as_usize() + kernel_pa;
    let mut expected = 1;
    for &hart in info.harts.iter().filter(|&&h| h != boot_hart) {
        // Hart ids were checked against MAX_HARTS when the device tree was parsed.
        // SAFETY: only the address is taken (no reference); hart `hart` is the only user
        // of STACKS[hart], and it has not started yet.
        let stack = unsafe { &raw mut STACKS[hart] };
        let top = stack as usize + SECONDARY_STACK_SIZE;
        let ret = sbi_rt::hart_start(hart, entry, top);
        if ret.is_ok() {
            expected += 1;
        } else {
            crate::println!("smp: hart {hart} did not start: {:?}", ret);
        }
    }
    let deadline = crate::timer::now_ns() + START_TIMEOUT_NS;
    while ONLINE.load(Ordering::Acquire) < expected && crate::timer::now_ns() < deadline {
        core::hint::spin_loop();
    }
    online()
}

/// Harts currently online.
pub fn online() -> usize {
    ONLINE.load(Ordering::Acquire)
}

/// First Rust code on a secondary hart (called from `arch::entry`).
pub extern "C" fn secondary_main(hart: usize) -> ! {
    init_this_hart(hart);
    ONLINE.fetch_add(1, Ordering::AcqRel);
    loop {
        crate::arch::wait_for_interrupt();
    }
}
