//! Trap dispatch.
//!
//! From user mode ([`user_trap`]): system calls go to [`crate::syscall`]; page faults to
//! the process's address space, and an unresolvable one kills the process with `SIGSEGV`
//! or `SIGBUS` and a log line; one that finds no frame calls the out-of-memory killer
//! ([`proc::oom`]) and is retried; other exceptions kill it with the matching signal; a timer
//! interrupt preempts it (round robin). Before returning to user mode a pending kill is
//! acted on.
//!
//! In kernel mode ([`kernel_trap`]): timer interrupts re-arm the timer and count ticks. A
//! breakpoint (`ebreak`) is counted and skipped (the trap-path self test uses it). A page
//! fault inside the user-copy routine is resolved through the current process's address
//! space (demand paging and copy-on-write apply to the kernel's accesses too) or ends the
//! copy with a failure (`EFAULT`). Any other exception in kernel mode is a kernel bug: it
//! is reported with cause, `sepc`, `stval` and every register, then the kernel panics
//! (which powers off with a failure status).

#![deny(unsafe_code)]

pub mod ktest;

use core::sync::atomic::{AtomicUsize, Ordering};

use pagoda_mm::vm::{Access, FaultError};
use riscv::register::{scause, stval};

use crate::arch::trap::{EXC_BREAKPOINT, TrapFrame};
use crate::proc::{self, signal};

/// `scause` interrupt bit.
const INTERRUPT: usize = 1 << (usize::BITS - 1);
/// Supervisor timer interrupt.
const IRQ_S_TIMER: usize = 5;
/// Supervisor software interrupt: another hart woke this one (work was queued).
const IRQ_S_SOFT: usize = 1;
/// Supervisor external interrupt (a device, through the PLIC).
const IRQ_S_EXTERNAL: usize = 9;
/// Page faults: instruction, load, store.
const EXC_PAGE_FAULTS: [usize; 3] = [12, 13, 15];
/// Environment call from U-mode.
const EXC_USER_ECALL: usize = 8;

/// The access a page-fault cause stands for.
fn fault_access(cause: usize) -> Access {
    match cause {
        12 => Access::Exec,
        13 => Access::Read,
        _ => Access::Write,
    }
}

