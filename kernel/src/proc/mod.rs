//! Processes: creation, `fork`, `execve`, exit, `wait4`, kill, and user traps.
//!
//! A process is one thread with its own address space ([`UserSpace`]), kernel stack,
//! descriptor table and parent. Its [`TrapFrame`] lives at the top of its kernel stack;
//! a new process starts by "returning" to user mode through that frame.

pub mod elf;
pub mod exec;
pub mod futex;
pub mod oom;
pub mod sched;
pub mod signal;
pub mod wait;

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering};

use spin::Mutex;
use spin::mutex::{TicketMutex, TicketMutexGuard};

use crate::arch::trap::{Context, FpState, TrapFrame, reg};
use crate::fs::FdTable;
use crate::memory::kstack::KernelStack;
use crate::memory::uspace::{self, UserSpace};
use crate::syscall::errno::Errno;
use pagoda_mm::vm::SpaceId;
use sched::{Sched, State};

/// A process id.
pub type Pid = usize;

/// The pid of the first process; orphans are re-parented to it.
pub const INIT_PID: Pid = 1;

/// How a process ended, or (for `wait4` with `WUNTRACED`/`WCONTINUED`) that it stopped
/// or went on, encoded as `wait4` reports it.
#[derive(Clone, Copy, Debug)]
pub enum ExitStatus {
    /// `exit(code)`.
    Exited(i32),
    /// Killed by a signal.
    Signaled(i32),
    /// Stopped by a signal (job control); the process is still there.
    Stopped(i32),
    /// Continued by `SIGCONT`.
    Continued,
}

impl ExitStatus {
    /// The `wstatus` word (`WIFEXITED`/`WEXITSTATUS`/`WTERMSIG`/`WIFSTOPPED`/
    /// `WIFCONTINUED` layout).
    pub fn wstatus(self) -> i32 {
        match self {
            ExitStatus::Exited(code) => (code & 0xff) << 8,
            ExitStatus::Signaled(sig) => sig & 0x7f,
            ExitStatus::Stopped(sig) => ((sig & 0xff) << 8) | 0x7f,
            ExitStatus::Continued => 0xffff,
        }
    }
}

/// Which changes of a child besides its end a wait reports (`WUNTRACED`, `WCONTINUED`).
#[derive(Clone, Copy, Debug, Default)]
pub struct WaitEvents {
    /// Stops (`WUNTRACED`, `WSTOPPED`).
    pub stopped: bool,
    /// Continuations (`WCONTINUED`).
    pub continued: bool,
    /// Ends (`WEXITED`; always for `wait4`).
    pub exited: bool,
}

/// State shared by the threads of one process (Linux's signal, sighand and files
/// structures in one), under [`ThreadGroup::lock`].
pub struct Inner {
    /// The parent's pid.
    pub parent: Pid,
    /// The process group.
    pub pgid: Pid,
    /// The session.
    pub sid: Pid,
    /// `execve` succeeded since `fork` (a parent can no longer move it to another group).
    pub execed: bool,
    /// Children (their thread-group leaders), alive or zombie.
    pub children: Vec<Arc<Process>>,
    /// The process's exit status, set when it started to exit (`exit_group`, a fatal
    /// signal) or when its last thread exited.
    pub exit: Option<ExitStatus>,
    /// Open files.
    pub fds: FdTable,
    /// Path of the running program (`/proc/self/exe`).
    pub exe: String,
    /// The working directory (absolute, normalised).
    pub cwd: String,
    /// The file-mode creation mask (`umask`), inherited by children.
    pub umask: u32,
    /// Signal actions and the senders of pending signals (boxed: 2 KiB).
    pub signals: Box<signal::SignalActions>,
    /// Where the signal-return trampoline is mapped (handlers return there; 0 until the
    /// first handler is installed).
    pub trampoline: usize,
    /// The real-time interval timer (`setitimer`, `alarm`).
    pub alarm: signal::Alarm,
    /// The arguments of the running program, each ending in a NUL, at most
    /// [`CMDLINE_MAX`] bytes (`/proc/PID/cmdline`); shared with the children `fork`
    /// makes until they `execve` (a fork allocates nothing for it). `None`: no memory
    /// was left for them at `execve`.
    pub cmdline: Option<Arc<Vec<u8>>>,
    /// The command name (`prctl(PR_SET_NAME)`, `/proc/PID/comm`): the program's file
    /// name at `execve`, NUL-padded, at most [`COMM_LEN`] - 1 bytes.
    pub comm: [u8; COMM_LEN],
    /// Resource limits (soft, hard) by `RLIMIT_*` number, inherited by children (shared
    /// until one sets a limit); `None`: the first process's ([`initial_rlimits`]).
    pub rlimits: Option<Arc<Rlimits>>,
}

/// The first process's file-mode creation mask (Linux's usual `022`).
pub const DEFAULT_UMASK: u32 = 0o022;

/// Resource limits: kinds (Linux's `RLIM_NLIMITS`).
pub const RLIM_NLIMITS: usize = 16;
/// No limit (`RLIM_INFINITY`).
pub const RLIM_INFINITY: u64 = u64::MAX;
/// `RLIMIT_STACK`: the main thread's stack size.
pub const RLIMIT_STACK: usize = 3;
/// `RLIMIT_NPROC`: tasks of one user (reported: every pagoda process is root, which has
/// `CAP_SYS_RESOURCE` and is not bound by it, as on Linux; `threads-max` binds everyone).
pub const RLIMIT_NPROC: usize = 6;
/// `RLIMIT_NOFILE`: one more than the highest descriptor number.
pub const RLIMIT_NOFILE: usize = 7;
/// `RLIMIT_MEMLOCK`: bytes a process may lock in memory without `CAP_IPC_LOCK` (every
/// pagoda process is root and has it: reported, not enforced, as on Linux for root).
pub const RLIMIT_MEMLOCK: usize = 8;
/// `RLIMIT_AS`: bytes of address space (enforced for everyone, root included).
pub const RLIMIT_AS: usize = 9;
/// (soft, hard) for each resource.
pub type Rlimits = [(u64, u64); RLIM_NLIMITS];

