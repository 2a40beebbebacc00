//! Everything RISC-V specific that needs assembly or CSR access: boot entry, trap entry,
//! and a few one-instruction helpers. The rest of the kernel is plain safe Rust.

pub mod entry;
pub mod trap;
pub mod uaccess;

use riscv::register::{sie, sstatus, time};

/// Reads the `time` CSR (ticks at the device tree's timebase frequency).
#[inline]
pub fn read_time() -> u64 {
    time::read64()
}

/// Enables supervisor timer interrupts and interrupts in general on this hart.
pub fn enable_timer_interrupts() {
    // SAFETY: the trap vector is installed before this is called (see `kmain`), so a
    // pending timer interrupt is handled by `trap::kernel_trap`.
    unsafe {
        sie::set_stimer();
        sstatus::set_sie();
    }
}

/// Disables interrupts on this hart; returns whether they were enabled.
pub fn disable_interrupts() -> bool {
    let was = sstatus::read().sie();
    // SAFETY: clearing SIE only masks interrupts; it cannot break any invariant.
    unsafe { sstatus::clear_sie() };
    was
}

/// Enables interrupts on this hart.
pub fn enable_interrupts() {
    // SAFETY: the trap vector is installed before interrupts are first enabled.
    unsafe { sstatus::set_sie() }
}

/// Waits for an interrupt (a hint; may return at any time).
#[inline]
pub fn wait_for_interrupt() {
    riscv::asm::wfi();
}

/// Switches to the stack whose top is `top` and calls `f` there; never returns.
pub fn run_on_stack(top: usize, f: extern "C" fn() -> !) -> ! {
    // SAFETY: `top` is the top of a mapped, unused kernel stack (the caller's hart stack)
    // and `f` never returns, so nothing refers to the old stack afterwards.
    unsafe { core::arch::asm!("mv sp, {0}", "jr {1}", in(reg) top, in(reg) f, options(noreturn)) }
}

/// Executes `ebreak` (used by the trap-path self test).
#[inline]
pub fn breakpoint() {
    // SAFETY: the kernel's trap handler counts the breakpoint and resumes after it.
    unsafe { riscv::asm::ebreak() };
}
