//! Trap entry and exit: the assembly that saves and restores a [`TrapFrame`].
//!
//! `stvec` points at `trap_entry` (direct mode). The protocol for `sscratch` and `tp`:
//!
//! * while the hart runs kernel code, `sscratch` is 0 and `tp` points at the hart's
//!   [`HartLocal`];
//! * while it runs user code, `sscratch` points at the hart's `HartLocal` and `tp` is
//!   the user's thread pointer.
//!
//! So the entry swaps `tp` and `sscratch`: a non-zero result means the trap came from user
//! mode, and the frame is built at the top of the current task's kernel stack
//! (`HartLocal::kernel_sp`); otherwise the trap nests on the current kernel stack. Rust
//! code above this module never sees assembly: it receives `&mut TrapFrame` in
//! [`crate::trap::kernel_trap`] or [`crate::trap::user_trap`].

use core::arch::global_asm;

/// The registers saved on every trap, in the order the assembly stores them.
///
/// `regs[i]` is `x<i>` (`regs[0]`, the zero register, is unused), then `sstatus` and
/// `sepc`. The size is a multiple of 16 so the stack stays aligned.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct TrapFrame {
    /// General-purpose registers x0..x31 (x0 unused).
    pub regs: [usize; 32],
    /// `sstatus` at the trap.
    pub sstatus: usize,
    /// `sepc` at the trap: the instruction that trapped (exceptions) or the next one.
    pub sepc: usize,
}

/// Per-hart data the trap entry reaches through `tp` / `sscratch`.
#[repr(C)]
#[derive(Debug)]
pub struct HartLocal {
    /// Top of the kernel stack of the task running on this hart (user traps land here).
    pub kernel_sp: usize,
    /// Scratch slot for the user `sp` during entry.
    pub user_sp: usize,
    /// This hart's id.
    pub hart_id: usize,
    /// Lowest valid stack address of the kernel stack in use (0: not checked); a trap
    /// whose frame would go below it is a stack overflow.
    pub stack_limit: usize,
    /// Top of this hart's emergency stack, used to report a stack overflow.
    pub emergency_sp: usize,
}

const FRAME_SIZE: usize = core::mem::size_of::<TrapFrame>();
const _: () = assert!(FRAME_SIZE.is_multiple_of(16));

global_asm!(
    r#"
    .macro SAVE_GPRS
    .irp n, 1,3,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    sd      x\n, (\n * 8)(sp)
    .endr
    .endm
    .macro LOAD_GPRS
    .irp n, 1,3,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    ld      x\n, (\n * 8)(sp)
    .endr
    .endm

    .section .text
    .balign 4
    .globl trap_entry
trap_entry:
    addi    sp, sp, -{frame}
    // Kernel stack overflow check, with sscratch (0 in kernel mode) as the only temp.
    csrw    sscratch, t0
    ld      t0, {hl_limit}(tp)
    bltu    sp, t0, .Loverflow
    csrr    t0, sscratch
    csrw    sscratch, zero
    SAVE_GPRS
    sd      tp, 32(sp)
    addi    t0, sp, {frame}
    sd      t0, 16(sp)                  // x2: the interrupted sp
    csrr    t0, sstatus
    sd      t0, {sstatus}(sp)
    csrr    t0, sepc
    sd      t0, {sepc}(sp)
    mv      a0, sp
    call    {kernel_trap}
    ld      t0, {sstatus}(sp)
    csrw    sstatus, t0
    ld      t0, {sepc}(sp)
    csrw    sepc, t0
    LOAD_GPRS
    ld      tp, 32(sp)
    addi    sp, sp, {frame}
    sret

.Loverflow:
    // The frame would land in the guard page: report on the emergency stack.
    csrr    t0, sscratch
    csrw    sscratch, sp
    ld      sp, {hl_emergency}(tp)
    addi    sp, sp, -{frame}
    SAVE_GPRS
    sd      tp, 32(sp)
    csrr    t0, sscratch
    addi    t0, t0, {frame}
    sd      t0, 16(sp)
    csrw    sscratch, zero
    csrr    t0, sstatus
    sd      t0, {sstatus}(sp)
    csrr    t0, sepc
    sd      t0, {sepc}(sp)
    mv      a0, sp
    call    {overflow}
    j       .
"#,
    frame = const FRAME_SIZE,
    sstatus = const 32 * 8,
    sepc = const 33 * 8,
    hl_limit = const core::mem::offset_of!(HartLocal, stack_limit),
    hl_emergency = const core::mem::offset_of!(HartLocal, emergency_sp),
    kernel_trap = sym crate::trap::kernel_trap,
    overflow = sym crate::trap::kernel_stack_overflow,
);

unsafe extern "C" {
    fn trap_entry();
}

/// Points `stvec` of the calling hart at the trap entry and `tp` at its [`HartLocal`].
///
/// # Safety
/// `local` must live (and stay unaliased by other harts) as long as the hart runs.
pub unsafe fn init_hart(local: *mut HartLocal) {
    // SAFETY: the kernel never uses `tp` otherwise (no TLS); from now on the trap entry
    // relies on it pointing at this hart's HartLocal.
    unsafe { core::arch::asm!("mv tp, {0}", "csrw sscratch, zero", in(reg) local) };
    // SAFETY: `trap_entry` is a valid, 4-byte aligned trap handler that saves and
    // restores every register it uses; direct mode needs the two low bits clear.
    unsafe {
        riscv::register::stvec::write(riscv::register::stvec::Stvec::new(
            trap_entry as *const () as usize,
            riscv::register::stvec::TrapMode::Direct,
        ));
    }
}

/// The calling hart's [`HartLocal`].
pub fn hart_local() -> *mut HartLocal {
    let tp: usize;
    // SAFETY: reading `tp` has no side effects; `init_hart` set it on this hart.
    unsafe { core::arch::asm!("mv {0}, tp", out(reg) tp) };
    tp as *mut HartLocal
}
