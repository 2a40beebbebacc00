//! The `sifive,test` finisher: powers the machine off with an exit status, which QEMU
//! turns into its own exit status.

use core::sync::atomic::{AtomicUsize, Ordering};

/// Value that means "pass": QEMU exits with status 0.
const FINISHER_PASS: u32 = 0x5555;
/// Low half of a "fail" value; the status goes in the high half.
const FINISHER_FAIL: u32 = 0x3333;

/// Kernel virtual address of the finisher register, 0 until [`init`].
static FINISHER: AtomicUsize = AtomicUsize::new(0);

/// Records the finisher's register address (kernel virtual).
///
/// # Safety
/// `addr` must map the `sifive,test` device's register for the kernel's lifetime.
pub unsafe fn init(addr: usize) {
    FINISHER.store(addr, Ordering::Release);
}

/// Powers off with `status` (0 = success). Falls back to an SBI shutdown, which
/// QEMU reports as status 0, when the device tree had no finisher.
pub fn power_off(status: u16) -> ! {
    let addr = FINISHER.load(Ordering::Acquire);
    if addr != 0 {
        let value = if status == 0 {
            FINISHER_PASS
        } else {
            (u32::from(status) << 16) | FINISHER_FAIL
        };
        // SAFETY: `init`'s contract: `addr` is the finisher register, mapped.
        unsafe { (addr as *mut u32).write_volatile(value) };
    }
    if status == 0 {
        sbi_rt::system_reset(sbi_rt::Shutdown, sbi_rt::NoReason);
    } else {
        sbi_rt::system_reset(sbi_rt::Shutdown, sbi_rt::SystemFailure);
    }
    loop {
        crate::arch::wait_for_interrupt();
    }
}
