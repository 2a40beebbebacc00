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

/// Interrupt from the terminal (`^C`).
pub const SIGINT: i32 = 2;
/// Quit from the terminal (`^\\`).
pub const SIGQUIT: i32 = 3;
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
/// Continue a stopped process.
pub const SIGCONT: i32 = 18;
/// Stop (can be neither caught nor blocked).
pub const SIGSTOP: i32 = 19;
/// Stop from the terminal (`^Z`).
pub const SIGTSTP: i32 = 20;
/// The signals whose default action stops the process: `SIGSTOP`, `SIGTSTP`, `SIGTTIN`,
/// `SIGTTOU`.
const STOP_SIGNALS: u64 = bit(SIGSTOP) | bit(SIGTSTP) | bit(21) | bit(22);
/// `si_code` of `SIGCHLD` for a child that stopped, and one that continued.
const CLD_STOPPED: i32 = 5;
const CLD_CONTINUED: i32 = 6;
/// `SA_NOCLDSTOP`: no `SIGCHLD` when a child stops or continues.
const SA_NOCLDSTOP: u64 = 1;

/// Number of signals (`_NSIG`).
pub const NSIG: usize = 64;
/// Bytes of the kernel's `struct sigaction` on riscv64 (handler, flags, mask).
pub const SIGACTION_SIZE: usize = 24;

/// `sa_handler` values.
const SIG_DFL: usize = 0;
/// The handler value that ignores a signal.
pub const SIG_IGN: usize = 1;
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

/// Signal state a process's threads share, under its group lock.
#[derive(Clone)]
pub struct SignalActions {
    /// Actions, by signal number - 1.
    pub actions: [SigAction; NSIG],
    /// `si_pid` and `si_code` of the last signal sent by a process, per signal.
    pub sender: [(u32, i32); NSIG],
}

impl Default for SignalActions {
    fn default() -> Self {
        SignalActions {
            actions: [SigAction::default(); NSIG],
            sender: [(0, 0); NSIG],
        }
    }
}

impl SignalActions {
    /// The actions a child of `fork` gets: the same.
    pub fn for_child(&self) -> SignalActions {
        SignalActions {
            actions: self.actions,
            ..SignalActions::default()
        }
    }

    /// `execve`: handled signals go back to their default action (ignored stay ignored).
    pub fn exec(&mut self) {
        for a in &mut self.actions {
            if a.handler != SIG_IGN {
                *a = SigAction::default();
            }
        }
    }
}

/// Signal state of one thread.
#[derive(Clone, Copy, Default)]
pub struct ThreadSignals {
    /// The alternate stack.
    pub altstack: AltStack,
    /// The blocked set to restore once the next handler returns (`rt_sigsuspend`).
    pub saved_mask: Option<u64>,
    /// The system call that returned `EINTR`: its `sepc` (after the `ecall`) and first
    /// argument, to start it over under `SA_RESTART`.
    pub restart: Option<(usize, usize)>,
    /// `si_code` and `si_addr` of the pending fault signal.
    pub fault: Option<(i32, i32, usize)>,
}

impl ThreadSignals {
    /// A new task's: the alternate stack is inherited by a process of its own (`fork`,
    /// `vfork`), not by a thread sharing the caller's stack memory (as Linux).
    pub fn for_child(&self, shares_vm: bool) -> ThreadSignals {
        ThreadSignals {
            altstack: if shares_vm {
                AltStack::default()
            } else {
                self.altstack
            },
            ..ThreadSignals::default()
        }
    }
}

impl Process {
    /// Whether a signal is pending for this thread (sent to it or to its process) that
    /// it does not block: a sleeping system call returns `EINTR` (or restarts).
    #[inline]
    pub fn interrupted(&self) -> bool {
        (self.pending.load(Ordering::Acquire) | self.group.pending.load(Ordering::Acquire))
            & !self.blocked.load(Ordering::Acquire)
            != 0
    }
}