/// The limits of the first process: no limit but the stack's soft limit, the
/// descriptors' ([`crate::fs::MAX_FDS`], which no process can raise), Linux's
/// default memory-lock limit (8 MiB) and Linux's default task limit (half of
/// `threads-max`).
pub fn initial_rlimits() -> Rlimits {
    let mut r = [(RLIM_INFINITY, RLIM_INFINITY); RLIM_NLIMITS];
    let nproc = (max_tasks() / 2) as u64;
    r[RLIMIT_NPROC] = (nproc, nproc);
    r[RLIMIT_STACK].0 = uspace::CONFIG.stack_rlimit as u64;
    r[RLIMIT_NOFILE] = (crate::fs::MAX_FDS as u64, crate::fs::MAX_FDS as u64);
    let memlock = pagoda_mm::vm::DEFAULT_MEMLOCK_RLIMIT as u64;
    r[RLIMIT_MEMLOCK] = (memlock, memlock);
    r
}

/// Bytes of a command name with its NUL (Linux's `TASK_COMM_LEN`).
pub const COMM_LEN: usize = 16;
/// Most bytes of the arguments a process keeps for `/proc/PID/cmdline` (what is beyond
/// is cut off).
pub const CMDLINE_MAX: usize = 4096;

impl Inner {
    /// The command name as text.
    pub fn comm(&self) -> &str {
        let len = self.comm.iter().position(|&b| b == 0).unwrap_or(COMM_LEN);
        core::str::from_utf8(&self.comm[..len]).unwrap_or("?")
    }

    /// The resource limits.
    pub fn rlimits(&self) -> Rlimits {
        self.rlimits
            .as_deref()
            .copied()
            .unwrap_or_else(initial_rlimits)
    }

    /// `RLIMIT_AS` as the address space takes it (`None`: no limit).
    pub fn as_limit(&self) -> Option<usize> {
        let soft = self.rlimits()[RLIMIT_AS].0;
        (soft != RLIM_INFINITY).then(|| usize::try_from(soft).unwrap_or(usize::MAX))
    }

    /// Sets the resource limits (`ENOMEM` without memory for them).
    pub fn set_rlimits(&mut self, limits: Rlimits) -> Result<(), Errno> {
        self.rlimits = Some(new_arc(limits)?);
        Ok(())
    }

    /// Sets the arguments shown by `/proc/PID/cmdline` (none without memory for them).
    pub fn set_cmdline(&mut self, cmdline: Vec<u8>) {
        self.cmdline = new_arc(cmdline).ok();
    }

    /// Sets the command name to the first [`COMM_LEN`] - 1 bytes of `name`.
    pub fn set_comm(&mut self, name: &[u8]) {
        self.comm = [0; COMM_LEN];
        let n = name.len().min(COMM_LEN - 1);
        self.comm[..n].copy_from_slice(&name[..n]);
    }
}

/// A process as its threads share it: one per `fork`, joined by `clone(CLONE_THREAD)`.
pub struct ThreadGroup {
    /// Signals sent to the process (any thread that does not block one takes it).
    pub pending: AtomicU64,
    /// Threads that have not exited yet; the one that brings it to 0 ends the process.
    live: AtomicUsize,
    /// The process has ended: its last thread gave back its memory and files and is
    /// about to tell the parent, which may reap it from now on (the thread may still be
    /// leaving its hart: the scheduler holds it until it has).
    ended: AtomicBool,
    /// Everything else.
    inner: Mutex<Inner>,
    /// Nanoseconds its threads have run on a hart (user and kernel time together: the
    /// scheduler does not tell them apart).
    pub cpu_ns: AtomicU64,
    /// The same for its reaped children and their reaped descendants.
    pub children_cpu_ns: AtomicU64,
    /// When it was created (`fork`), in nanoseconds since boot.
    pub start_ns: u64,
    /// Stopped by a job-control signal, until `SIGCONT` (its threads sleep at their
    /// next return to user mode).
    pub stopped: AtomicBool,
    /// A stop or continuation its parent has not been told of by a wait: 0, or the
    /// `wstatus` word ([`ExitStatus::Stopped`], [`ExitStatus::Continued`]).
    pub job_report: AtomicI32,
    /// `/proc/PID/oom_score_adj`: -1000 (never chosen by the out-of-memory killer) to
    /// 1000 (chosen first), added to its score in thousandths of memory; inherited by
    /// `fork`.
    pub oom_score_adj: AtomicI32,
}

impl ThreadGroup {
    fn new(inner: Inner) -> Result<Arc<ThreadGroup>, Errno> {
        new_arc(ThreadGroup {
            pending: AtomicU64::new(0),
            live: AtomicUsize::new(0),
            ended: AtomicBool::new(false),
            inner: Mutex::new(inner),
            cpu_ns: AtomicU64::new(0),
            children_cpu_ns: AtomicU64::new(0),
            start_ns: crate::timer::now_ns(),
            stopped: AtomicBool::new(false),
            job_report: AtomicI32::new(0),
            oom_score_adj: AtomicI32::new(0),
        })
    }

    /// Locks the shared state.
    pub fn lock(&self) -> spin::MutexGuard<'_, Inner> {
        self.inner.lock()
    }

    /// Threads that have not exited.
    pub fn live(&self) -> usize {
        self.live.load(Ordering::Acquire)
    }
}

