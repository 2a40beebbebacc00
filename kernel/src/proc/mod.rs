//! Processes: creation, `fork`, `execve`, exit, `wait4`, kill, and user traps.
//!
//! A process is one thread with its own address space ([`UserSpace`]), kernel stack,
//! descriptor table and parent. Its [`TrapFrame`] lives at the top of its kernel stack;
//! a new process starts by "returning" to user mode through that frame.

pub mod elf;
pub mod exec;
pub mod oom;
pub mod sched;

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};

use spin::Mutex;

use crate::arch::trap::{Context, FpState, TrapFrame, reg};
use crate::fs::FdTable;
use crate::memory::kstack::KernelStack;
use crate::memory::uspace::{self, UserMmu, UserSpace};
use crate::syscall::errno::Errno;
use sched::{Sched, State};

/// A process id.
pub type Pid = usize;

/// The pid of the first process; orphans are re-parented to it.
pub const INIT_PID: Pid = 1;

/// The signals the kernel delivers: `SIGKILL` and the fault signals.
pub mod signal {
    /// Trace trap.
    pub const SIGTRAP: i32 = 5;
    /// Illegal instruction.
    pub const SIGILL: i32 = 4;
    /// Bus error (misaligned access, I/O error while paging in).
    pub const SIGBUS: i32 = 7;
    /// Kill.
    pub const SIGKILL: i32 = 9;
    /// Stop (cannot be caught; pagoda ends the process).
    pub const SIGSTOP: i32 = 19;
    /// Segmentation fault.
    pub const SIGSEGV: i32 = 11;
}

/// Number of signals (`_NSIG`).
pub const NSIG: usize = 64;
/// Bytes of the kernel's `struct sigaction` on riscv64 (handler, flags, mask).
pub const SIGACTION_SIZE: usize = 24;

/// How a process ended, encoded as `wait4` reports it.
#[derive(Clone, Copy, Debug)]
pub enum ExitStatus {
    /// `exit(code)`.
    Exited(i32),
    /// Killed by a signal.
    Signaled(i32),
}

impl ExitStatus {
    /// The `wstatus` word (`WIFEXITED`/`WEXITSTATUS`/`WTERMSIG` layout).
    pub fn wstatus(self) -> i32 {
        match self {
            ExitStatus::Exited(code) => (code & 0xff) << 8,
            ExitStatus::Signaled(sig) => sig & 0x7f,
        }
    }
}

/// Mutable process state other than scheduling.
pub struct Inner {
    /// The parent's pid.
    pub parent: Pid,
    /// Children, alive or zombie.
    pub children: Vec<Arc<Process>>,
    /// Set when the process has exited.
    pub exit: Option<ExitStatus>,
    /// Open files.
    pub fds: FdTable,
    /// Path of the running program (`/proc/self/exe`).
    pub exe: String,
    /// The working directory (absolute, normalised).
    pub cwd: String,
    /// `set_tid_address`: cleared (written 0) at exit.
    pub clear_child_tid: usize,
    /// Blocked signals (recorded for `rt_sigprocmask`; only `SIGKILL` is delivered).
    pub sigmask: u64,
    /// Signal actions as the process set them (recorded for `rt_sigaction`).
    pub sigactions: [[u8; SIGACTION_SIZE]; NSIG],
}

/// A process.
pub struct Process {
    /// Its id.
    pub pid: Pid,
    /// Scheduling state (see [`sched`]).
    pub sched: Mutex<Sched>,
    /// Saved kernel registers while not running.
    pub context: UnsafeCell<Context>,
    /// Saved floating-point registers while not running.
    pub fp: UnsafeCell<FpState>,
    /// Its kernel stack (guard page below).
    pub kstack: KernelStack,
    /// Its address space (`None` once it exited).
    pub vm: Mutex<Option<UserSpace>>,
    /// Everything else.
    pub inner: Mutex<Inner>,
    /// A kill is pending: acted on at the next return to user mode.
    pub killed: AtomicBool,
    /// The signal that killed it (valid once `killed` is set).
    pub kill_signal: AtomicI32,
    /// The out-of-memory killer chose it and its memory is not back yet ([`oom`]).
    pub oom_victim: AtomicBool,
}

