//! Processes: creation, `fork`, `execve`, exit, `wait4`, kill, and user traps.
//!
//! A process is one thread with its own address space ([`UserSpace`]), kernel stack,
//! descriptor table and parent. Its [`TrapFrame`] lives at the top of its kernel stack;
//! a new process starts by "returning" to user mode through that frame.

pub mod elf;
pub mod exec;
pub mod oom;
pub mod sched;
pub mod signal;
pub mod wait;

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering};

use spin::Mutex;

use crate::arch::trap::{Context, FpState, TrapFrame, reg};
use crate::fs::FdTable;
use crate::memory::kstack::KernelStack;
use crate::memory::uspace::{self, UserSpace};
use crate::syscall::errno::Errno;
use sched::{Sched, State};

/// A process id.
pub type Pid = usize;

/// The pid of the first process; orphans are re-parented to it.
pub const INIT_PID: Pid = 1;

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
    /// Signal actions, the alternate stack and delivery state (boxed: 2 KiB that would
    /// otherwise push the fields after `inner` beyond a load's 12-bit offset, on the path
    /// of every return to user mode).
    pub signals: Box<signal::SignalState>,
    /// Where the signal-return trampoline is mapped (handlers return there; 0 until the
    /// first handler is installed).
    pub trampoline: usize,
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
    /// A kill (`SIGKILL`) is pending: acted on at the next return to user mode.
    pub killed: AtomicBool,
    /// Pending signals (bit `sig - 1`).
    pub pending: AtomicU64,
    /// Blocked signals.
    pub blocked: AtomicU64,
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
            pending: AtomicU64::new(0),
            blocked: AtomicU64::new(0),
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
            Some(vm) => uspace::activate(vm.mmu(), crate::smp::hart_id()),
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

/// The most tasks (live and zombie) the system holds: Linux's `kernel.threads-max`
/// default, set at boot by [`set_max_tasks`].
static MAX_TASKS: AtomicUsize = AtomicUsize::new(MIN_TASKS);

/// The smallest `threads-max` (Linux's `MIN_THREADS`).
const MIN_TASKS: usize = 20;

/// Sets `threads-max` for `ram_frames` 4 KiB frames of RAM as Linux does: as many tasks
/// as the RAM could hold kernel stacks for, eight times over.
pub fn set_max_tasks(ram_frames: usize) {
    let stack_pages = pagoda_mm::layout::KERNEL_STACK_SIZE / pagoda_mm::addr::PAGE_SIZE;
    MAX_TASKS.store(
        (ram_frames / (8 * stack_pages)).max(MIN_TASKS),
        Ordering::Relaxed,
    );
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
        signals: Box::default(),
        trampoline: 0,
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
    // Linux's threads-max: no task beyond it, whatever the memory (EAGAIN).
    if count() >= MAX_TASKS.load(Ordering::Relaxed) {
        return Err(Errno::EAGAIN);
    }
    let child_vm = {
        let mut vm = parent.vm.lock();
        let vm = vm.as_mut().ok_or(Errno::ESRCH)?;
        // The copy of the area map and the child's signal state come from the kernel
        // heap, infallibly: taken only while free memory stays above the reserve after.
        let bytes = vm.area_map_bytes() + core::mem::size_of::<signal::SignalState>();
        if !crate::memory::frames::user_may_take(bytes) {
            return Err(Errno::ENOMEM);
        }
        let mmu = uspace::new_mmu().map_err(|_| Errno::ENOMEM)?;
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
            signals: Box::new(pi.signals.for_child()),
            trampoline: pi.trampoline,
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
    child
        .blocked
        .store(parent.blocked.load(Ordering::Acquire), Ordering::Release);
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
    // Unmap a large space in pieces (yielding between them), then free the rest on the
    // kernel's own page table: a yield switches back to this space's table when the
    // process runs again, so the switch away must come after the last yield.
    unmap_in_pieces(&me);
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
    } else {
        // Nothing below returns: every local that owns memory must go by hand (the
        // list's buffer stays allocated even when it is empty).
        drop(orphans);
    }
    if me.pid == INIT_PID {
        crate::println!("pagoda: init exited ({status:?}); powering off");
        crate::drivers::finisher::power_off(crate::EXIT_INIT_DIED);
    }
    if let Some(p) = find(parent) {
        sched::wake(&p);
        signal::send(&p, signal::SIGCHLD, me.pid as u32, CLD_EXITED);
    }
    drop(me);
    sched::exit_current()
}

/// Page-table pages from which `exit` takes a space apart in pieces before dropping it
/// (2 KiB of tables per MiB mapped: 1 GiB of populated range).
const PIECEWISE_TABLES: usize = 512;
/// Bytes `exit` unmaps at a time from such a space (at most some 16,000 leaves).
const EXIT_PIECE: usize = 64 << 20;

/// Unmaps a large address space from its lowest area up, [`EXIT_PIECE`] at a time, giving
/// the hart away once a tick has passed: dropping a space walks all of its tables with
/// the hart held, which for a space with a million mapped pages (a populated 192 GiB
/// read-only mapping of the zero page) takes seconds. Small spaces (every ordinary exit)
/// skip this and are dropped whole.
fn unmap_in_pieces(me: &Process) {
    let mut slice_start = crate::timer::now_ns();
    loop {
        {
            let mut vm = me.vm.lock();
            let Some(vm) = vm.as_mut() else { return };
            if vm.mmu().memory().pages() < PIECEWISE_TABLES {
                return;
            }
            let Some(area) = vm.areas().next() else {
                return;
            };
            let (start, end) = (area.range.start.0, area.range.end.0);
            // From the area's start: the area shrinks, it never splits.
            let len = (end - start).min(EXIT_PIECE);
            if vm.munmap(start, len).is_err() {
                return;
            }
        }
        if crate::timer::now_ns() - slice_start >= crate::timer::TICK_NS {
            sched::preempt();
            slice_start = crate::timer::now_ns();
        }
    }
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
        // A signal interrupts the wait only if no child is ready: the SIGCHLD of the
        // child that woke us must not hide that child (it is reaped first, as Linux does).
        if me.interrupted() {
            return Err(Errno::EINTR);
        }
        sched::sleep();
    }
}

/// `si_code` of `SIGCHLD` for a child that exited.
const CLD_EXITED: i32 = 1;

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