/// An address space and the tasks that use it (Linux's `mm_struct` with `mm_users`):
/// the threads of a process, and a `vfork` child until it calls `execve` or exits.
pub struct Mm {
    /// The identity of its space (fixed: a new program gets a new `Mm`).
    id: SpaceId,
    /// A ticket lock: first come, first served. Reclaim (`kswapd0`) takes and releases
    /// it page after page while the space's own tasks fault; with a plain spin lock the
    /// releasing hart won the next round again and again and a faulting task on another
    /// hart waited for seconds.
    space: TicketMutex<Option<UserSpace>>,
    /// Tasks using it; the one that brings it to 0 frees the space.
    users: AtomicUsize,
    /// The out-of-memory killer chose a process using it, and its memory is not back yet
    /// ([`oom`]).
    pub oom_victim: AtomicBool,
}

/// Every live [`Mm`] by its space's identity, sorted: how a reverse-map walk (reclaim)
/// finds the spaces that map a frame. Weak: the registry keeps no space alive.
static SPACES: Mutex<Vec<(SpaceId, Weak<Mm>)>> = Mutex::new(Vec::new());

impl Mm {
    fn new(space: UserSpace) -> Result<Arc<Mm>, Errno> {
        let id = space.id();
        let mm = new_arc(Mm {
            id,
            space: TicketMutex::new(Some(space)),
            users: AtomicUsize::new(1),
            oom_victim: AtomicBool::new(false),
        })?;
        let mut spaces = SPACES.lock();
        spaces.try_reserve(1).map_err(|_| Errno::ENOMEM)?;
        let at = spaces.partition_point(|(i, _)| *i < id);
        spaces.insert(at, (id, Arc::downgrade(&mm)));
        Ok(mm)
    }

    /// The live `Mm` whose space is `id`, if any.
    pub fn by_space(id: SpaceId) -> Option<Arc<Mm>> {
        let spaces = SPACES.lock();
        let at = spaces.binary_search_by_key(&id, |(i, _)| *i).ok()?;
        spaces[at].1.upgrade()
    }

    /// The live `Mm` with the lowest space identity above `after` (the lowest of all from
    /// `None`): a walk over every address space that holds no lock between its steps
    /// (`swapoff`).
    pub fn next_after(after: Option<SpaceId>) -> Option<Arc<Mm>> {
        let spaces = SPACES.lock();
        let at = after.map_or(0, |a| spaces.partition_point(|(i, _)| *i <= a));
        spaces[at..].iter().find_map(|(_, w)| w.upgrade())
    }

    /// The identity of this `Mm`'s address space.
    pub fn space_id(&self) -> SpaceId {
        self.id
    }

    /// Locks the space (`None` once its last user exited).
    pub fn lock(&self) -> TicketMutexGuard<'_, Option<UserSpace>> {
        self.space.lock()
    }

    /// Locks the space if nobody holds or waits for its lock.
    pub fn try_lock(&self) -> Option<TicketMutexGuard<'_, Option<UserSpace>>> {
        self.space.try_lock()
    }

    /// Locks the space for the scheduler, which holds it for a few instructions to load
    /// or leave the table: by retrying [`try_lock`](Self::try_lock), without taking a
    /// ticket. With tickets, four harts switching the threads of one process all ended
    /// up waiting in the scheduler for ever (`thread_basic` on `-smp 4`: 1 boot of 2
    /// before huge pages, 3 of 3 with them; gdb: every hart in this lock, none holding
    /// it); retried, 6 boots of 6 pass. Why the ticket being served never came is not
    /// understood yet (docs/processes.md).
    fn lock_for_switch(&self) -> TicketMutexGuard<'_, Option<UserSpace>> {
        loop {
            if let Some(guard) = self.space.try_lock() {
                return guard;
            }
            core::hint::spin_loop();
        }
    }
}

impl Drop for Mm {
    fn drop(&mut self) {
        let mut spaces = SPACES.lock();
        if let Ok(at) = spaces.binary_search_by_key(&self.id, |(i, _)| *i) {
            spaces.remove(at);
        }
        shrink_list(&mut spaces);
    }
}

/// State of one thread that other threads do not touch.
#[derive(Default)]
pub struct ThreadState {
    /// `set_tid_address` / `CLONE_CHILD_CLEARTID`: written 0, and a futex wake-up sent
    /// there, when the thread exits.
    pub clear_child_tid: usize,
    /// `set_robust_list`: the head of the thread's list of robust futexes (0: none).
    pub robust_list: usize,
    /// The alternate stack and signal-delivery state.
    pub signals: signal::ThreadSignals,
    /// A `vfork` parent waiting for this task to call `execve` or exit.
    pub vfork_parent: Option<Arc<Process>>,
}

/// A task: one thread, scheduled on its own, with its own kernel stack (Linux's
/// `task_struct`). Its `pid` is the thread id; `tgid` is the process id (the pid of the
/// thread that started the process).
pub struct Process {
    /// Its thread id.
    pub pid: Pid,
    /// Its process id (thread-group id).
    pub tgid: Pid,
    /// Scheduling state (see [`sched`]).
    pub sched: Mutex<Sched>,
    /// Saved kernel registers while not running.
    pub context: UnsafeCell<Context>,
    /// Saved floating-point registers while not running.
    pub fp: UnsafeCell<FpState>,
    /// Its kernel stack (guard page below).
    pub kstack: KernelStack,
    /// The address space it runs in (replaced by `execve`).
    pub vm: Mutex<Arc<Mm>>,
    /// The process it is a thread of.
    pub group: Arc<ThreadGroup>,
    /// Its own state.
    pub thread: Mutex<ThreadState>,
    /// A kill is pending: acted on at the next return to user mode.
    pub killed: AtomicBool,
    /// Signals sent to this thread (bit `sig - 1`).
    pub pending: AtomicU64,
    /// Blocked signals.
    pub blocked: AtomicU64,
    /// The signal that killed it, or [`THREAD_EXIT`] (valid once `killed` is set).
    pub kill_signal: AtomicI32,
    /// A kernel thread (`kswapd0`): it never enters user mode, signals do not reach it,
    /// and the out-of-memory killer passes it by.
    pub kernel: bool,
}