/// Records `sig` from `from` with `si_code` `code` for `p`'s process, unless the process
/// is exiting or ignores it. Returns whether it is to be made pending.
fn accept(p: &Process, sig: i32, from: u32, code: i32) -> bool {
    let mut inner = p.group.lock();
    if inner.exit.is_some() {
        return false;
    }
    let idx = sig as usize - 1;
    if sig != SIGKILL && sig != SIGSTOP && inner.signals.actions[idx].ignores(sig) {
        return false;
    }
    inner.signals.sender[idx] = (from, code);
    true
}

/// Sends `sig` (1..=64) to the process of task `p` from process `from` with `si_code`
/// `code`: discarded if ignored, else pending for the process and one thread that does
/// not block it is woken; `SIGKILL` kills every thread.
pub fn send(p: &Arc<Process>, sig: i32, from: u32, code: i32) {
    // Kernel threads take no signals (Linux's kernel threads ignore them all).
    if p.kernel {
        return;
    }
    // Job control first, as Linux's prepare_signal: SIGCONT continues a stopped process
    // and drops its pending stops, a stop drops a pending SIGCONT; both whether or not
    // the signal itself is then ignored.
    if sig == SIGCONT {
        continue_process(p);
    } else if STOP_SIGNALS & bit(sig) != 0 {
        discard(p, bit(SIGCONT));
    }
    if !accept(p, sig, from, code) {
        return;
    }
    if sig == SIGKILL {
        super::for_each_thread(p.tgid, |t| super::tell_to_exit(t, SIGKILL));
        return;
    }
    p.group.pending.fetch_or(bit(sig), Ordering::AcqRel);
    // Wake one thread that takes it: the one named if it can, else the first that can.
    if bit(sig) & !p.blocked.load(Ordering::Acquire) != 0 {
        super::sched::wake(p);
        return;
    }
    let mut woken = false;
    super::for_each_thread(p.tgid, |t| {
        if !woken && bit(sig) & !t.blocked.load(Ordering::Acquire) != 0 {
            super::sched::wake(t);
            woken = true;
        }
    });
}

/// Removes the signals of `set` from what is pending for `p`'s process and each of its
/// threads.
fn discard(p: &Process, set: u64) {
    p.group.pending.fetch_and(!set, Ordering::AcqRel);
    super::for_each_thread(p.tgid, |t| {
        t.pending.fetch_and(!set, Ordering::AcqRel);
    });
}

/// `SIGCONT` for `p`'s process: its pending stops are dropped and, if it was stopped, it
/// goes on (every thread woken) and its parent is told (`SIGCHLD`, `WCONTINUED`).
fn continue_process(p: &Process) {
    discard(p, STOP_SIGNALS);
    if !p.group.stopped.swap(false, Ordering::AcqRel) {
        return;
    }
    p.group
        .job_report
        .store(ExitStatus::Continued.wstatus(), Ordering::Release);
    super::for_each_thread(p.tgid, super::sched::wake);
    tell_parent_of_job(p, CLD_CONTINUED);
}

/// Tells the parent of `p`'s process that it stopped or continued (`code`): a wake-up
/// for its wait, and `SIGCHLD` unless its action has `SA_NOCLDSTOP`.
fn tell_parent_of_job(p: &Process, code: i32) {
    let parent = p.group.lock().parent;
    let Some(parent) = super::find(parent) else {
        return;
    };
    super::sched::wake(&parent);
    let flags = parent.group.lock().signals.actions[SIGCHLD as usize - 1].flags;
    if flags & SA_NOCLDSTOP == 0 {
        send(&parent, SIGCHLD, p.tgid as u32, code);
    }
}

/// Stops the current process for `sig` (the default action of a stop signal): marks it
/// stopped, tells the parent, and waits until it is continued or killed.
fn stop(me: &Arc<Process>, sig: i32) {
    me.group.stopped.store(true, Ordering::Release);
    me.group
        .job_report
        .store(ExitStatus::Stopped(sig).wstatus(), Ordering::Release);
    tell_parent_of_job(me, CLD_STOPPED);
    wait_while_stopped(me);
}

