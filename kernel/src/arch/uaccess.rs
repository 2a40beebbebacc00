//! Copies between kernel and user memory that survive a fault.
//!
//! The copy loop lives in one assembly routine, `user_copy`. `sstatus.SUM` (supervisor
//! may access user pages) is set only for the duration of that call. When the loop
//! faults, the trap handler sees that `sepc` lies inside the routine
//! ([`in_user_copy`]); it first asks the process's address space to resolve the fault
//! (demand paging and copy-on-write apply to the kernel's accesses too) and, if that
//! fails, resumes at `user_copy_fault`, which returns failure. So a bad user pointer
//! becomes `EFAULT`, never a kernel crash.

use core::arch::global_asm;

use pagoda_mm::layout::USER_END;
use riscv::register::sstatus;

global_asm!(
    r#"
    .section .text
    .balign 4
    // user_copy(dst a0, src a1, len a2) -> a0 = 0 on success, 1 on fault
    .globl user_copy
user_copy:
    or      t0, a0, a1
    andi    t0, t0, 7
    bnez    t0, 2f
1:  li      t1, 8
    bltu    a2, t1, 2f
    ld      t0, 0(a1)
    sd      t0, 0(a0)
    addi    a0, a0, 8
    addi    a1, a1, 8
    addi    a2, a2, -8
    j       1b
2:  beqz    a2, 3f
    lbu     t0, 0(a1)
    sb      t0, 0(a0)
    addi    a0, a0, 1
    addi    a1, a1, 1
    addi    a2, a2, -1
    j       2b
3:  li      a0, 0
    ret
    .globl user_copy_fault
user_copy_fault:
    li      a0, 1
    ret
    .globl user_copy_end
user_copy_end:
"#
);

unsafe extern "C" {
    fn user_copy(dst: *mut u8, src: *const u8, len: usize) -> usize;
    fn user_copy_fault();
    fn user_copy_end();
}

/// Whether `pc` is inside the fault-tolerant copy routine.
pub fn in_user_copy(pc: usize) -> bool {
    let start = user_copy as *const () as usize;
    let end = user_copy_end as *const () as usize;
    (start..end).contains(&pc)
}

/// Where a faulting copy resumes: it returns failure.
pub fn fault_resume_pc() -> usize {
    user_copy_fault as *const () as usize
}

/// Copies `len` bytes from `src` to `dst`, either of which may be a user address the
/// caller has checked to lie in the user half. Returns `false` if a fault could not be
/// resolved.
///
/// # Safety
/// The kernel-side buffer must be valid for `len` bytes; user addresses may be anything
/// in the user half (faults are caught).
pub unsafe fn copy(dst: *mut u8, src: *const u8, len: usize) -> bool {
    // SAFETY: SUM only widens what S-mode may touch; it is cleared right after. The
    // copy's faults are handled by the trap handler as described in the module docs.
    unsafe {
        sstatus::set_sum();
        let failed = user_copy(dst, src, len);
        sstatus::clear_sum();
        failed == 0
    }
}

/// Disables supervisor access to user memory (`sstatus.SUM`) on this hart: a fault
/// taken inside a copy calls this before resolving it, since resolving may sleep and let
/// other tasks run here. Returning from the trap restores the copy's `sstatus`.
pub fn suspend_user_access() {
    // SAFETY: clearing SUM only narrows what S-mode may touch.
    unsafe { sstatus::clear_sum() }
}

/// Whether `[va, va + len)` lies in the user half.
#[inline(always)]
pub fn in_user_half(va: usize, len: usize) -> bool {
    va.checked_add(len)
        .is_some_and(|end| end <= USER_END.as_usize())
}

/// Copies `dst.len()` bytes from user address `src`. Returns `false`, having copied
/// any part, when the range leaves the user half or a fault could not be resolved.
#[inline(always)]
pub fn copy_from_user(dst: &mut [u8], src: usize) -> bool {
    // SAFETY: `dst` is a valid kernel buffer of that length; `src` is checked to lie in
    // the user half first.
    in_user_half(src, dst.len()) && unsafe { copy(dst.as_mut_ptr(), src as *const u8, dst.len()) }
}

/// Copies `src` to user address `dst`. Returns `false`, having copied any part, when the
/// range leaves the user half or a fault could not be resolved.
#[inline(always)]
pub fn copy_to_user(dst: usize, src: &[u8]) -> bool {
    // SAFETY: `src` is a valid kernel buffer of that length; `dst` is checked to lie in
    // the user half first.
    in_user_half(dst, src.len()) && unsafe { copy(dst as *mut u8, src.as_ptr(), src.len()) }
}
