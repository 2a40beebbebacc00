//! Signals: generation, the pending and blocked sets, default actions, and delivery to
//! user handlers through Linux's riscv64 signal frame.
//!
//! ```text
//!  kill/tkill/tgkill, SIGCHLD, SIGPIPE ─► send(): pending |= sig; wake the process
//!  a fault with a handler ─────────────► fault(): si_addr/si_code kept, pending |= sig
//!                                            │
//!  every return to user mode: check() ──► lowest unblocked pending signal
//!        SIG_IGN / ignored by default ──► dropped
//!        SIG_DFL ───────────────────────► the process ends with it
//!        a handler ─────────────────────► push_frame(): rt_sigframe on the user stack
//!                                          (or the alternate stack), pc = handler,
//!                                          ra = the trampoline page, mask widened
//!  handler returns to the trampoline ───► rt_sigreturn: registers, FP and mask back
//! ```
//!
//! A sleeping system call wakes when a signal arrives that is not blocked
//! ([`Process::interrupted`]) and returns `EINTR`; a handler with `SA_RESTART` makes it
//! start over instead. The trampoline (`li a7, 139; ecall`) is a read-execute page
//! mapped into a process when it installs its first handler (Linux keeps it in the
//! vDSO), since riscv64 Linux programs return from handlers through code the kernel
//! provides.

use alloc::sync::Arc;
use core::sync::atomic::Ordering;

use super::{ExitStatus, INIT_PID, Process, current, exit, find};
use crate::arch::trap::{FpState, TrapFrame, reg};
use crate::syscall::errno::Errno;
use crate::syscall::uaccess::{copy_from_user, copy_to_user};

/// Illegal instruction.
pub const SIGILL: i32 = 4;
/// Trace trap.
pub const SIGTRAP: i32 = 5;
/// Bus error (misaligned access, access past the end of a file mapping).
pub const SIGBUS: i32 = 7;
/// Kill (can be neither caught nor blocked).
pub const SIGKILL: i32 = 9;
/// Segmentation fault.
pub const SIGSEGV: i32 = 11;
/// Write to a pipe with no reader.
pub const SIGPIPE: i32 = 13;
/// A child stopped or exited.
pub const SIGCHLD: i32 = 17;
/// Stop (can be neither caught nor blocked; pagoda has no stopped state and ends the
/// process).
pub const SIGSTOP: i32 = 19;

/// Number of signals (`_NSIG`).
pub const NSIG: usize = 64;
/// Bytes of the kernel's `struct sigaction` on riscv64 (handler, flags, mask).
pub const SIGACTION_SIZE: usize = 24;

/// `sa_handler` values.
const SIG_DFL: usize = 0;
const SIG_IGN: usize = 1;
/// `sa_flags` bits.
const SA_SIGINFO: u64 = 0x4;
const SA_ONSTACK: u64 = 0x0800_0000;
const SA_RESTART: u64 = 0x1000_0000;
const SA_NODEFER: u64 = 0x4000_0000;
const SA_RESETHAND: u64 = 0x8000_0000;
/// `ss_flags` bits.
const SS_ONSTACK: u32 = 1;
const SS_DISABLE: u32 = 2;
/// The smallest alternate stack (`MINSIGSTKSZ`).
const MINSIGSTKSZ: usize = 2048;
/// `si_code` of a signal sent by `kill` (`SI_USER`) and by `tkill`/`tgkill`
/// (`SI_TKILL`).
pub const SI_USER: i32 = 0;
/// `si_code` of `tkill`/`tgkill`.
pub const SI_TKILL: i32 = -6;

/// The bit of `sig` in a signal set.
pub const fn bit(sig: i32) -> u64 {
    1 << (sig - 1)
}

/// Signals that can be neither caught nor blocked.
pub const UNBLOCKABLE: u64 = bit(SIGKILL) | bit(SIGSTOP);

/// Signals whose default action is to do nothing (`SIGCHLD`, `SIGCONT`, `SIGURG`,
/// `SIGWINCH`).
const IGNORED_BY_DEFAULT: u64 = bit(SIGCHLD) | bit(18) | bit(23) | bit(28);