/// Sleeps while the current process is stopped (any of its threads, at its return to
/// user mode), until `SIGCONT` or a kill.
fn wait_while_stopped(me: &Arc<Process>) {
    while me.group.stopped.load(Ordering::Acquire) && !me.killed.load(Ordering::Acquire) {
        super::sched::sleep();
    }
}

/// Sends `sig` to thread `t` alone (`tkill`, `tgkill`); `SIGKILL` still kills the
/// whole process.
pub fn send_thread(t: &Arc<Process>, sig: i32, from: u32, code: i32) {
    if sig == SIGKILL {
        return send(t, sig, from, code);
    }
    if !accept(t, sig, from, code) {
        return;
    }
    t.pending.fetch_or(bit(sig), Ordering::AcqRel);
    if bit(sig) & !t.blocked.load(Ordering::Acquire) != 0 {
        super::sched::wake(t);
    }
}

/// Checks `sig` (0..=64; 0 only checks) for a kill of task `p`: `EINVAL` for a bad
/// signal. Init gets only the signals it has a handler for (not even `SIGKILL` from user
/// space), as on Linux: `Ok(false)` means "nothing to send".
fn may_send(p: &Process, sig: i32) -> Result<bool, Errno> {
    if !(0..=NSIG as i32).contains(&sig) {
        return Err(Errno::EINVAL);
    }
    if sig == 0 {
        return Ok(false);
    }
    if p.tgid == INIT_PID {
        let handled = p.group.lock().signals.actions[sig as usize - 1].handler > SIG_IGN;
        if !handled || sig == SIGKILL || sig == SIGSTOP {
            return Ok(false);
        }
    }
    Ok(true)
}

/// `kill(pid, sig)` for one process: `ESRCH` if there is none, `EINVAL` for a bad
/// signal; signal 0 only checks.
pub fn kill(pid: usize, sig: i32, code: i32) -> Result<(), Errno> {
    let p = find(pid).ok_or(Errno::ESRCH)?;
    if may_send(&p, sig)? {
        let from = super::sched::with_current(|c| c.map_or(0, |c| c.tgid as u32));
        send(&p, sig, from, code);
    }
    Ok(())
}

/// Whom `kill` with a pid of 0 or less reaches.
#[derive(Clone, Copy, Debug)]
pub enum Targets {
    /// The processes of a process group.
    Group(usize),
    /// Every process but init and the caller's (`kill(-1, sig)`).
    All,
}

/// `kill(0 or -pgid or -1, sig)`: sends `sig` to every process `to` names; `ESRCH` if
/// there is none.
pub fn kill_many(to: Targets, sig: i32) -> Result<(), Errno> {
    let me = current();
    let mut targets: alloc::vec::Vec<Arc<Process>> = alloc::vec::Vec::new();
    let mut short = false;
    // Collected first: sending takes the task table's lock again.
    super::for_each_process(|p| {
        let chosen = match to {
            Targets::Group(pgid) => p.group.lock().pgid == pgid,
            Targets::All => p.tgid != INIT_PID && p.tgid != me.tgid,
        };
        if chosen && p.group.lock().exit.is_none() {
            if targets.try_reserve(1).is_ok() {
                targets.push(p.clone());
            } else {
                short = true;
            }
        }
    });
    if short {
        return Err(Errno::ENOMEM);
    }
    if targets.is_empty() {
        return Err(Errno::ESRCH);
    }
    for p in &targets {
        if may_send(p, sig)? {
            send(p, sig, me.tgid as u32, SI_USER);
        }
    }
    Ok(())
}

/// The signals process `p` ignores and those it catches (bit `sig - 1`), as
/// `/proc/PID/stat` shows them.
pub fn dispositions(p: &Process) -> (u64, u64) {
    let inner = p.group.lock();
    let (mut ignored, mut caught) = (0, 0);
    for (i, a) in inner.signals.actions.iter().enumerate() {
        match a.handler {
            SIG_DFL => {}
            SIG_IGN => ignored |= 1 << i,
            _ => caught |= 1 << i,
        }
    }
    (ignored, caught)
}

