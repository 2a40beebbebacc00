//! Trap entry and exit, context switch and floating-point state: the assembly the rest of
//! the kernel never sees.
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
//! (`HartLocal::kernel_sp`); otherwise the trap nests on the current kernel stack, after
//! a check that the frame stays above the stack's guard page (`HartLocal::stack_limit`):
//! an overflow is reported from a per-hart emergency stack. Rust code receives
//! `&mut TrapFrame` in [`crate::trap::kernel_trap`] or [`crate::trap::user_trap`]; a user
//! trap returns to user mode through the (possibly rewritten) frame.

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
    /// The task running on this hart (an opaque pointer the scheduler sets; 0: none),
    /// one `tp`-relative load away for the system-call fast path.
    pub current: usize,
}

/// Register numbers of the ABI names the kernel uses.
pub mod reg {
    /// Stack pointer.
    pub const SP: usize = 2;
    /// Thread pointer (thread-local storage).
    pub const TP: usize = 4;
    /// First argument / return value.
    pub const A0: usize = 10;
    /// System-call number.
    pub const A7: usize = 17;
}

/// The floating-point registers of a user task (saved only when it leaves its hart).
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct FpState {
    /// f0..f31.
    pub f: [u64; 32],
    /// `fcsr`.
    pub fcsr: u64,
}

/// Callee-saved registers of a kernel thread that is not running.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct Context {
    /// Where the thread resumes.
    pub ra: usize,
    /// Its kernel stack pointer.
    pub sp: usize,
    /// s0..s11.
    pub s: [usize; 12],
}

impl Context {
    /// The context of a kernel thread that has never run: the first switch to it starts
    /// `entry` on the stack whose top is `stack_top` (16-byte aligned); it never returns
    /// and never enters user mode.
    pub fn new_kernel_task(entry: extern "C" fn() -> !, stack_top: usize) -> Context {
        Context {
            ra: entry as usize,
            sp: stack_top,
            s: [0; 12],
        }
    }

    /// The context of a task that has never run: it loads `fp` into the floating-point
    /// registers and enters user mode through the trap frame at `frame` (the top of its
    /// kernel stack).
    pub fn new_task(frame: *mut TrapFrame, fp: *const FpState) -> Context {
        let mut s = [0; 12];
        s[0] = fp as usize;
        Context {
            ra: task_entry as *const () as usize,
            sp: frame as usize,
            s,
        }
    }
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
    .macro SAVE_CSRS
    csrr    t0, sstatus
    sd      t0, {sstatus}(sp)
    csrr    t0, sepc
    sd      t0, {sepc}(sp)
    .endm
    .macro LOAD_CSRS
    ld      t0, {sstatus}(sp)
    csrw    sstatus, t0
    ld      t0, {sepc}(sp)
    csrw    sepc, t0
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
    csrrw   tp, sscratch, tp
    bnez    tp, .Lfrom_user
    // From kernel mode: tp was the kernel's, sscratch was 0. Undo the swap.
    csrrw   tp, sscratch, tp
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
    SAVE_CSRS
    mv      a0, sp
    call    {kernel_trap}
    LOAD_CSRS
    LOAD_GPRS
    // tp is not reloaded from the frame: in kernel mode it is this hart's HartLocal, and
    // a handler that slept (a user-copy fault waiting for a swap-in) may have resumed on
    // another hart, whose tp is the right one now.
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
    SAVE_CSRS
    mv      a0, sp
    call    {overflow}
    j       .

.Lfrom_user:
    // tp = HartLocal, sscratch = the user's tp.
    sd      sp, {hl_user_sp}(tp)
    ld      sp, {hl_kernel_sp}(tp)
    addi    sp, sp, -{frame}
    SAVE_GPRS
    ld      t0, {hl_user_sp}(tp)
    sd      t0, 16(sp)
    csrr    t0, sscratch
    sd      t0, 32(sp)
    csrw    sscratch, zero
    SAVE_CSRS
    mv      a0, sp
    call    {user_trap}
    // Fall through: back to user mode through the frame at sp.

    .globl return_to_user
return_to_user:
    // sp = the trap frame at the top of this task's kernel stack; tp = HartLocal.
    addi    t0, sp, {frame}
    sd      t0, {hl_kernel_sp}(tp)
    csrw    sscratch, tp
    LOAD_CSRS
    LOAD_GPRS
    ld      tp, 32(sp)
    ld      sp, 16(sp)
    sret

    // A task's first run: s0 = its FpState, sp = its trap frame.
    .globl task_entry
task_entry:
    mv      a0, s0
    call    fp_load
    j       return_to_user

    // switch_context(from a0: *mut Context, to a1: *const Context)
    .globl switch_context
switch_context:
    sd      ra, 0(a0)
    sd      sp, 8(a0)
    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11
    sd      s\n, (16 + \n * 8)(a0)
    .endr
    ld      ra, 0(a1)
    ld      sp, 8(a1)
    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11
    ld      s\n, (16 + \n * 8)(a1)
    .endr
    ret