/// One signal's action, as `rt_sigaction` reads and writes it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SigAction {
    /// `SIG_DFL`, `SIG_IGN` or the handler's address.
    pub handler: usize,
    /// `SA_*` flags.
    pub flags: u64,
    /// Signals blocked while the handler runs.
    pub mask: u64,
}

impl SigAction {
    /// Decodes the kernel's `struct sigaction`.
    pub fn from_bytes(b: &[u8; SIGACTION_SIZE]) -> SigAction {
        let word =
            |i: usize| u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap_or_default());
        SigAction {
            handler: word(0) as usize,
            flags: word(1),
            mask: word(2) & !UNBLOCKABLE,
        }
    }

    /// Encodes it as the kernel's `struct sigaction`.
    pub fn to_bytes(self) -> [u8; SIGACTION_SIZE] {
        let mut b = [0u8; SIGACTION_SIZE];
        b[..8].copy_from_slice(&(self.handler as u64).to_le_bytes());
        b[8..16].copy_from_slice(&self.flags.to_le_bytes());
        b[16..].copy_from_slice(&self.mask.to_le_bytes());
        b
    }

    /// Whether a signal with this action is discarded when sent.
    fn ignores(&self, sig: i32) -> bool {
        self.handler == SIG_IGN || (self.handler == SIG_DFL && IGNORED_BY_DEFAULT & bit(sig) != 0)
    }
}

/// An alternate signal stack (`sigaltstack`).
#[derive(Clone, Copy, Debug, Default)]
pub struct AltStack {
    /// Lowest address.
    pub sp: usize,
    /// Size in bytes (0: none).
    pub size: usize,
}

impl AltStack {
    /// Whether `sp` lies on this stack.
    fn contains(&self, sp: usize) -> bool {
        self.size != 0 && sp > self.sp && sp - self.sp <= self.size
    }
}

/// Per-process signal state kept under the process's `inner` lock.
#[derive(Clone)]
pub struct SignalState {
    /// Actions, by signal number - 1.
    pub actions: [SigAction; NSIG],
    /// The alternate stack.
    pub altstack: AltStack,
    /// The blocked set to restore once the next handler returns (`rt_sigsuspend`).
    pub saved_mask: Option<u64>,
    /// The system call that returned `EINTR`: its `sepc` (after the `ecall`) and first
    /// argument, to start it over under `SA_RESTART`.
    pub restart: Option<(usize, usize)>,
    /// `si_code` and `si_addr` of the pending fault signal.
    pub fault: Option<(i32, i32, usize)>,
    /// `si_pid` and `si_code` of the last signal sent by a process, per signal.
    pub sender: [(u32, i32); NSIG],
}

impl Default for SignalState {
    fn default() -> Self {
        SignalState {
            actions: [SigAction::default(); NSIG],
            altstack: AltStack::default(),
            saved_mask: None,
            restart: None,
            fault: None,
            sender: [(0, 0); NSIG],
        }
    }
}

impl SignalState {
    /// The state a child of `fork` gets: the same actions and alternate stack.
    pub fn for_child(&self) -> SignalState {
        SignalState {
            actions: self.actions,
            altstack: self.altstack,
            ..SignalState::default()
        }
    }

    /// `execve`: handled signals go back to their default action (ignored stay ignored),
    /// and the alternate stack is gone.
    pub fn exec(&mut self) {
        for a in &mut self.actions {
            if a.handler != SIG_IGN {
                *a = SigAction::default();
            }
        }
        self.altstack = AltStack::default();
    }
}

impl Process {
    /// Whether a signal is pending that is not blocked: a sleeping system call returns
    /// `EINTR` (or restarts).
    #[inline]
    pub fn interrupted(&self) -> bool {
        self.pending.load(Ordering::Acquire) & !self.blocked.load(Ordering::Acquire) != 0
    }
}

/// Sends `sig` (1..=64) to `p` from process `from` with `si_code` `code`: discarded if
/// ignored, else pending; `SIGKILL` marks the process killed. The process is woken if
/// the signal is not blocked.
pub fn send(p: &Arc<Process>, sig: i32, from: u32, code: i32) {
    {
        let mut inner = p.inner.lock();
        if inner.exit.is_some() {
            return;
        }
        let idx = sig as usize - 1;
        if sig != SIGKILL && sig != SIGSTOP && inner.signals.actions[idx].ignores(sig) {
            return;
        }
        inner.signals.sender[idx] = (from, code);
    }
    if sig == SIGKILL {
        let _ = p
            .kill_signal
            .compare_exchange(0, sig, Ordering::AcqRel, Ordering::Acquire);
        p.killed.store(true, Ordering::Release);
    }
    p.pending.fetch_or(bit(sig), Ordering::AcqRel);
    if bit(sig) & !p.blocked.load(Ordering::Acquire) != 0 {
        super::sched::wake(p);
    }
}

