//! The periodic timer: SBI `set_timer`, ticking [`TICKS_PER_SECOND`] times a second.

use core::sync::atomic::{AtomicU64, Ordering};

/// Timer interrupts per second.
pub const TICKS_PER_SECOND: u64 = 100;

/// One tick in nanoseconds: a task's time slice.
pub const TICK_NS: u64 = 1_000_000_000 / TICKS_PER_SECOND;

/// `time` CSR ticks per second (the device tree's `timebase-frequency`).
static TIMEBASE_HZ: AtomicU64 = AtomicU64::new(0);
/// Timer interrupts taken on all harts.
static TICKS: AtomicU64 = AtomicU64::new(0);

/// Records the timebase and arms the first timer interrupt on this hart.
pub fn init(timebase_hz: u64) {
    TIMEBASE_HZ.store(timebase_hz, Ordering::Relaxed);
    init_this_hart();
}

/// Arms the timer on the calling hart and enables its interrupts.
pub fn init_this_hart() {
    arm();
    crate::arch::enable_interrupt_sources();
}

fn arm() {
    let interval = TIMEBASE_HZ.load(Ordering::Relaxed) / TICKS_PER_SECOND;
    sbi_rt::set_timer(crate::arch::read_time() + interval);
}

/// Handles a supervisor timer interrupt.
pub fn on_interrupt() {
    TICKS.fetch_add(1, Ordering::Relaxed);
    arm();
}

/// Timer interrupts taken so far.
pub fn ticks() -> u64 {
    TICKS.load(Ordering::Relaxed)
}

/// Nanoseconds since boot, from the `time` CSR.
pub fn now_ns() -> u64 {
    let hz = TIMEBASE_HZ.load(Ordering::Relaxed).max(1);
    let t = crate::arch::read_time();
    ((t as u128) * 1_000_000_000 / hz as u128) as u64
}