// SAFETY: `context` and `fp` are only touched by the hart that runs or switches the
// process, under the hand-over protocol of `sched`; every other field is synchronised.
unsafe impl Sync for Process {}
// SAFETY: as above; the process moves between harts only through that protocol.
unsafe impl Send for Process {}

static PROCESSES: Mutex<BTreeMap<Pid, Arc<Process>>> = Mutex::new(BTreeMap::new());
static NEXT_PID: AtomicUsize = AtomicUsize::new(INIT_PID);

impl Process {
    /// A new process whose trap frame is `frame`, ready to enter user mode.
    fn new(
        vm: UserSpace,
        frame: TrapFrame,
        inner: Inner,
        fp: FpState,
    ) -> Result<Arc<Process>, Errno> {
        let kstack = KernelStack::new().map_err(|_| Errno::ENOMEM)?;
        let frame_at = (kstack.top() - core::mem::size_of::<TrapFrame>()) as *mut TrapFrame;
        // SAFETY: the stack is mapped, ours alone, and large enough for a frame.
        unsafe { frame_at.write(frame) };
        let p = Arc::new(Process {
            pid: NEXT_PID.fetch_add(1, Ordering::Relaxed),
            sched: Mutex::new(Sched::new()),
            context: UnsafeCell::new(Context::default()),
            fp: UnsafeCell::new(fp),
            kstack,
            vm: Mutex::new(Some(vm)),
            inner: Mutex::new(inner),
            killed: AtomicBool::new(false),
            kill_signal: AtomicI32::new(0),
            oom_victim: AtomicBool::new(false),
        });
        // SAFETY: nobody else sees the process yet.
        unsafe { *p.context.get() = Context::new_task(frame_at, p.fp.get()) };
        PROCESSES.lock().insert(p.pid, p.clone());
        Ok(p)
    }

    /// The trap frame at the top of the kernel stack.
    pub fn frame(&self) -> *mut TrapFrame {
        (self.kstack.top() - core::mem::size_of::<TrapFrame>()) as *mut TrapFrame
    }

    /// Makes this process's address space the one the hart translates with.
    fn activate_on_this_hart(&self) {
        match &*self.vm.lock() {
            Some(vm) => vm.mmu().activate(crate::smp::hart_id()),
            None => uspace::activate_kernel(),
        }
    }

    /// Calls `f` with the program name (for log lines; allocates nothing).
    pub fn with_name<R>(&self, f: impl FnOnce(&str) -> R) -> R {
        let inner = self.inner.lock();
        f(inner.exe.rsplit('/').next().unwrap_or(&inner.exe))
    }
}

/// The process running on this hart. Only called on paths that run for a process
/// (system calls, user traps), which always have one.
pub fn current() -> Arc<Process> {
    sched::current().unwrap_or_else(|| unreachable!("process code without a current process"))
}

/// Number of processes (live and zombie).
pub fn count() -> usize {
    PROCESSES.lock().len()
}

/// Looks up a live or zombie process.
pub fn find(pid: Pid) -> Option<Arc<Process>> {
    PROCESSES.lock().get(&pid).cloned()
}

/// Creates the first process from `path` with `argv`/`envp`, descriptors 0-2 on the
/// console, and puts it on the run queue.
pub fn spawn_init(path: &str, argv: &[String], envp: &[String]) -> Result<(), Errno> {
    let vm = uspace::new_space().map_err(|_| Errno::ENOMEM)?;
    let inner = Inner {
        parent: 0,
        children: Vec::new(),
        exit: None,
        fds: FdTable::with_console()?,
        exe: String::new(),
        cwd: String::from("/"),
        clear_child_tid: 0,
        sigmask: 0,
        sigactions: [[0; SIGACTION_SIZE]; NSIG],
    };
    let p = Process::new(vm, TrapFrame::default(), inner, FpState::default())?;
    let frame = exec::exec_into(&p, path, argv, envp)?;
    // SAFETY: the process has not run yet; its frame slot is ours to fill.
    unsafe { p.frame().write(frame) };
    sched::enqueue(p);
    Ok(())
}

