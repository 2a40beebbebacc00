//! Trap entry and exit: the assembly that saves and restores a [`TrapFrame`].
//!
//! `stvec` points at `trap_entry` (direct mode). While the hart runs kernel code,
//! `sscratch` is 0 and `tp` holds the hart's [`crate::smp::HartLocal`]; the trap is
//! handled on the current kernel stack. Rust code above this module never sees
//! assembly: it receives `&mut TrapFrame` in [`crate::trap::kernel_trap`].

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

const FRAME_SIZE: usize = core::mem::size_of::<TrapFrame>();
const _: () = assert!(FRAME_SIZE.is_multiple_of(16));

global_asm!(
    r#"
    .macro SAVE_GPRS
    .irp n, 1,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    sd      x\n, (\n * 8)(sp)
    .endr
    .endm
    .macro LOAD_GPRS
    .irp n, 1,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    ld      x\n, (\n * 8)(sp)
    .endr
    .endm

    .section .text
    .balign 4
    .globl trap_entry
trap_entry:
    addi    sp, sp, -{frame}
    SAVE_GPRS
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
    addi    sp, sp, {frame}
    sret
"#,
    frame = const FRAME_SIZE,
    sstatus = const 32 * 8,
    sepc = const 33 * 8,
    kernel_trap = sym crate::trap::kernel_trap,
);

unsafe extern "C" {
    fn trap_entry();
}

/// Points `stvec` of the calling hart at the trap entry.
pub fn install_trap_vector() {
    // SAFETY: `trap_entry` is a valid, 4-byte aligned trap handler that saves and
    // restores every register it uses; direct mode needs the two low bits clear.
    unsafe {
        riscv::register::stvec::write(riscv::register::stvec::Stvec::new(
            trap_entry as *const () as usize,
            riscv::register::stvec::TrapMode::Direct,
        ));
    }
}
