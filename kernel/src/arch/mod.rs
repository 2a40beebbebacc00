//! Everything RISC-V specific that needs assembly or CSR access, behind small safe
//! functions where the operation allows it: boot entry ([`entry`]), trap entry and
//! context switch ([`trap`]), `satp` and `sfence.vma` ([`mmu`]), the fault-tolerant user
//! copy ([`uaccess`]), the image's linker symbols ([`image_sections`]) and a few
//! one-instruction helpers.
//!
//! Outside `arch`, `unsafe` is confined: `syscall`, `fs` and `trap` declare
//! `#![deny(unsafe_code)]`, and so does `memory` except its three framework modules
//! (`frames`, `heap`, `machine`) and its in-kernel tests (`memory::ktest`). What else
//! still holds `unsafe`: `main.rs` and `boot` (the device tree and the initrd found
//! through raw addresses), `smp` (per-hart state and stacks, the `CpuLocal` pin),
//! `drivers` and `console` (MMIO registers), and `proc` (until its rewrite for threads).

pub mod entry;
pub mod mmu;
pub mod trap;
pub mod uaccess;

use core::ops::Range;

use riscv::register::{sie, sip, sstatus, time};

/// Reads the `time` CSR (ticks at the device tree's timebase frequency).
#[inline]
pub fn read_time() -> u64 {
    time::read64()
}

/// Enables supervisor timer, software (the wake-up another hart sends, [`wake_hart`])
/// and external (devices, through the PLIC) interrupts, and interrupts in general, on
/// this hart.
pub fn enable_interrupt_sources() {
    // SAFETY: the trap vector is installed before this is called (see `kmain`), so a
    // pending timer or software interrupt is handled by `trap::kernel_trap`.
    unsafe {
        sie::set_stimer();
        sie::set_ssoft();
        sie::set_sext();
        sstatus::set_sie();
    }
}

/// Acknowledges this hart's pending software interrupt (a wake-up).
pub fn clear_wakeup() {
    // SAFETY: clearing SSIP only acknowledges a software interrupt already taken.
    unsafe { sip::clear_ssoft() }
}

/// Sends hart `hart` a software interrupt (through the SBI), ending its `wfi`. Harts
/// are named by their index, which is the `mhartid` on the machines pagoda boots (as in
/// the remote fences of `memory::tlb`).
pub fn wake_hart(hart: usize) {
    let _ = sbi_rt::send_ipi(sbi_rt::HartMask::from_mask_base(1 << hart, 0));
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

unsafe extern "C" {
    static __kernel_start: u8;
    static __text_start: u8;
    static __text_end: u8;
    static __rodata_start: u8;
    static __rodata_end: u8;
    static __data_start: u8;
    static __kernel_end: u8;
}

/// The kernel image's sections at their link addresses, as the linker script
/// (`kernel/linker.ld.in`) places them.
pub struct ImageSections {
    /// The whole image, from its first byte to the end of `.bss`.
    pub image: Range<usize>,
    /// `.text`.
    pub text: Range<usize>,
    /// `.rodata`.
    pub rodata: Range<usize>,
    /// `.data` and `.bss`, to the end of the image.
    pub data: Range<usize>,
}

/// Where the linker put the kernel image's sections.
pub fn image_sections() -> ImageSections {
    ImageSections {
        image: &raw const __kernel_start as usize..&raw const __kernel_end as usize,
        text: &raw const __text_start as usize..&raw const __text_end as usize,
        rodata: &raw const __rodata_start as usize..&raw const __rodata_end as usize,
        data: &raw const __data_start as usize..&raw const __kernel_end as usize,
    }
}