/// `fork`: a copy of the current process sharing its pages copy-on-write, resuming from
/// `parent_frame` with 0 in `a0`. With `set_tid`, the child's pid is written at that
/// address of the child's memory (`CLONE_CHILD_SETTID`); `clear_tid` is the child's
/// `CLONE_CHILD_CLEARTID` address (0: none). Returns the child's pid.
pub fn fork(
    parent_frame: &TrapFrame,
    set_tid: Option<usize>,
    clear_tid: usize,
) -> Result<Pid, Errno> {
    let parent = current();
    let child_vm = {
        let mut vm = parent.vm.lock();
        let vm = vm.as_mut().ok_or(Errno::ESRCH)?;
        // The copy of the area map comes from the kernel heap, infallibly: it is taken
        // only while free memory stays above the kernel's reserve after it.
        if !crate::memory::frames::user_may_take(vm.area_map_bytes()) {
            return Err(Errno::ENOMEM);
        }
        let mmu = UserMmu::new().map_err(|_| Errno::ENOMEM)?;
        vm.fork(mmu).map_err(Errno::from_vm)?
    };
    let inner = {
        let pi = parent.inner.lock();
        Inner {
            parent: parent.pid,
            children: Vec::new(),
            exit: None,
            fds: pi.fds.try_clone()?,
            exe: pi.exe.clone(),
            cwd: pi.cwd.clone(),
            clear_child_tid: clear_tid,
            sigmask: pi.sigmask,
            sigactions: pi.sigactions,
        }
    };
    let mut frame = *parent_frame;
    // The parent's sepc is already past the ecall; the child resumes there with 0.
    frame.regs[reg::A0] = 0;
    // The child starts with the parent's floating-point registers, live on this hart.
    let mut fp = FpState::default();
    crate::arch::trap::save_fp(&mut fp);
    // Room in the parent's list first: a child that cannot be listed must not exist.
    parent
        .inner
        .lock()
        .children
        .try_reserve(1)
        .map_err(|_| Errno::ENOMEM)?;
    let child = Process::new(child_vm, frame, inner, fp)?;
    let pid = child.pid;
    if let Some(addr) = set_tid
        && let Some(vm) = child.vm.lock().as_mut()
    {
        // Like Linux, a bad address only means the write does not happen.
        let _ = uspace::write_bytes(vm, addr, &(pid as u32).to_le_bytes());
    }
    parent.inner.lock().children.push(child.clone());
    sched::enqueue(child);
    Ok(pid)
}

/// Ends the current process with `status`; never returns.
pub fn exit(status: ExitStatus) -> ! {
    let me = current();
    let (parent, orphans, tid_addr) = {
        let mut inner = me.inner.lock();
        inner.exit = Some(status);
        inner.fds = FdTable::default();
        (
            inner.parent,
            core::mem::take(&mut inner.children),
            inner.clear_child_tid,
        )
    };
    if tid_addr != 0 {
        // CLONE_CHILD_CLEARTID: a failure only means the address is gone.
        let _ = crate::syscall::uaccess::copy_to_user(tid_addr, &0u32.to_le_bytes());
    }
    // Free the address space now, running on the kernel's own page table.
    uspace::activate_kernel();
    let vm = me.vm.lock().take();
    drop(vm);
    oom::victim_released(&me);
    if !orphans.is_empty()
        && let Some(init) = find(INIT_PID)
    {
        for c in &orphans {
            c.inner.lock().parent = INIT_PID;
        }
        init.inner.lock().children.extend(orphans);
        // Always: an orphan may have become a zombie after it was looked at and woken
        // its old parent instead; init's wait loop re-checks.
        sched::wake(&init);
    }
    if me.pid == INIT_PID {
        crate::println!("pagoda: init exited ({status:?}); powering off");
        crate::drivers::finisher::power_off(crate::EXIT_INIT_DIED);
    }
    if let Some(p) = find(parent) {
        sched::wake(&p);
    }
    drop(me);
    sched::exit_current()
}