/// `kill(pid, sig)` for one process: `ESRCH` if there is none, `EINVAL` for a bad
/// signal; signal 0 only checks. Init gets only the signals it has a handler for (not
/// even `SIGKILL` from user space), as on Linux.
pub fn kill(pid: usize, sig: i32, code: i32) -> Result<(), Errno> {
    if !(0..=NSIG as i32).contains(&sig) {
        return Err(Errno::EINVAL);
    }
    let p = find(pid).ok_or(Errno::ESRCH)?;
    if sig == 0 {
        return Ok(());
    }
    if pid == INIT_PID {
        let handled = p.inner.lock().signals.actions[sig as usize - 1].handler > SIG_IGN;
        if !handled || sig == SIGKILL || sig == SIGSTOP {
            return Ok(());
        }
    }
    let from = super::sched::with_current(|c| c.map_or(0, |c| c.pid as u32));
    send(&p, sig, from, code);
    Ok(())
}

/// A fault the current process cannot resolve: if the process has a handler for `sig`
/// and does not block it, the signal is made pending with its `si_code` and `si_addr`
/// (delivered on the way back to user mode); otherwise the process ends with it (a
/// blocked or ignored fault signal cannot be put off: Linux forces the default).
pub fn fault(sig: i32, code: i32, addr: usize, what: &str, pc: usize) {
    let me = current();
    let handled = {
        let mut inner = me.inner.lock();
        let a = inner.signals.actions[sig as usize - 1];
        let ok = a.handler > SIG_IGN && me.blocked.load(Ordering::Acquire) & bit(sig) == 0;
        if ok {
            inner.signals.fault = Some((sig, code, addr));
        }
        ok
    };
    if handled {
        me.pending.fetch_or(bit(sig), Ordering::AcqRel);
        return;
    }
    drop(me);
    super::kill_for_fault(sig, what, pc, addr)
}

/// Called before every return to user mode: acts on a kill and delivers the next
/// pending signal that is not blocked, through the trap frame the process returns with.
/// One load when nothing is pending.
#[inline]
pub fn check() {
    let pending =
        super::sched::with_current(|p| p.map_or(0, |p| p.pending.load(Ordering::Acquire)));
    if pending != 0 {
        deliver();
    }
}

/// [`check`] when something is pending.
#[inline(never)]
fn deliver() {
    let me = current();
    // SAFETY: the frame at the top of the running process's kernel stack is the one the
    // trap entry built and returns through; the trap handler's reference to it ended
    // before this call (`trap::user_trap` calls `check` last), and nothing else refers
    // to it while the process runs here.
    let frame = unsafe { &mut *me.frame() };
    if me.killed.load(Ordering::Acquire) {
        let sig = me.kill_signal.load(Ordering::Acquire);
        drop(me);
        exit(ExitStatus::Signaled(if sig == 0 { SIGKILL } else { sig }));
    }
    loop {
        let ready = me.pending.load(Ordering::Acquire) & !me.blocked.load(Ordering::Acquire);
        if ready == 0 {
            break;
        }
        let sig = ready.trailing_zeros() as i32 + 1;
        me.pending.fetch_and(!bit(sig), Ordering::AcqRel);
        let action = me.inner.lock().signals.actions[sig as usize - 1];
        if action.ignores(sig) && sig != SIGSTOP {
            continue;
        }
        if action.handler == SIG_DFL || sig == SIGSTOP {
            drop(me);
            exit(ExitStatus::Signaled(sig));
        }
        if push_frame(&me, frame, sig, action).is_err() {
            // No room for the frame: Linux forces SIGSEGV.
            drop(me);
            exit(ExitStatus::Signaled(SIGSEGV));
        }
        break;
    }
    // A suspension whose signal ran no handler ends with its mask restored.
    let mut inner = me.inner.lock();
    inner.signals.restart = None;
    if let Some(mask) = inner.signals.saved_mask.take() {
        me.blocked.store(mask, Ordering::Release);
    }
}