/// Resolves a page fault at `addr` in the current process's address space: a page in
/// swap is read back (sleeping, with no lock held), and when no frame is free the
/// coldest pages are reclaimed, then the fault is tried again.
fn resolve_user_fault(addr: usize, access: Access) -> Result<(), FaultError> {
    loop {
        let attempt = match fault_once(addr, access) {
            Err(FaultError::SwappedOut(entry)) => crate::memory::swap::swap_in(addr, entry),
            Ok(()) => {
                // Below the low watermark, background reclaim takes over.
                crate::memory::reclaim::after_fault();
                return Ok(());
            }
            other => other,
        };
        match attempt {
            // Brought in (or the PTE changed): fault again to map or find it.
            Ok(()) => {}
            Err(FaultError::OutOfMemory) => {
                if crate::memory::reclaim::reclaim(crate::memory::reclaim::BATCH) == 0
                    || proc::current().killed.load(Ordering::Acquire)
                {
                    return Err(FaultError::OutOfMemory);
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// One attempt at a fault, under the space's lock.
fn fault_once(addr: usize, access: Access) -> Result<(), FaultError> {
    proc::sched::with_current(|me| {
        let me = me.ok_or(FaultError::Unmapped)?;
        let mm = me.vm.lock();
        let mut vm = mm.lock();
        let vm = vm.as_mut().ok_or(FaultError::Unmapped)?;
        crate::memory::uspace::handle_fault(vm, addr, access)
    })
}

/// An interrupt taken in user mode: the timer preempts the task.
#[inline(never)]
fn user_interrupt(irq: usize) {
    match irq {
        IRQ_S_TIMER => {
            crate::timer::on_interrupt();
            proc::sched::wake_sleepers();
            proc::sched::yield_now();
        }
        // A wake-up meant for an idle hart that found work meanwhile.
        IRQ_S_SOFT => crate::arch::clear_wakeup(),
        IRQ_S_EXTERNAL => crate::drivers::external_interrupt(),
        other => crate::println!("pagoda: unexpected interrupt {other} from user mode"),
    }
}

/// Called by the trap entry for every trap taken in user mode; returns to user mode
/// through `frame` (which a system call such as `execve` may have rewritten).
pub extern "C" fn user_trap(frame: &mut TrapFrame) {
    let cause = scause::read().bits();
    if cause == EXC_USER_ECALL {
        frame.sepc += 4;
        crate::syscall::dispatch(frame);
    } else if cause & INTERRUPT != 0 {
        user_interrupt(cause & !INTERRUPT);
    } else {
        user_exception(frame, cause, stval::read());
    }
    // The frame is found again through the process (it is the one at the top of its
    // kernel stack) when a signal is delivered: the common path keeps no pointer alive
    // across the call above.
    proc::signal::check();
}

/// An exception in user mode other than a system call. Kept out of line, like
/// [`user_interrupt`], so that `user_trap`'s system-call path saves no more registers
/// than it needs.
#[inline(never)]
fn user_exception(frame: &mut TrapFrame, cause: usize, addr: usize) {
    // (signal, si_code): SEGV_MAPERR 1 / SEGV_ACCERR 2, BUS_ADRALN 1 / BUS_ADRERR 2,
    // ILL_ILLOPC 1, TRAP_BRKPT 1.
    let (sig, code) = if EXC_PAGE_FAULTS.contains(&cause) {
        match resolve_user_fault(addr, fault_access(cause)) {
            Ok(()) => return,
            // A swap entry resolve_user_fault could not read back.
            Err(FaultError::Bus | FaultError::SwappedOut(_)) => (signal::SIGBUS, 2),
            Err(FaultError::OutOfMemory) => {
                // The process holding the most memory dies (perhaps this one); the
                // fault is then retried.
                proc::oom::out_of_memory();
                return;
            }
            Err(FaultError::AccessDenied) => (signal::SIGSEGV, 2),
            Err(FaultError::Unmapped) => (signal::SIGSEGV, 1),
        }
    } else {
        match cause {
            2 => (signal::SIGILL, 1),
            3 => (signal::SIGTRAP, 1),
            0 | 4 | 6 => (signal::SIGBUS, 1),
            _ => (signal::SIGSEGV, 1),
        }
    };
    // A handler gets it on the way back to user mode; otherwise the process ends.
    signal::fault(sig, code, addr, exception_name(cause), frame.sepc);
}

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

/// Called by the trap entry for every trap taken in kernel mode.
pub extern "C" fn kernel_trap(frame: &mut TrapFrame) {
    let cause = scause::read().bits();
    if cause & INTERRUPT != 0 {
        match cause & !INTERRUPT {
            IRQ_S_TIMER => crate::timer::on_interrupt(),
            IRQ_S_SOFT => crate::arch::clear_wakeup(),
            IRQ_S_EXTERNAL => crate::drivers::external_interrupt(),
            other => panic!("unexpected interrupt {other} in kernel mode"),
        }
        return;
    }
    if cause == EXC_BREAKPOINT {
        BREAKPOINTS.fetch_add(1, Ordering::Relaxed);
        frame.sepc += crate::arch::trap::breakpoint_len()
            .expect("scause names a breakpoint while one is handled");
        return;
    }
    if EXC_PAGE_FAULTS.contains(&cause) && crate::arch::uaccess::in_user_copy(frame.sepc) {
        // A checked copy touched a page not (yet) mapped as it needs: page it in, or end
        // the copy with a failure.
        let addr = stval::read();
        let user = addr < pagoda_mm::layout::USER_END.as_usize();
        // Resolving may sleep (a swap-in, reclaim): no other task may run with this
        // copy's user access enabled. `sret` restores it from the frame.
        crate::arch::uaccess::suspend_user_access();
        // Without a current process (kernel self-tests) this fails: the copy fails.
        if user && resolve_user_fault(addr, fault_access(cause)).is_ok() {
            return;
        }
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