/// `wait4`: waits for a child (`pid` > 0: that one; -1: any) to exit and reaps it.
/// Returns (pid, wstatus), or `Ok(None)` with `WNOHANG` when none has exited.
pub fn wait(pid: isize, nohang: bool) -> Result<Option<(Pid, i32)>, Errno> {
    let me = current();
    loop {
        {
            let mut inner = me.inner.lock();
            let matches = |c: &Arc<Process>| pid == -1 || c.pid as isize == pid;
            if !inner.children.iter().any(&matches) {
                return Err(Errno::ECHILD);
            }
            let zombie = inner.children.iter().position(|c| {
                let s = c.sched.lock();
                matches(c) && s.state == State::Zombie && !s.on_cpu
            });
            if let Some(i) = zombie {
                let child = inner.children.swap_remove(i);
                let status = child.inner.lock().exit.map_or(0, ExitStatus::wstatus);
                PROCESSES.lock().remove(&child.pid);
                return Ok(Some((child.pid, status)));
            }
        }
        if nohang {
            return Ok(None);
        }
        sched::sleep();
        if me.killed.load(Ordering::Relaxed) {
            return Err(Errno::EINTR);
        }
    }
}

/// Signals whose default action is to do nothing (`SIGCHLD`, `SIGCONT`, `SIGURG`,
/// `SIGWINCH`).
const IGNORED_BY_DEFAULT: [i32; 4] = [17, 18, 23, 28];
/// `SIG_IGN` as a handler address.
const SIG_IGN: u64 = 1;

/// `kill(pid, sig)`. pagoda runs no signal handlers: a signal the process ignores
/// (`SIG_IGN`, or ignored by default) is dropped; any other ends the process, which its
/// parent sees as killed by that signal. Signal 0 only checks that the process exists.
pub fn kill(pid: Pid, sig: i32) -> Result<(), Errno> {
    let p = find(pid).ok_or(Errno::ESRCH)?;
    if !(0..=NSIG as i32).contains(&sig) {
        return Err(Errno::EINVAL);
    }
    if sig == 0 {
        return Ok(());
    }
    if pid == INIT_PID {
        // As on Linux, init gets only signals it has a handler for, and pagoda runs no
        // handlers: nothing (not even SIGKILL) ends it from user space.
        return Ok(());
    }
    {
        let inner = p.inner.lock();
        if inner.exit.is_some() {
            return Ok(());
        }
        let handler = &inner.sigactions[sig as usize - 1][..8];
        let handler = u64::from_le_bytes(handler.try_into().unwrap_or_default());
        let uncatchable = sig == signal::SIGKILL || sig == signal::SIGSTOP;
        if !uncatchable
            && (handler == SIG_IGN || (handler == 0 && IGNORED_BY_DEFAULT.contains(&sig)))
        {
            return Ok(());
        }
    }
    // The first signal to arrive decides the status.
    let _ = p
        .kill_signal
        .compare_exchange(0, sig, Ordering::AcqRel, Ordering::Acquire);
    p.killed.store(true, Ordering::Release);
    sched::wake(&p);
    Ok(())
}

/// Called before every return to user mode: acts on a pending kill.
#[inline]
pub fn check_killed() {
    let sig = sched::with_current(|p| {
        p.filter(|p| p.killed.load(Ordering::Acquire))
            .map(|p| p.kill_signal.load(Ordering::Acquire))
    });
    if let Some(sig) = sig {
        exit(ExitStatus::Signaled(if sig == 0 {
            signal::SIGKILL
        } else {
            sig
        }));
    }
}

/// Kills the current process for a fault it cannot recover from, with a log line.
pub fn kill_for_fault(sig: i32, what: &str, pc: usize, addr: usize) -> ! {
    let me = current();
    me.with_name(|name| {
        crate::println!(
            "pagoda: pid {} ({name}) killed by signal {sig}: {what} at pc {pc:#x}, address {addr:#x}",
            me.pid
        )
    });
    drop(me);
    exit(ExitStatus::Signaled(sig))
}