/// Sends `sig` from the kernel to every live process of group `pgid` (the terminal's
/// `^C`); init only if it handles `sig`. Callable without a current process (a timer
/// tick on an idle hart). Processes beyond what memory allows listing are skipped.
pub fn kill_group_from_kernel(pgid: usize, sig: i32) {
    let mut targets: alloc::vec::Vec<Arc<Process>> = alloc::vec::Vec::new();
    super::for_each_process(|p| {
        let inner = p.group.lock();
        if inner.pgid == pgid && inner.exit.is_none() && targets.try_reserve(1).is_ok() {
            targets.push(p.clone());
        }
    });
    for p in &targets {
        if may_send(p, sig) == Ok(true) {
            send(p, sig, 0, SI_KERNEL);
        }
    }
}

/// `tgkill(tgid, tid, sig)` (`tgid` 0: `tkill`): to one thread; `ESRCH` if there is no
/// such thread (in that process).
pub fn kill_thread(tgid: usize, tid: usize, sig: i32) -> Result<(), Errno> {
    let t = find(tid).ok_or(Errno::ESRCH)?;
    if (tgid != 0 && t.tgid != tgid) || t.sched.lock().state == super::sched::State::Zombie {
        return Err(Errno::ESRCH);
    }
    if may_send(&t, sig)? {
        let from = super::sched::with_current(|c| c.map_or(0, |c| c.tgid as u32));
        send_thread(&t, sig, from, SI_TKILL);
    }
    Ok(())
}

/// A fault the current process cannot resolve: if the process has a handler for `sig`
/// and does not block it, the signal is made pending with its `si_code` and `si_addr`
/// (delivered on the way back to user mode); otherwise the process ends with it (a
/// blocked or ignored fault signal cannot be put off: Linux forces the default).
pub fn fault(sig: i32, code: i32, addr: usize, what: &str, pc: usize) {
    let me = current();
    let a = me.group.lock().signals.actions[sig as usize - 1];
    let handled = a.handler > SIG_IGN && me.blocked.load(Ordering::Acquire) & bit(sig) == 0;
    if handled {
        me.thread.lock().signals.fault = Some((sig, code, addr));
    }
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
    let pending = super::sched::with_current(|p| {
        p.is_some_and(|p| {
            p.pending.load(Ordering::Acquire) | p.group.pending.load(Ordering::Acquire) != 0
                || p.group.stopped.load(Ordering::Acquire)
        })
    });
    if pending {
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
        if sig == super::THREAD_EXIT {
            super::exit_thread(ExitStatus::Signaled(SIGKILL));
        }
        exit(ExitStatus::Signaled(if sig == 0 { SIGKILL } else { sig }));
    }
    // Another thread stopped the process: this one waits too.
    wait_while_stopped(&me);
    while let Some(sig) = take_signal(&me) {
        let action = me.group.lock().signals.actions[sig as usize - 1];
        if action.ignores(sig) && sig != SIGSTOP {
            continue;
        }
        if (action.handler == SIG_DFL && STOP_SIGNALS & bit(sig) != 0) || sig == SIGSTOP {
            stop(&me, sig);
            if me.killed.load(Ordering::Acquire) {
                break;
            }
            continue;
        }
        if action.handler == SIG_DFL {
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
    let mut t = me.thread.lock();
    t.signals.restart = None;
    if let Some(mask) = t.signals.saved_mask.take() {
        me.blocked.store(mask, Ordering::Release);
    }
}

/// Takes the lowest pending signal `me` does not block: sent to the thread first, then
/// to its process (another thread may take that one first).
fn take_signal(me: &Process) -> Option<i32> {
    take_signal_in(me, !me.blocked.load(Ordering::Acquire))
}

/// Takes the lowest pending signal of `me` in `allowed`, thread-directed ones first.
fn take_signal_in(me: &Process, allowed: u64) -> Option<i32> {
    for set in [&me.pending, &me.group.pending] {
        loop {
            let ready = set.load(Ordering::Acquire) & allowed;
            if ready == 0 {
                break;
            }
            let sig = ready.trailing_zeros() as i32 + 1;
            if set.fetch_and(!bit(sig), Ordering::AcqRel) & bit(sig) != 0 {
                return Some(sig);
            }
        }
    }
    None
}

/// Bytes of `siginfo_t`.
pub const SIGINFO_SIZE: usize = 128;
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
    let (sender, trampoline) = {
        let inner = me.group.lock();
        (inner.signals.sender[sig as usize - 1], inner.trampoline)
    };
    let mut thread = me.thread.lock();
    let st = &mut thread.signals;
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
            let (pid, code) = sender;
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
    drop(thread);
    copy_to_user(at, &b)?;

    if action.flags & SA_RESETHAND != 0 {
        me.group.lock().signals.actions[sig as usize - 1] = SigAction::default();
    }
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
    current().thread.lock().signals.restart = Some((frame.sepc, a0));
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
    let mut inner = me.group.lock();
    let slot = &mut inner.signals.actions[sig as usize - 1];
    let old = *slot;
    if let Some(a) = act {
        *slot = a;
        drop(inner);
        // Setting a signal to be ignored discards it where pending.
        if a.ignores(sig) {
            me.group.pending.fetch_and(!bit(sig), Ordering::AcqRel);
            super::for_each_thread(me.tgid, |t| {
                t.pending.fetch_and(!bit(sig), Ordering::AcqRel);
            });
        }
    }
    Ok(old)
}

/// `sigaltstack(ss, old_ss)` with both structures read and written here.
pub fn sigaltstack(frame: &TrapFrame, ss: usize, old: usize) -> Result<usize, Errno> {
    let me = current();
    let cur = me.thread.lock().signals.altstack;
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
        me.thread.lock().signals.altstack = new;
    }
    Ok(0)
}