/// A new shared object from the kernel heap, admitted only while free memory stays above
/// the kernel's reserve after it (the heap's own allocation cannot fail then).
pub(crate) fn new_arc<T>(value: T) -> Result<Arc<T>, Errno> {
    if !crate::memory::frames::user_may_take(core::mem::size_of::<T>() + 16) {
        return Err(Errno::ENOMEM);
    }
    Ok(Arc::new(value))
}

/// Entries a task list keeps room for when it shrinks ([`shrink_list`]).
pub(crate) const LIST_KEEP: usize = 16;

/// Gives back most of a list's buffer once the list is mostly empty (after a burst of
/// tasks, e.g. init's children after a fork bomb's orphans are reaped), so that a burst
/// does not keep kernel heap for good. Only if the heap has the smaller buffer at once:
/// nothing here fails or waits.
pub(crate) fn shrink_list<T>(v: &mut Vec<T>) {
    if v.capacity() <= LIST_KEEP || v.len() * 4 > v.capacity() {
        return;
    }
    let mut smaller = Vec::new();
    if smaller
        .try_reserve_exact((v.len() * 2).max(LIST_KEEP))
        .is_ok()
    {
        smaller.append(v);
        *v = smaller;
    }
}

/// `kill_signal` of a thread told to exit alone: its process is already exiting
/// (`exit_group`, a fatal signal in another thread) or is calling `execve`.
pub const THREAD_EXIT: i32 = -1;

// SAFETY: `context` and `fp` are only touched by the hart that runs or switches the
// process, under the hand-over protocol of `sched`; every other field is synchronised.
unsafe impl Sync for Process {}
// SAFETY: as above; the process moves between harts only through that protocol.
unsafe impl Send for Process {}

static PROCESSES: Mutex<BTreeMap<Pid, Arc<Process>>> = Mutex::new(BTreeMap::new());
static NEXT_PID: AtomicUsize = AtomicUsize::new(INIT_PID);

