//! Trap dispatch: interrupts and exceptions taken while the kernel runs.
//!
//! Timer interrupts re-arm the timer and count ticks. A breakpoint (`ebreak`) is
//! counted and skipped (the trap-path self test uses it). Any other exception in kernel
//! mode is a kernel bug: it is reported with cause, `sepc`, `stval` and every register,
//! then the kernel panics (which powers off with a failure status).

use core::sync::atomic::{AtomicUsize, Ordering};

use riscv::register::{scause, stval};

use crate::arch::trap::TrapFrame;

/// `scause` interrupt bit.
const INTERRUPT: usize = 1 << (usize::BITS - 1);
/// Supervisor timer interrupt.
const IRQ_S_TIMER: usize = 5;
/// Breakpoint exception.
const EXC_BREAKPOINT: usize = 3;
/// Page faults: instruction, load, store.
const EXC_PAGE_FAULTS: [usize; 3] = [12, 13, 15];

/// Faults inside the fault-tolerant copy routine that ended the copy with an error.
pub static COPY_FAULTS: AtomicUsize = AtomicUsize::new(0);

/// Breakpoints taken in kernel mode (see [`crate::ktest`]).
pub static BREAKPOINTS: AtomicUsize = AtomicUsize::new(0);

/// Human-readable names of the standard exception causes.
fn exception_name(code: usize) -> &'static str {
    match code {
        0 => "instruction address misaligned",
        1 => "instruction access fault",
        2 => "illegal instruction",
        3 => "breakpoint",
        4 => "load address misaligned",
        5 => "load access fault",
        6 => "store address misaligned",
        7 => "store access fault",
        8 => "environment call from U-mode",
        9 => "environment call from S-mode",
        12 => "instruction page fault",
        13 => "load page fault",
        15 => "store page fault",
        _ => "unknown exception",
    }
}

/// Length in bytes of the instruction at `pc` (2 for compressed, else 4).
fn instruction_len(pc: usize) -> usize {
    // SAFETY: `pc` is the address of an instruction the hart just fetched, so the
    // half-word there is mapped and readable (kernel text).
    let low = unsafe { (pc as *const u16).read_volatile() };
    if low & 0b11 == 0b11 { 4 } else { 2 }
}

/// Called by the trap entry for every trap taken in kernel mode.
pub extern "C" fn kernel_trap(frame: &mut TrapFrame) {
    let cause = scause::read().bits();
    if cause & INTERRUPT != 0 {
        match cause & !INTERRUPT {
            IRQ_S_TIMER => crate::timer::on_interrupt(),
            other => panic!("unexpected interrupt {other} in kernel mode"),
        }
        return;
    }
    if cause == EXC_BREAKPOINT {
        BREAKPOINTS.fetch_add(1, Ordering::Relaxed);
        frame.sepc += instruction_len(frame.sepc);
        return;
    }
    if EXC_PAGE_FAULTS.contains(&cause) && crate::arch::uaccess::in_user_copy(frame.sepc) {
        // A checked copy touched an unmapped or protected page: it returns failure.
        COPY_FAULTS.fetch_add(1, Ordering::Relaxed);
        frame.sepc = crate::arch::uaccess::fault_resume_pc();
        return;
    }
    report(frame, cause, stval::read());
    panic!(
        "{} in kernel mode at {:#x}",
        exception_name(cause),
        frame.sepc
    );
}

/// Called on the emergency stack when a trap's frame would have gone below the running
/// kernel stack's limit: the stack overflowed into its guard page.
pub extern "C" fn kernel_stack_overflow(frame: &mut TrapFrame) -> ! {
    report(frame, scause::read().bits(), stval::read());
    panic!(
        "kernel stack overflow on hart {}: sp {:#x} ran into the guard page",
        crate::smp::hart_id(),
        frame.regs[2]
    );
}

/// Prints a trap report: cause, `sepc`, `stval` and the registers.
pub fn report(frame: &TrapFrame, cause: usize, stval: usize) {
    const NAMES: [&str; 32] = [
        "zero", "ra", "sp", "gp", "tp", "t0", "t1", "t2", "s0", "s1", "a0", "a1", "a2", "a3", "a4",
        "a5", "a6", "a7", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "t3", "t4",
        "t5", "t6",
    ];
    crate::println!(
        "trap: {} (scause {:#x}) sepc {:#x} stval {:#x} sstatus {:#x}",
        exception_name(cause),
        cause,
        frame.sepc,
        stval,
        frame.sstatus
    );
    for (i, (name, value)) in NAMES.iter().zip(frame.regs).enumerate().skip(1) {
        crate::print!("  {name:>4} {value:#018x}");
        if i % 4 == 0 {
            crate::println!();
        }
    }
    crate::println!();
}