/// Bytes of `siginfo_t`.
const SIGINFO_SIZE: usize = 128;
/// Offsets in `struct ucontext` (riscv64): `uc_stack`, `uc_sigmask`, `uc_mcontext`.
const UC_STACK: usize = 16;
const UC_SIGMASK: usize = 40;
const UC_MCONTEXT: usize = 176;
/// Bytes of the general registers in `struct sigcontext` (`pc`, then x1..x31).
const SC_REGS_SIZE: usize = 32 * 8;
/// Bytes of `union __riscv_fp_state` (the Q extension's layout, the largest).
const SC_FP_SIZE: usize = 528;
/// Bytes of `struct rt_sigframe`: the siginfo, then the ucontext.
const FRAME_SIZE: usize = SIGINFO_SIZE + UC_MCONTEXT + SC_REGS_SIZE + SC_FP_SIZE;

/// Writes `v` at `at` in `buf` (little endian).
fn put(buf: &mut [u8], at: usize, v: &[u8]) {
    buf[at..at + v.len()].copy_from_slice(v);
}

/// Builds the signal frame for `sig` on the user stack and points `frame` at the
/// handler.
fn push_frame(
    me: &Process,
    frame: &mut TrapFrame,
    sig: i32,
    action: SigAction,
) -> Result<(), Errno> {
    let mut inner = me.inner.lock();
    let st = &mut inner.signals;
    let user_sp = frame.regs[reg::SP];
    let on_alt = st.altstack.contains(user_sp);
    let top = if action.flags & SA_ONSTACK != 0 && st.altstack.size != 0 && !on_alt {
        st.altstack.sp + st.altstack.size
    } else {
        user_sp
    };
    let at = top.checked_sub(FRAME_SIZE).ok_or(Errno::EFAULT)? & !15;
    // Start the interrupted system call over, or let it return EINTR.
    if let Some((sepc, a0)) = st.restart.take()
        && frame.sepc == sepc
        && frame.regs[reg::A0] == (Errno::EINTR as i32).wrapping_neg() as isize as usize
        && action.flags & SA_RESTART != 0
    {
        frame.sepc -= 4;
        frame.regs[reg::A0] = a0;
    }
    let mut b = [0u8; FRAME_SIZE];
    // siginfo: signo, errno, code, then the union.
    put(&mut b, 0, &sig.to_le_bytes());
    let (code, extra) = match st.fault.take() {
        Some((s, code, addr)) if s == sig => (code, addr as u64),
        other => {
            st.fault = other;
            let (pid, code) = st.sender[sig as usize - 1];
            (code, pid as u64) // si_pid, and si_uid 0 above it
        }
    };
    put(&mut b, 8, &code.to_le_bytes());
    put(&mut b, 16, &extra.to_le_bytes());
    // ucontext: uc_flags 0, uc_link 0, uc_stack, uc_sigmask, uc_mcontext.
    let uc = SIGINFO_SIZE;
    let ss_flags = if st.altstack.size == 0 {
        SS_DISABLE
    } else if on_alt {
        SS_ONSTACK
    } else {
        0
    };
    put(
        &mut b,
        uc + UC_STACK,
        &(st.altstack.sp as u64).to_le_bytes(),
    );
    put(&mut b, uc + UC_STACK + 8, &ss_flags.to_le_bytes());
    put(
        &mut b,
        uc + UC_STACK + 16,
        &(st.altstack.size as u64).to_le_bytes(),
    );
    let blocked = me.blocked.load(Ordering::Acquire);
    let old_mask = st.saved_mask.take().unwrap_or(blocked);
    put(&mut b, uc + UC_SIGMASK, &old_mask.to_le_bytes());
    let regs = uc + UC_MCONTEXT;
    put(&mut b, regs, &(frame.sepc as u64).to_le_bytes());
    for i in 1..32 {
        put(&mut b, regs + i * 8, &(frame.regs[i] as u64).to_le_bytes());
    }
    let mut fp = FpState::default();
    crate::arch::trap::save_fp(&mut fp);
    let fpregs = regs + SC_REGS_SIZE;
    for (i, f) in fp.f.iter().enumerate() {
        put(&mut b, fpregs + i * 8, &f.to_le_bytes());
    }
    put(&mut b, fpregs + 32 * 8, &(fp.fcsr as u32).to_le_bytes());
    let trampoline = inner.trampoline;
    drop(inner);
    copy_to_user(at, &b)?;

    let mut inner = me.inner.lock();
    if action.flags & SA_RESETHAND != 0 {
        inner.signals.actions[sig as usize - 1] = SigAction::default();
    }
    drop(inner);
    let mut mask = blocked | action.mask;
    if action.flags & SA_NODEFER == 0 {
        mask |= bit(sig);
    }
    me.blocked.store(mask & !UNBLOCKABLE, Ordering::Release);
    frame.sepc = action.handler;
    frame.regs[1] = trampoline; // ra
    frame.regs[reg::SP] = at;
    frame.regs[reg::A0] = sig as usize;
    frame.regs[reg::A0 + 1] = if action.flags & SA_SIGINFO != 0 {
        at
    } else {
        0
    };
    frame.regs[reg::A0 + 2] = at + SIGINFO_SIZE;
    Ok(())
}

