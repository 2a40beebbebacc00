//! In-kernel tests of the trap path (`ktest=`; the runner is [`crate::ktest`]).

use core::sync::atomic::Ordering;

use crate::ktest::{TestContext, TestResult, check};

pub(crate) fn trap_breakpoint(_: &TestContext<'_>) -> TestResult {
    let before = crate::trap::BREAKPOINTS.load(Ordering::Relaxed);
    crate::arch::breakpoint();
    crate::arch::breakpoint();
    let after = crate::trap::BREAKPOINTS.load(Ordering::Relaxed);
    check(
        after == before + 2,
        "breakpoint traps not counted and resumed",
    )
}

pub(crate) fn trap_timer(_: &TestContext<'_>) -> TestResult {
    let start = crate::timer::ticks();
    let deadline = crate::timer::now_ns() + 1_000_000_000;
    while crate::timer::ticks() < start + 3 {
        if crate::timer::now_ns() > deadline {
            return Err("fewer than 3 timer interrupts in 1 s");
        }
        crate::arch::wait_for_interrupt();
    }
    Ok(())
}