impl Process {
    /// A new task in `group` (a new process when `tgid` is `None`) running in `mm`,
    /// whose trap frame is `frame`, ready to enter user mode. The caller has counted it
    /// in `mm`'s users.
    fn new(
        mm: Arc<Mm>,
        group: Arc<ThreadGroup>,
        tgid: Option<Pid>,
        frame: TrapFrame,
        fp: FpState,
    ) -> Result<Arc<Process>, Errno> {
        let kstack = KernelStack::new().map_err(|_| Errno::ENOMEM)?;
        let frame_at = (kstack.top() - core::mem::size_of::<TrapFrame>()) as *mut TrapFrame;
        // SAFETY: the stack is mapped, ours alone, and large enough for a frame.
        unsafe { frame_at.write(frame) };
        let pid = NEXT_PID.fetch_add(1, Ordering::Relaxed);
        group.live.fetch_add(1, Ordering::AcqRel);
        let p = Arc::new(Process {
            pid,
            tgid: tgid.unwrap_or(pid),
            sched: Mutex::new(Sched::new()),
            context: UnsafeCell::new(Context::default()),
            fp: UnsafeCell::new(fp),
            kstack,
            vm: Mutex::new(mm),
            group,
            thread: Mutex::new(ThreadState::default()),
            killed: AtomicBool::new(false),
            pending: AtomicU64::new(0),
            blocked: AtomicU64::new(0),
            kill_signal: AtomicI32::new(0),
            kernel: false,
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

    /// The address space it runs in.
    pub fn mm(&self) -> Arc<Mm> {
        self.vm.lock().clone()
    }

    /// Whether it started its process (its pid is the process id).
    pub fn is_leader(&self) -> bool {
        self.pid == self.tgid
    }

    /// Makes this process's address space the one the hart translates with.
    fn activate_on_this_hart(&self) {
        let mm = self.vm.lock();
        match &*mm.lock_for_switch() {
            Some(vm) => uspace::activate(vm.mmu(), crate::smp::hart_id()),
            None => uspace::activate_kernel(),
        }
    }

    /// Switches the hart to the kernel's table and takes it out of the harts running
    /// this task's address space (the scheduler, once the task left the hart).
    fn deactivate_on_this_hart(&self) {
        uspace::activate_kernel();
        let mm = self.vm.lock();
        if let Some(vm) = &*mm.lock_for_switch() {
            uspace::left(vm.mmu(), crate::smp::hart_id());
        }
    }

    /// Calls `f` with the program name (for log lines; allocates nothing).
    pub fn with_name<R>(&self, f: impl FnOnce(&str) -> R) -> R {
        let inner = self.group.lock();
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

/// `threads-max`: the most tasks the system holds.
pub fn max_tasks() -> usize {
    MAX_TASKS.load(Ordering::Relaxed)
}

/// Number of tasks (threads, live and zombie).
pub fn count() -> usize {
    PROCESSES.lock().len()
}

/// Looks up a live or zombie task by thread id.
pub fn find(pid: Pid) -> Option<Arc<Process>> {
    PROCESSES.lock().get(&pid).cloned()
}

/// Calls `f` for every task of the process `tgid` (allocates nothing). `f` runs under
/// the task table's lock: it may take a task's locks, never the other way round.
pub fn for_each_thread(tgid: Pid, mut f: impl FnMut(&Arc<Process>)) {
    for p in PROCESSES.lock().values().filter(|p| p.tgid == tgid) {
        f(p);
    }
}

/// Creates the first process from `path` with `argv`/`envp`, descriptors 0-2 on the
/// console, and puts it on the run queue.
pub fn spawn_init(path: &str, argv: &[String], envp: &[String]) -> Result<(), Errno> {
    let mm = Mm::new(uspace::new_space().map_err(|_| Errno::ENOMEM)?)?;
    let group = ThreadGroup::new(Inner {
        parent: 0,
        pgid: INIT_PID,
        sid: INIT_PID,
        execed: false,
        children: Vec::new(),
        exit: None,
        fds: FdTable::with_console()?,
        exe: String::new(),
        cwd: String::from("/"),
        umask: DEFAULT_UMASK,
        signals: Box::default(),
        trampoline: 0,
        alarm: signal::Alarm::default(),
        cmdline: None,
        comm: [0; COMM_LEN],
        rlimits: None,
    })?;
    let p = Process::new(mm, group, None, TrapFrame::default(), FpState::default())?;
    let frame = exec::exec_into(&p, path, argv, envp)?;
    // SAFETY: the process has not run yet; its frame slot is ours to fill.
    unsafe { p.frame().write(frame) };
    sched::enqueue(p);
    Ok(())
}

/// Starts a kernel thread named `name` running `entry` (which never returns) and puts it
/// on the run queue. It has an empty address space of its own, no parent and no files;
/// `ps` lists it as `[name]`, as Linux lists its kernel threads.
pub fn spawn_kernel_thread(name: &str, entry: extern "C" fn() -> !) -> Result<(), Errno> {
    let mm = Mm::new(uspace::new_space().map_err(|_| Errno::ENOMEM)?)?;
    let mut comm = [0; COMM_LEN];
    for (d, s) in comm.iter_mut().zip(name.bytes().take(COMM_LEN - 1)) {
        *d = s;
    }
    let group = ThreadGroup::new(Inner {
        parent: 0,
        pgid: 0,
        sid: 0,
        execed: false,
        children: Vec::new(),
        exit: None,
        fds: FdTable::default(),
        exe: String::new(),
        cwd: String::from("/"),
        signals: Box::default(),
        trampoline: 0,
        alarm: signal::Alarm::default(),
        cmdline: None,
        comm,
        rlimits: None,
        umask: DEFAULT_UMASK,
    })?;
    let kstack = KernelStack::new().map_err(|_| Errno::ENOMEM)?;
    let top = kstack.top();
    let pid = NEXT_PID.fetch_add(1, Ordering::Relaxed);
    group.live.fetch_add(1, Ordering::AcqRel);
    let p = new_arc(Process {
        pid,
        tgid: pid,
        sched: Mutex::new(Sched::new()),
        context: UnsafeCell::new(Context::new_kernel_task(entry, top)),
        fp: UnsafeCell::new(FpState::default()),
        kstack,
        vm: Mutex::new(mm),
        group,
        thread: Mutex::new(ThreadState::default()),
        killed: AtomicBool::new(false),
        pending: AtomicU64::new(0),
        blocked: AtomicU64::new(0),
        kill_signal: AtomicI32::new(0),
        kernel: true,
    })?;
    PROCESSES.lock().insert(p.pid, p.clone());
    sched::enqueue(p);
    Ok(())
}

/// What `clone` shares and sets up (decoded from its flags by the system call).
#[derive(Clone, Copy, Debug, Default)]
pub struct CloneArgs {
    /// `CLONE_VM`: run in the caller's address space rather than a copy-on-write copy.
    pub share_vm: bool,
    /// `CLONE_THREAD` (with `CLONE_SIGHAND`, `CLONE_FILES`, `CLONE_FS`): a thread of the
    /// caller's process.
    pub thread: bool,
    /// `CLONE_VFORK`: the caller sleeps until the child calls `execve` or exits.
    pub vfork: bool,
    /// `CLONE_PARENT`: the child's parent is the caller's parent.
    pub same_parent: bool,
    /// `CLONE_CHILD_SETTID`: the child's tid is written here in the child's memory.
    pub set_tid: Option<usize>,
    /// `CLONE_PARENT_SETTID`: the child's tid is written here in the caller's memory,
    /// before the child can run (a thread that exits at once clears it through
    /// `CLONE_CHILD_CLEARTID`, and `pthread_join` waits for that 0).
    pub parent_tid: Option<usize>,
    /// `CLONE_CHILD_CLEARTID`: the child's `clear_child_tid`.
    pub clear_tid: usize,
    /// `CLONE_SETTLS`: the child's thread pointer.
    pub tls: Option<usize>,
    /// The child's stack pointer (0: the caller's).
    pub stack: usize,
}

/// `clone`: a new task resuming from `parent_frame` with 0 in `a0`: a new process (a
/// copy-on-write copy of the caller, or sharing its space with `share_vm`) or a thread
/// of the caller's process. Returns the new task's id.
pub fn clone(parent_frame: &TrapFrame, args: CloneArgs) -> Result<Pid, Errno> {
    let parent = current();
    // Linux's threads-max: no task beyond it, whatever the memory (EAGAIN).
    if count() >= MAX_TASKS.load(Ordering::Relaxed) {
        return Err(Errno::EAGAIN);
    }
    if !crate::memory::frames::user_may_take(core::mem::size_of::<Process>()) {
        return Err(Errno::ENOMEM);
    }
    let mm = if args.share_vm {
        let mm = parent.mm();
        mm.users.fetch_add(1, Ordering::AcqRel);
        mm
    } else {
        let vm = parent.mm();
        let mut space = vm.lock();
        let space = space.as_mut().ok_or(Errno::ESRCH)?;
        // The copy of the area map and the child's signal state come from the kernel
        // heap, infallibly: taken only while free memory stays above the reserve after.
        let bytes = space.area_map_bytes() + core::mem::size_of::<signal::SignalActions>();
        if !crate::memory::frames::user_may_take(bytes) {
            return Err(Errno::ENOMEM);
        }
        let mmu = uspace::new_mmu().map_err(|_| Errno::ENOMEM)?;
        Mm::new(space.fork(mmu).map_err(Errno::from_vm)?)?
    };
    let made = make_task(&parent, parent_frame, mm.clone(), &args);
    let child = match made {
        Ok(child) => child,
        Err(e) => {
            release_mm(&mm);
            return Err(e);
        }
    };
    let pid = child.pid;
    if let Some(addr) = args.set_tid
        && let Some(vm) = mm.lock().as_mut()
    {
        // Like Linux, a bad address only means the write does not happen.
        let _ = uspace::write_bytes(vm, addr, &(pid as u32).to_le_bytes());
    }
    if let Some(addr) = args.parent_tid {
        // Like Linux, a bad address only means the write does not happen.
        let _ = crate::syscall::uaccess::copy_to_user(addr, &(pid as u32).to_le_bytes());
    }
    if args.vfork {
        child.thread.lock().vfork_parent = Some(parent.clone());
    }
    sched::enqueue(child.clone());
    if args.vfork {
        // Until the child lets go of the shared space (execve or exit); a kill ends the
        // wait (the child runs on).
        while child.thread.lock().vfork_parent.is_some() && !parent.killed.load(Ordering::Acquire) {
            sched::sleep();
        }
    }
    Ok(pid)
}

/// The task of [`clone`], once its address space is chosen.
fn make_task(
    parent: &Arc<Process>,
    parent_frame: &TrapFrame,
    mm: Arc<Mm>,
    args: &CloneArgs,
) -> Result<Arc<Process>, Errno> {
    let mut frame = *parent_frame;
    // The parent's sepc is already past the ecall; the child resumes there with 0.
    frame.regs[reg::A0] = 0;
    if args.stack != 0 {
        frame.regs[reg::SP] = args.stack;
    }
    if let Some(tls) = args.tls {
        frame.regs[reg::TP] = tls;
    }
    // The child starts with the parent's floating-point registers, live on this hart.
    let mut fp = FpState::default();
    crate::arch::trap::save_fp(&mut fp);
    let child = if args.thread {
        let group = parent.group.clone();
        if group.lock().exit.is_some() {
            return Err(Errno::EAGAIN); // The process is exiting.
        }
        Process::new(mm, group, Some(parent.tgid), frame, fp)?
    } else {
        let inner = {
            let pi = parent.group.lock();
            let parent_pid = if args.same_parent {
                pi.parent
            } else {
                parent.tgid
            };
            Inner {
                parent: parent_pid,
                pgid: pi.pgid,
                sid: pi.sid,
                execed: false,
                children: Vec::new(),
                exit: None,
                fds: pi.fds.try_clone()?,
                exe: pi.exe.clone(),
                cwd: pi.cwd.clone(),
                umask: pi.umask,
                signals: Box::new((*pi.signals).for_child()),
                trampoline: pi.trampoline,
                // Timers are not inherited by fork.
                alarm: signal::Alarm::default(),
                cmdline: pi.cmdline.clone(),
                comm: pi.comm,
                rlimits: pi.rlimits.clone(),
            }
        };
        let listed_by = if args.same_parent {
            find(inner.parent).ok_or(Errno::EINVAL)?
        } else {
            parent.clone()
        };
        // Room in the parent's list first: a child that cannot be listed must not exist.
        listed_by
            .group
            .lock()
            .children
            .try_reserve(1)
            .map_err(|_| Errno::ENOMEM)?;
        let group = ThreadGroup::new(inner)?;
        group.oom_score_adj.store(
            parent.group.oom_score_adj.load(Ordering::Relaxed),
            Ordering::Relaxed,
        );
        let child = Process::new(mm, group, None, frame, fp)?;
        listed_by.group.lock().children.push(child.clone());
        child
    };
    child
        .blocked
        .store(parent.blocked.load(Ordering::Acquire), Ordering::Release);
    {
        let mut t = child.thread.lock();
        t.clear_child_tid = args.clear_tid;
        t.signals = parent.thread.lock().signals.for_child(args.share_vm);
    }
    Ok(child)
}

/// Drops a task's use of `mm`; the last user frees the space (on the kernel's page
/// table: the caller switched to it) and tells the out-of-memory killer.
pub(super) fn release_mm(mm: &Mm) {
    if mm.users.fetch_sub(1, Ordering::AcqRel) != 1 {
        return;
    }
    let space = mm.lock().take();
    drop(space);
    oom::victim_released(mm);
}

/// Ends the current process with `status` (`exit_group`, a fatal signal): every other
/// thread is told to exit, then this one exits. Never returns.
pub fn exit(status: ExitStatus) -> ! {
    let me = current();
    {
        let mut inner = me.group.lock();
        if inner.exit.is_none() {
            inner.exit = Some(status);
        }
    }
    let mine = me.pid;
    let tgid = me.tgid;
    drop(me);
    for_each_thread(tgid, |t| {
        if t.pid != mine {
            tell_to_exit(t, THREAD_EXIT);
        }
    });
    exit_thread(status)
}

/// `execve`'s first step past its point of no return: every other thread of `me`'s
/// process exits; `EINTR` if `me` itself is killed meanwhile.
fn kill_other_threads(me: &Arc<Process>) -> Result<(), Errno> {
    if me.group.live() == 1 {
        return Ok(());
    }
    for_each_thread(me.tgid, |t| {
        if t.pid != me.pid {
            tell_to_exit(t, THREAD_EXIT);
        }
    });
    while me.group.live() > 1 {
        if me.killed.load(Ordering::Acquire) {
            return Err(Errno::EINTR);
        }
        sched::preempt();
    }
    Ok(())
}

/// Marks `t` killed with `sig` (or [`THREAD_EXIT`]) and wakes it: it exits at its next
/// return to user mode, and any interruptible sleep it is in ends.
pub fn tell_to_exit(t: &Arc<Process>, sig: i32) {
    let _ = t
        .kill_signal
        .compare_exchange(0, sig, Ordering::AcqRel, Ordering::Acquire);
    t.killed.store(true, Ordering::Release);
    // Pending and unblockable: the return to user mode acts on it, and every
    // interruptible sleep ends.
    t.pending
        .fetch_or(signal::bit(signal::SIGKILL), Ordering::AcqRel);
    sched::wake(t);
}

/// Ends the current thread (`exit`); the last thread of a process ends the process with
/// `status` (unless it already has one). Never returns.
pub fn exit_thread(status: ExitStatus) -> ! {
    let me = current();
    let (tid_addr, robust_list, vfork_parent) = {
        let mut t = me.thread.lock();
        (t.clear_child_tid, t.robust_list, t.vfork_parent.take())
    };
    if robust_list != 0 {
        futex::exit_robust_list(&me, robust_list);
    }
    if tid_addr != 0 {
        // CLONE_CHILD_CLEARTID: a failure only means the address is gone. The wake-up
        // is what `pthread_join` waits for.
        if crate::syscall::uaccess::copy_to_user(tid_addr, &0u32.to_le_bytes()).is_ok() {
            let _ = futex::wake_address(&me, tid_addr, 1);
        }
    }
    let last = me.group.live.fetch_sub(1, Ordering::AcqRel) == 1;
    if last {
        exit_process(&me, status);
    }
    // Let go of the address space: unmap a large one in pieces (yielding between them),
    // then switch to the kernel's own page table, after the last yield (a yield
    // switches back to this space's table when the task runs again), and free it if
    // no other task uses it.
    let mm = me.mm();
    if mm.users.load(Ordering::Acquire) == 1 {
        unmap_in_pieces(&mm);
    }
    me.deactivate_on_this_hart();
    release_mm(&mm);
    drop(mm);
    if let Some(p) = vfork_parent {
        sched::wake(&p);
    }
    if last {
        me.group.ended.store(true, Ordering::Release);
        notify_parent(&me);
    }
    drop(me);
    sched::exit_current()
}

/// The process-wide part of the exit of its last thread: the status, the files, the
/// children (to init).
fn exit_process(me: &Arc<Process>, status: ExitStatus) {
    let orphans = {
        let mut inner = me.group.lock();
        if inner.exit.is_none() {
            inner.exit = Some(status);
        }
        inner.fds = FdTable::default();
        core::mem::take(&mut inner.children)
    };
    if !orphans.is_empty()
        && let Some(init) = find(INIT_PID)
    {
        for c in &orphans {
            c.group.lock().parent = INIT_PID;
        }
        // Room first, without failing: memory may be short exactly when processes die
        // (the out-of-memory killer's victims); the exit path waits for it instead.
        let mut orphans = orphans;
        loop {
            let mut inner = init.group.lock();
            if inner.children.try_reserve(orphans.len()).is_ok() {
                inner.children.append(&mut orphans);
                break;
            }
            drop(inner);
            sched::preempt();
        }
        // Always: an orphan may have become a zombie after it was looked at and woken
        // its old parent instead; init's wait loop re-checks.
        sched::wake(&init);
    } else {
        // Nothing below returns: every local that owns memory must go by hand (the
        // list's buffer stays allocated even when it is empty).
        drop(orphans);
    }
    if me.tgid == INIT_PID {
        let status = me.group.lock().exit.unwrap_or(status);
        crate::println!("pagoda: init exited ({status:?}); powering off");
        crate::drivers::finisher::power_off(crate::EXIT_INIT_DIED);
    }
}

/// Tells the parent of the current process that it ended (`SIGCHLD`, and a wake-up
/// for `wait4`).
fn notify_parent(me: &Process) {
    let parent = me.group.lock().parent;
    if let Some(p) = find(parent) {
        sched::wake(&p);
        signal::send(&p, signal::SIGCHLD, me.tgid as u32, CLD_EXITED);
    }
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
fn unmap_in_pieces(mm: &Mm) {
    let mut slice_start = crate::timer::now_ns();
    loop {
        {
            let mut vm = mm.lock();
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

/// A stop or continuation of one of `children` that `who` selects and `events` asks for:
/// its pid and status, the report taken unless `!reap` (`WNOWAIT`).
fn job_change(
    children: &[Arc<Process>],
    who: WaitFor,
    events: WaitEvents,
    reap: bool,
) -> Option<(Pid, ExitStatus)> {
    const CONTINUED: i32 = 0xffff;
    for c in children.iter().filter(|c| who.selects(c)) {
        let report = c.group.job_report.load(Ordering::Acquire);
        let wanted = match report {
            0 => false,
            CONTINUED => events.continued,
            _ => events.stopped,
        };
        if !wanted || (reap && c.group.job_report.swap(0, Ordering::AcqRel) != report) {
            continue;
        }
        let status = if report == CONTINUED {
            ExitStatus::Continued
        } else {
            ExitStatus::Stopped((report >> 8) & 0xff)
        };
        return Some((c.pid, status));
    }
    None
}

/// Whether child `c` (a thread-group leader) can be reaped: every thread of its process
/// has exited, and its own registers are saved.
fn reapable(c: &Process) -> bool {
    let s = c.sched.lock();
    s.state == State::Zombie && !s.on_cpu && c.group.live() == 0
}

/// Which children a wait is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitFor {
    /// Any child.
    Any,
    /// The child with this pid.
    Pid(Pid),
    /// Any child in this process group.
    Group(Pid),
}

impl WaitFor {
    /// Whether child `c` (a thread-group leader) is one this wait is for.
    fn selects(self, c: &Process) -> bool {
        match self {
            WaitFor::Any => true,
            WaitFor::Pid(pid) => c.pid == pid,
            WaitFor::Group(pgid) => c.group.lock().pgid == pgid,
        }
    }
}

/// `wait4`/`waitid`: waits for a child that `who` selects to exit and reaps it (unless
/// `reap` is false: `WNOWAIT`). Returns (pid, status), or `Ok(None)` with `nohang` when
/// none has exited; `ECHILD` when no child matches.
pub fn wait(
    who: WaitFor,
    events: WaitEvents,
    nohang: bool,
    reap: bool,
) -> Result<Option<(Pid, ExitStatus)>, Errno> {
    let me = current();
    loop {
        {
            let mut inner = me.group.lock();
            let matches = |c: &Arc<Process>| who.selects(c);
            if !inner.children.iter().any(matches) {
                return Err(Errno::ECHILD);
            }
            if let Some(found) = job_change(&inner.children, who, events, reap) {
                return Ok(Some(found));
            }
            let zombie = inner
                .children
                .iter()
                .position(|c| events.exited && matches(c) && reapable(c));
            if let Some(i) = zombie {
                let child = if reap {
                    let c = inner.children.swap_remove(i);
                    shrink_list(&mut inner.children);
                    c
                } else {
                    inner.children[i].clone()
                };
                drop(inner);
                let status = child.group.lock().exit.unwrap_or(ExitStatus::Exited(0));
                if reap {
                    let spent = child.group.cpu_ns.load(Ordering::Relaxed)
                        + child.group.children_cpu_ns.load(Ordering::Relaxed);
                    me.group.children_cpu_ns.fetch_add(spent, Ordering::Relaxed);
                    // Not under the group lock: `for_each_process` takes them the other
                    // way round.
                    PROCESSES.lock().remove(&child.pid);
                }
                return Ok(Some((child.pid, status)));
            }
        }
        // A child that has ended but is still leaving its hart counts as ready: its
        // SIGCHLD may already be here, and must not hide it (Linux reaps it first).
        let leaving = {
            let inner = me.group.lock();
            inner
                .children
                .iter()
                .any(|c| c.group.ended.load(Ordering::Acquire) && who.selects(c))
        };
        if leaving {
            sched::yield_now();
            continue;
        }
        if nohang {
            return Ok(None);
        }
        if me.interrupted() {
            return Err(Errno::EINTR);
        }
        sched::sleep();
    }
}

/// `setpgid(pid, pgid)` (0s: the caller, its own pid): moves the process `pid` (the
/// caller or a child of it in its session that has not called `execve`) into group
/// `pgid` of the caller's session, or a new group named after it.
pub fn set_pgid(pid: Pid, pgid: Pid) -> Result<(), Errno> {
    let me = current();
    let pid = if pid == 0 { me.tgid } else { pid };
    let pgid = if pgid == 0 { pid } else { pgid };
    let target = find(pid).filter(|p| p.is_leader()).ok_or(Errno::ESRCH)?;
    let (my_sid, is_child) = {
        let inner = me.group.lock();
        let is_child = inner.children.iter().any(|c| c.pid == pid);
        (inner.sid, is_child)
    };
    if pid != me.tgid && !is_child {
        return Err(Errno::ESRCH);
    }
    if pgid != pid {
        // Joining a group: it must exist in the caller's session.
        let mut found = false;
        for_each_process(|p| {
            let inner = p.group.lock();
            found |= inner.pgid == pgid && inner.sid == my_sid;
        });
        if !found {
            return Err(Errno::EPERM);
        }
    }
    let mut t = target.group.lock();
    if t.sid != my_sid || t.sid == pid {
        // Another session, or a session leader.
        return Err(Errno::EPERM);
    }
    if pid != me.tgid && t.execed {
        return Err(Errno::EACCES);
    }
    t.pgid = pgid;
    Ok(())
}

/// `setsid`: the caller leads a new session and process group named after it; `EPERM`
/// if it already leads a process group.
pub fn set_sid() -> Result<Pid, Errno> {
    let me = current();
    let pid = me.tgid;
    let mut leads = false;
    for_each_process(|p| leads |= p.group.lock().pgid == pid);
    if leads {
        return Err(Errno::EPERM);
    }
    let mut inner = me.group.lock();
    inner.pgid = pid;
    inner.sid = pid;
    Ok(pid)
}

/// The first process (thread-group leader, live or zombie) whose pid is `from` or
/// more (listing `/proc`).
pub fn next_process(from: Pid) -> Option<Pid> {
    PROCESSES
        .lock()
        .range(from..)
        .find(|(_, p)| p.is_leader())
        .map(|(&pid, _)| pid)
}

/// The state letter of process `p` for `/proc` (`R` running or runnable, `S` sleeping,
/// `T` stopped, `Z` zombie): `R` if any of its threads is, `Z` once it has ended.
pub fn state_letter(p: &Process) -> char {
    if p.group.lock().exit.is_some() && p.group.live() == 0 {
        return 'Z';
    }
    if p.group.stopped.load(Ordering::Acquire) {
        return 'T';
    }
    let mut letter = 'S';
    for_each_thread(p.tgid, |t| {
        if t.sched.lock().state == State::Runnable {
            letter = 'R';
        }
    });
    letter
}

/// Threads running or waiting for a hart now (`procs_running`, the load average).
pub fn runnable() -> usize {
    PROCESSES
        .lock()
        .values()
        .filter(|t| t.sched.lock().state == State::Runnable)
        .count()
}

/// Tasks created since boot (`processes` of `/proc/stat`: forks and threads).
pub fn created() -> usize {
    NEXT_PID.load(Ordering::Relaxed) - INIT_PID
}

/// The most recently created task's id (`/proc/loadavg`).
pub fn last_pid() -> Pid {
    NEXT_PID.load(Ordering::Relaxed) - 1
}

/// Calls `f` for every process (its thread-group leader, live or zombie).
pub fn for_each_process(mut f: impl FnMut(&Arc<Process>)) {
    for p in PROCESSES.lock().values().filter(|p| p.is_leader()) {
        f(p);
    }
}

/// Called by the scheduler once an exited task's registers are saved: a thread other
/// than the leader is forgotten at once (nobody waits for it); for a leader, the
/// parent is woken (it may be waiting to reap it).
fn retire(p: &Process) {
    if !p.is_leader() {
        PROCESSES.lock().remove(&p.pid);
    }
    let parent = p.group.lock().parent;
    if let Some(parent) = find(parent) {
        sched::wake(&parent);
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