/// `rt_sigreturn`: restores what [`push_frame`] saved (the frame is at the user `sp`).
/// Returns the restored `a0`, which the dispatcher writes back unchanged.
pub fn sigreturn(frame: &mut TrapFrame) -> Result<usize, Errno> {
    let at = frame.regs[reg::SP];
    let mut b = [0u8; FRAME_SIZE];
    if copy_from_user(&mut b, at).is_err() {
        let me = current();
        drop(me);
        exit(ExitStatus::Signaled(SIGSEGV));
    }
    let word = |off: usize| u64::from_le_bytes(b[off..off + 8].try_into().unwrap_or_default());
    let uc = SIGINFO_SIZE;
    let regs = uc + UC_MCONTEXT;
    frame.sepc = word(regs) as usize;
    for i in 1..32 {
        frame.regs[i] = word(regs + i * 8) as usize;
    }
    let fpregs = regs + SC_REGS_SIZE;
    let mut fp = FpState::default();
    for (i, f) in fp.f.iter_mut().enumerate() {
        *f = word(fpregs + i * 8);
    }
    fp.fcsr = u64::from(u32::from_le_bytes(
        b[fpregs + 256..fpregs + 260].try_into().unwrap_or_default(),
    ));
    crate::arch::trap::load_fp(&fp);
    let me = current();
    me.blocked
        .store(word(uc + UC_SIGMASK) & !UNBLOCKABLE, Ordering::Release);
    Ok(frame.regs[reg::A0])
}

/// Records that the system call that trapped at `frame` returned `EINTR` after
/// interrupting `a0`: a handler with `SA_RESTART` starts it over.
pub fn note_interrupted(frame: &TrapFrame, a0: usize) {
    current().inner.lock().signals.restart = Some((frame.sepc, a0));
}

/// `rt_sigaction`.
pub fn sigaction(sig: usize, act: Option<SigAction>) -> Result<SigAction, Errno> {
    if !(1..=NSIG).contains(&sig) {
        return Err(Errno::EINVAL);
    }
    let sig = sig as i32;
    if act.is_some() && (sig == SIGKILL || sig == SIGSTOP) {
        return Err(Errno::EINVAL);
    }
    let me = current();
    if act.is_some_and(|a| a.handler > SIG_IGN) {
        ensure_trampoline(&me)?;
    }
    let mut inner = me.inner.lock();
    let slot = &mut inner.signals.actions[sig as usize - 1];
    let old = *slot;
    if let Some(a) = act {
        *slot = a;
        // Setting a signal to be ignored discards it if pending.
        if a.ignores(sig) {
            me.pending.fetch_and(!bit(sig), Ordering::AcqRel);
        }
    }
    Ok(old)
}