/// `rt_sigsuspend(mask)`: waits with `mask` blocked until a signal is delivered;
/// always `EINTR` (the old mask comes back when the handler returns).
pub fn suspend(mask: u64) -> Result<usize, Errno> {
    let me = current();
    let old = me.blocked.swap(mask & !UNBLOCKABLE, Ordering::AcqRel);
    me.thread.lock().signals.saved_mask = Some(old);
    while !me.interrupted() {
        super::sched::sleep();
    }
    Err(Errno::EINTR)
}

/// `rt_sigtimedwait(set, ...)`: takes a pending signal in `set` (those are normally
/// blocked) without running its handler, waiting for one until monotonic time
/// `deadline` (`EAGAIN` then) or until another signal is delivered (`EINTR`). Returns the
/// signal and its `siginfo_t`.
pub fn timed_wait(set: u64, deadline: Option<u64>) -> Result<(i32, [u8; SIGINFO_SIZE]), Errno> {
    let me = current();
    let set = set & !UNBLOCKABLE;
    // While waiting, the signals of `set` count as unblocked, so that a sender wakes
    // this thread for them (Linux's `real_blocked`).
    let old = me.blocked.load(Ordering::Acquire);
    me.blocked.store(old & !set, Ordering::Release);
    let outcome = loop {
        if let Some(sig) = take_signal_in(&me, set) {
            break Ok(sig);
        }
        if deadline.is_some_and(|d| crate::timer::now_ns() >= d) {
            break Err(Errno::EAGAIN);
        }
        if me.interrupted() {
            break Err(Errno::EINTR);
        }
        super::sched::sleep_once(&me, deadline);
    };
    me.blocked.store(old, Ordering::Release);
    let sig = outcome?;
    let (pid, code) = me.group.lock().signals.sender[sig as usize - 1];
    let mut info = [0u8; SIGINFO_SIZE];
    put(&mut info, 0, &sig.to_le_bytes());
    put(&mut info, 8, &code.to_le_bytes());
    put(&mut info, 16, &pid.to_le_bytes());
    Ok((sig, info))
}

