//! The `google,goldfish-rtc` real-time clock: nanoseconds since the Unix epoch.
//!
//! Read once at boot; the realtime clock is that value plus the time since boot (from the
//! `time` CSR), so it moves at the timebase's pace and never jumps.

use core::sync::atomic::{AtomicU64, Ordering};

/// `TIME_LOW` register (reading it latches `TIME_HIGH`).
const TIME_LOW: usize = 0x00;
/// `TIME_HIGH` register.
const TIME_HIGH: usize = 0x04;

/// Realtime at boot minus the time since boot then, in ns.
static EPOCH_OFFSET_NS: AtomicU64 = AtomicU64::new(0);

/// Reads the clock whose registers are mapped at `base`.
///
/// # Safety
/// `base` must be the direct-mapped register block of a goldfish RTC.
pub unsafe fn init(base: usize) {
    // SAFETY: the caller guarantees the registers are mapped; the low word must be read
    // first.
    let (low, high) = unsafe {
        let low = ((base + TIME_LOW) as *const u32).read_volatile();
        let high = ((base + TIME_HIGH) as *const u32).read_volatile();
        (low, high)
    };
    let now = (u64::from(high) << 32) | u64::from(low);
    EPOCH_OFFSET_NS.store(
        now.saturating_sub(crate::timer::now_ns()),
        Ordering::Relaxed,
    );
}

/// Nanoseconds since the Unix epoch (time since boot if the machine has no RTC).
pub fn realtime_ns() -> u64 {
    EPOCH_OFFSET_NS.load(Ordering::Relaxed) + crate::timer::now_ns()
}