    // fp_save(a0: *mut FpState), fp_load(a0: *const FpState). The kernel is built
    // without hardware floating point (so it never touches the FP registers itself);
    // these two routines alone use the D extension the harts have.
    .option push
    .option arch, +d
    .globl fp_save
fp_save:
    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    fsd     f\n, (\n * 8)(a0)
    .endr
    frcsr   t0
    sd      t0, 256(a0)
    ret
    .globl fp_load
fp_load:
    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    fld     f\n, (\n * 8)(a0)
    .endr
    ld      t0, 256(a0)
    fscsr   t0
    ret
    .option pop
"#,
    frame = const FRAME_SIZE,
    sstatus = const 32 * 8,
    sepc = const 33 * 8,
    hl_limit = const core::mem::offset_of!(HartLocal, stack_limit),
    hl_emergency = const core::mem::offset_of!(HartLocal, emergency_sp),
    hl_kernel_sp = const core::mem::offset_of!(HartLocal, kernel_sp),
    hl_user_sp = const core::mem::offset_of!(HartLocal, user_sp),
    kernel_trap = sym crate::trap::kernel_trap,
    user_trap = sym crate::trap::user_trap,
    overflow = sym crate::trap::kernel_stack_overflow,
);

const _: () = assert!(core::mem::offset_of!(FpState, fcsr) == 256);

unsafe extern "C" {
    fn trap_entry();
    fn task_entry();
    fn switch_context(from: *mut Context, to: *const Context);
    fn fp_save(state: *mut FpState);
    fn fp_load(state: *const FpState);
}

/// Saves the running kernel thread into `from` and resumes `to`.
///
/// # Safety
/// `to` must hold a context saved by this function or made by [`Context::new_task`]
/// whose stack and frame are still valid; nobody else may resume `from` until this call
/// has saved it, and both must stay valid until the switch completes.
pub unsafe fn switch(from: *mut Context, to: *const Context) {
    // SAFETY: forwarded contract; `switch_context` saves/restores only callee-saved
    // registers, as the calling convention allows.
    unsafe { switch_context(from, to) }
}

/// Stores the hart's floating-point registers into `state`.
pub fn save_fp(state: &mut FpState) {
    // SAFETY: `fp_save` writes exactly the 33 words of `FpState`; `sstatus.FS` is never
    // Off (set to Initial by `init_hart`, kept by every trap), so the FP instructions run.
    unsafe { fp_save(state) }
}

/// Loads the hart's floating-point registers from `state`.
pub fn load_fp(state: &FpState) {
    // SAFETY: as for `save_fp`; the kernel itself keeps no values in FP registers.
    unsafe { fp_load(state) }
}

/// `sstatus` for entering user mode the first time: previous privilege U, interrupts
/// enabled after `sret`, no user-memory access for the kernel, FP state Initial.
pub fn initial_user_sstatus() -> usize {
    const SIE: usize = 1 << 1;
    const SPIE: usize = 1 << 5;
    const SPP: usize = 1 << 8;
    const FS: usize = 3 << 13;
    const FS_INITIAL: usize = 1 << 13;
    const SUM: usize = 1 << 18;
    let now = riscv::register::sstatus::read().bits();
    (now & !(SIE | SPP | FS | SUM)) | SPIE | FS_INITIAL
}

/// Points `stvec` of the calling hart at the trap entry and `tp` at its [`HartLocal`].
///
/// # Safety
/// `local` must live (and stay unaliased by other harts) as long as the hart runs.
pub unsafe fn init_hart(local: *mut HartLocal) {
    // SAFETY: the kernel never uses `tp` otherwise (no TLS); from now on the trap entry
    // relies on it pointing at this hart's HartLocal.
    unsafe { core::arch::asm!("mv tp, {0}", "csrw sscratch, zero", in(reg) local) };
    // SAFETY: FS = Initial only enables the FP registers, which user tasks need saved.
    unsafe { riscv::register::sstatus::set_fs(riscv::register::sstatus::FS::Initial) };
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

/// `scause` of a breakpoint exception.
pub const EXC_BREAKPOINT: usize = 3;

/// Length in bytes of the `ebreak` this hart is handling a breakpoint trap for (2 when
/// compressed, else 4), or `None` when `scause` names no breakpoint.
pub fn breakpoint_len() -> Option<usize> {
    use riscv::register::{scause, sepc};
    if scause::read().bits() != EXC_BREAKPOINT {
        return None;
    }
    let pc = sepc::read();
    // SAFETY: `scause` says this hart trapped on a breakpoint at `sepc`, so it fetched the
    // instruction there: its first half-word is mapped and readable (kernel text).
    let low = unsafe { (pc as *const u16).read_volatile() };
    Some(if low & 0b11 == 0b11 { 4 } else { 2 })
}