/// A process's real-time interval timer (`setitimer(ITIMER_REAL)`, `alarm`): `SIGALRM`
/// at `deadline` (monotonic ns), then every `interval` ns if that is not 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Alarm {
    /// When it fires next (0: disarmed).
    pub deadline: u64,
    /// The period after that (0: once).
    pub interval: u64,
}

/// Armed timers: (deadline, process id), at most one live entry per process (an entry
/// whose deadline no longer matches its process's timer is stale and dropped).
static ALARMS: spin::Mutex<alloc::vec::Vec<(u64, usize)>> =
    spin::Mutex::new(alloc::vec::Vec::new());

/// `SIGALRM`.
pub const SIGALRM: i32 = 14;

/// Sets the calling process's real-time timer to `new` (a zero deadline disarms it);
/// returns the old one, its deadline as time left.
pub fn set_alarm(new: Alarm) -> Result<Alarm, Errno> {
    let me = current();
    let now = crate::timer::now_ns();
    let mut alarms = ALARMS.lock();
    alarms.retain(|&(_, pid)| pid != me.tgid);
    if new.deadline != 0 {
        alarms.try_reserve(1).map_err(|_| Errno::ENOMEM)?;
        alarms.push((new.deadline, me.tgid));
    }
    let old = core::mem::replace(&mut me.group.lock().alarm, new);
    Ok(Alarm {
        deadline: if old.deadline == 0 {
            0
        } else {
            old.deadline.saturating_sub(now).max(1)
        },
        interval: old.interval,
    })
}

/// The calling process's real-time timer, its deadline as time left.
pub fn get_alarm() -> Alarm {
    let a = current().group.lock().alarm;
    let now = crate::timer::now_ns();
    Alarm {
        deadline: if a.deadline == 0 {
            0
        } else {
            a.deadline.saturating_sub(now).max(1)
        },
        interval: a.interval,
    }
}

/// Fires the timers that are due (called on timer ticks): `SIGALRM`, then the next
/// period for an interval timer.
pub fn fire_alarms(now: u64) {
    let mut due = [0usize; 8];
    loop {
        let mut n = 0;
        {
            let mut alarms = ALARMS.lock();
            if alarms.iter().all(|&(d, _)| d > now) {
                return;
            }
            alarms.retain(|&(d, pid)| {
                if d <= now && n < due.len() {
                    due[n] = pid;
                    n += 1;
                    false
                } else {
                    true
                }
            });
        }
        for &pid in &due[..n] {
            let Some(p) = find(pid) else { continue };
            let next = {
                let mut inner = p.group.lock();
                let a = &mut inner.alarm;
                if a.deadline == 0 || a.deadline > now {
                    continue; // Disarmed or re-armed meanwhile.
                }
                a.deadline = if a.interval == 0 {
                    0
                } else {
                    now.saturating_add(a.interval)
                };
                a.deadline
            };
            if next != 0 {
                let mut alarms = ALARMS.lock();
                if alarms.try_reserve(1).is_ok() {
                    alarms.push((next, pid));
                }
            }
            send(&p, SIGALRM, 0, SI_KERNEL);
        }
    }
}

/// `si_code` of a signal the kernel sends.
pub const SI_KERNEL: i32 = 0x80;

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
    (me.pending.load(Ordering::Acquire) | me.group.pending.load(Ordering::Acquire))
        & me.blocked.load(Ordering::Acquire)
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
    if me.group.lock().trampoline != 0 {
        return Ok(());
    }
    let code = crate::fs::initramfs::static_object(&TRAMPOLINE_CODE)?;
    let file = MmapFile {
        file: Some(code),
        readable: true,
        writable: false,
    };
    let mm = me.mm();
    let at = {
        let mut vm = mm.lock();
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
    me.group.lock().trampoline = at.0;
    Ok(())
}

/// The trampoline's code: `li a7, 139` (`rt_sigreturn`), `ecall`.
pub static TRAMPOLINE_CODE: [u8; 8] = [0x93, 0x08, 0xb0, 0x08, 0x73, 0x00, 0x00, 0x00];