/// `sigaltstack(ss, old_ss)` with both structures read and written here.
pub fn sigaltstack(frame: &TrapFrame, ss: usize, old: usize) -> Result<usize, Errno> {
    let me = current();
    let cur = me.inner.lock().signals.altstack;
    let on = cur.contains(frame.regs[reg::SP]);
    if old != 0 {
        let mut b = [0u8; 24];
        let flags = if cur.size == 0 {
            SS_DISABLE
        } else if on {
            SS_ONSTACK
        } else {
            0
        };
        b[..8].copy_from_slice(&(cur.sp as u64).to_le_bytes());
        b[8..12].copy_from_slice(&flags.to_le_bytes());
        b[16..].copy_from_slice(&(cur.size as u64).to_le_bytes());
        copy_to_user(old, &b)?;
    }
    if ss != 0 {
        let mut b = [0u8; 24];
        copy_from_user(&mut b, ss)?;
        let sp = u64::from_le_bytes(b[..8].try_into().unwrap_or_default()) as usize;
        let flags = u32::from_le_bytes(b[8..12].try_into().unwrap_or_default());
        let size = u64::from_le_bytes(b[16..].try_into().unwrap_or_default()) as usize;
        if on {
            return Err(Errno::EPERM);
        }
        let new = match flags {
            SS_DISABLE => AltStack::default(),
            0 | SS_ONSTACK if size < MINSIGSTKSZ => return Err(Errno::ENOMEM),
            0 | SS_ONSTACK => AltStack { sp, size },
            _ => return Err(Errno::EINVAL),
        };
        me.inner.lock().signals.altstack = new;
    }
    Ok(0)
}

/// `rt_sigsuspend(mask)`: waits with `mask` blocked until a signal is delivered;
/// always `EINTR` (the old mask comes back when the handler returns).
pub fn suspend(mask: u64) -> Result<usize, Errno> {
    let me = current();
    let old = me.blocked.swap(mask & !UNBLOCKABLE, Ordering::AcqRel);
    me.inner.lock().signals.saved_mask = Some(old);
    while !me.interrupted() {
        super::sched::sleep();
    }
    Err(Errno::EINTR)
}

/// The blocked set (`rt_sigprocmask`): `how` 0 block, 1 unblock, 2 set; returns the old.
pub fn procmask(how: usize, set: Option<u64>) -> Result<u64, Errno> {
    let me = current();
    let old = me.blocked.load(Ordering::Acquire);
    if let Some(v) = set {
        let new = match how {
            0 => old | v,
            1 => old & !v,
            2 => v,
            _ => return Err(Errno::EINVAL),
        };
        me.blocked.store(new & !UNBLOCKABLE, Ordering::Release);
    }
    Ok(old)
}

/// Pending signals that are blocked (`rt_sigpending`).
pub fn pending() -> u64 {
    let me = current();
    me.pending.load(Ordering::Acquire) & me.blocked.load(Ordering::Acquire)
}

/// Maps the signal-return trampoline into the current process unless it has it: one
/// read-execute page placed like any mapping without an address hint, at the first
/// `rt_sigaction` that installs a handler (a process that never handles a signal keeps
/// one area fewer: its area map stays one B-tree node longer). `fork` copies it with the
/// other areas; `execve` forgets it.
fn ensure_trampoline(me: &Arc<Process>) -> Result<(), Errno> {
    use pagoda_mm::addr::PAGE_SIZE;
    use pagoda_mm::vm::MmapFile;
    use pagoda_mm::vm::abi::{MAP_PRIVATE, PROT_EXEC, PROT_READ};
    if me.inner.lock().trampoline != 0 {
        return Ok(());
    }
    let code = crate::fs::initramfs::static_object(&TRAMPOLINE_CODE)?;
    let file = MmapFile {
        file: Some(code),
        readable: true,
        writable: false,
    };
    let at = {
        let mut vm = me.vm.lock();
        let vm = vm.as_mut().ok_or(Errno::ESRCH)?;
        vm.mmap(
            0,
            PAGE_SIZE,
            PROT_READ | PROT_EXEC,
            MAP_PRIVATE,
            Some(file),
            0,
        )
        .map_err(Errno::from_vm)?
    };
    me.inner.lock().trampoline = at.0;
    Ok(())
}

/// The trampoline's code: `li a7, 139` (`rt_sigreturn`), `ecall`.
pub static TRAMPOLINE_CODE: [u8; 8] = [0x93, 0x08, 0xb0, 0x08, 0x73, 0x00, 0x00, 0x00];
