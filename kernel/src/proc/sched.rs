//! Scheduling: a run queue shared by all harts, one scheduler loop per hart, preemptive
//! round robin on the timer.
//!
//! ## The hand-over protocol
//!
//! A task never puts itself on the run queue. It records its next state (`Runnable`,
//! `Sleeping`, `Zombie`) and switches to its hart's scheduler context; the scheduler,
//! once the switch has saved the task's registers, clears `on_cpu` and enqueues the task
//! if it is runnable. A waker sets a sleeping task runnable and enqueues it only if it is
//! no longer `on_cpu`; otherwise the scheduler will. So no hart can resume a task whose
//! registers are still being saved by another. A wake-up that arrives while the task is
//! still deciding to sleep is kept in `wakeup_pending`, so it is never lost.

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicU64, Ordering};

use pagoda_mm::layout::MAX_HARTS;
use pagoda_mm::tlb::AtomicHartMask;
use spin::Mutex;

use super::Process;
use crate::arch::trap::{Context, load_fp, save_fp, switch};

/// A task's scheduling state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Waiting on the run queue, or running.
    Runnable,
    /// Blocked until woken.
    Sleeping,
    /// Exited; waits for its parent to reap it.
    Zombie,
}

/// Scheduling fields of a task, under its own lock.
#[derive(Debug)]
pub struct Sched {
    /// The state.
    pub state: State,
    /// Its registers are live on some hart (not yet saved).
    pub on_cpu: bool,
    /// A wake-up arrived while it was running.
    pub wakeup_pending: bool,
}

impl Sched {
    /// A new task: runnable, not yet on a hart.
    pub const fn new() -> Sched {
        Sched {
            state: State::Runnable,
            on_cpu: false,
            wakeup_pending: false,
        }
    }
}

static RUN_QUEUE: Mutex<VecDeque<Arc<Process>>> = Mutex::new(VecDeque::new());

/// Run-queue slots an idle hart leaves allocated (more were a burst of tasks).
const IDLE_QUEUE_KEEP: usize = 64;

/// Per-hart scheduler state, touched only by its own hart.
struct Cpu {
    scheduler: UnsafeCell<Context>,
    current: UnsafeCell<Option<Arc<Process>>>,
}

// SAFETY: each `Cpu` is used only by the hart whose id indexes it (see `cpu()`), and the
// kernel does not reschedule inside interrupt handlers that run in kernel mode.
unsafe impl Sync for Cpu {}

static CPUS: [Cpu; MAX_HARTS] = [const {
    Cpu {
        scheduler: UnsafeCell::new(Context {
            ra: 0,
            sp: 0,
            s: [0; 12],
        }),
        current: UnsafeCell::new(None),
    }
}; MAX_HARTS];

fn cpu() -> &'static Cpu {
    &CPUS[crate::smp::hart_id()]
}

/// The task running on this hart.
pub fn current() -> Option<Arc<Process>> {
    // SAFETY: only this hart touches its `current` (see `Cpu`).
    unsafe { (*cpu().current.get()).clone() }
}

/// Calls `f` with the task running on this hart, without taking a reference (the fast
/// path of `getpid` and of every return to user mode).
#[inline]
pub fn with_current<R>(f: impl FnOnce(Option<&Process>) -> R) -> R {
    // SAFETY: `tp` points at this hart's HartLocal.
    let ptr = unsafe { (*crate::arch::trap::hart_local()).current } as *const Process;
    // SAFETY: `run` stores the pointer of the `Arc` it keeps in this hart's `current`
    // while the task runs and clears it before dropping that `Arc`; `f` runs on this hart
    // within that window (a task never switches out from inside `f`).
    f(unsafe { ptr.as_ref() })
}

/// Records `p` as the task running on this hart (for [`with_current`]).
fn set_current_ptr(p: Option<&Arc<Process>>) {
    let ptr = p.map_or(0, |p| Arc::as_ptr(p) as usize);
    // SAFETY: this hart's own HartLocal; only this hart reads the field.
    unsafe { (*crate::arch::trap::hart_local()).current = ptr };
}

/// Tasks sleeping until a time: (deadline in ns since boot, task).
static SLEEPERS: Mutex<Vec<(u64, Arc<Process>)>> = Mutex::new(Vec::new());

/// Gives the run queue and the sleeper list, at boot, the room they keep for good
/// (they shrink back to it after a burst): allocated later, at the first burst, that
/// room would be memory missing from a `MemFree` baseline taken before it (and with
/// slabs of up to 16 pages, one small buffer can be a whole slab).
pub fn init() {
    RUN_QUEUE.lock().reserve_exact(IDLE_QUEUE_KEEP);
    SLEEPERS.lock().reserve_exact(super::LIST_KEEP);
}

/// Sleeps until `deadline_ns` (time since boot) or until woken earlier (a signal);
/// returns whether the deadline passed.
pub fn sleep_until(me: &Arc<Process>, deadline_ns: u64) -> bool {
    loop {
        if crate::timer::now_ns() >= deadline_ns {
            return true;
        }
        if me.interrupted() {
            return false;
        }
        sleep_once(me, Some(deadline_ns));
    }
}

/// Sleeps once: until any wake-up, or until `deadline_ns` (time since boot) passes if
/// there is one. Callers re-check their condition afterwards.
pub fn sleep_once(me: &Arc<Process>, deadline_ns: Option<u64>) {
    let Some(deadline) = deadline_ns else {
        sleep();
        return;
    };
    if crate::timer::now_ns() >= deadline {
        return;
    }
    {
        let mut sleepers = SLEEPERS.lock();
        if sleepers.try_reserve(1).is_err() {
            drop(sleepers);
            yield_now();
            return;
        }
        sleepers.push((deadline, me.clone()));
    }
    sleep();
    // Woken by the timer (the entry is gone) or early: the entry must not outlive the
    // wait (it holds the task, and its kernel stack, alive).
    let mut sleepers = SLEEPERS.lock();
    sleepers.retain(|(_, p)| !Arc::ptr_eq(p, me));
    super::shrink_list(&mut sleepers);
}

/// Nanoseconds each hart has spent running tasks (the rest of its time since boot it
/// was idle): `/proc/stat`, `/proc/uptime`.
static BUSY_NS: [AtomicU64; MAX_HARTS] = [const { AtomicU64::new(0) }; MAX_HARTS];

/// Nanoseconds hart `hart` has spent running tasks.
pub fn busy_ns(hart: usize) -> u64 {
    BUSY_NS.get(hart).map_or(0, |b| b.load(Ordering::Relaxed))
}

/// How often the load average takes a sample (Linux's `LOAD_FREQ`: 5 s).
const LOAD_FREQ_NS: u64 = 5_000_000_000;
/// Fixed-point one of the load average (Linux's `FIXED_1`, 11 bits of fraction).
pub const LOAD_FIXED_1: u64 = 1 << 11;
/// Decay per sample for the 1-, 5- and 15-minute averages: `FIXED_1 / exp(5 s / period)`
/// (Linux's `EXP_1`, `EXP_5`, `EXP_15`).
const LOAD_EXP: [u64; 3] = [1884, 2014, 2037];
/// The load averages (fixed point, [`LOAD_FIXED_1`] is 1.0) and when the next sample is
/// due.
static LOAD: [AtomicU64; 3] = [const { AtomicU64::new(0) }; 3];
static LOAD_NEXT_NS: AtomicU64 = AtomicU64::new(LOAD_FREQ_NS);

/// Takes a load-average sample if one is due: the runnable threads, folded into the
/// three averages as Linux's `calc_load` does (one hart wins the sample).
fn sample_load(now: u64) {
    let due = LOAD_NEXT_NS.load(Ordering::Relaxed);
    if now < due
        || LOAD_NEXT_NS
            .compare_exchange(
                due,
                due + LOAD_FREQ_NS,
                Ordering::Relaxed,
                Ordering::Relaxed,
            )
            .is_err()
    {
        return;
    }
    let active = super::runnable() as u64 * LOAD_FIXED_1;
    for (avg, exp) in LOAD.iter().zip(LOAD_EXP) {
        let old = avg.load(Ordering::Relaxed);
        let mut new = old * exp + active * (LOAD_FIXED_1 - exp);
        if active >= old {
            new += LOAD_FIXED_1 - 1;
        }
        avg.store(new / LOAD_FIXED_1, Ordering::Relaxed);
    }
}

/// The 1-, 5- and 15-minute load averages, fixed point ([`LOAD_FIXED_1`] is 1.0).
pub fn load_average() -> [u64; 3] {
    [0, 1, 2].map(|i| LOAD[i].load(Ordering::Relaxed))
}

/// Wakes every sleeper whose deadline has passed, fires the interval timers that are
/// due, takes what was typed on the console (so that `^C` reaches a program that does
/// not read) and samples the load average; called on timer ticks.
pub fn wake_sleepers() {
    crate::fs::tty::pull_input();
    sample_load(crate::timer::now_ns());
    let now = crate::timer::now_ns();
    super::signal::fire_alarms(now);
    let due: Vec<Arc<Process>> = {
        let mut sleepers = SLEEPERS.lock();
        if sleepers.iter().all(|(d, _)| *d > now) {
            return;
        }
        let mut due = Vec::new();
        sleepers.retain(|(d, p)| {
            if *d <= now && due.try_reserve(1).is_ok() {
                due.push(p.clone());
                false
            } else {
                true
            }
        });
        super::shrink_list(&mut sleepers);
        due
    };
    for p in &due {
        wake(p);
    }
}

/// Harts waiting for work in their idle loop (`wfi`).
static IDLE: AtomicHartMask = AtomicHartMask::new();

/// Puts a new or woken task on the run queue, and wakes an idle hart to run it (without
/// the wake-up it would wait for its next timer tick).
pub fn enqueue(p: Arc<Process>) {
    RUN_QUEUE.lock().push_back(p);
    let me = crate::smp::hart_id();
    if let Some(hart) = IDLE.snapshot().iter().find(|&h| h != me)
        && IDLE.remove(hart)
    {
        crate::arch::wake_hart(hart);
    }
}

/// Wakes every other idle hart for one pass of its idle loop, in which it gives back the
/// heap objects it caches (`/proc/meminfo`: memory freed on an idle hart by an interrupt
/// comes back soon after, not at that hart's next task).
pub fn poke_idle_harts() {
    let me = crate::smp::hart_id();
    for hart in IDLE.snapshot().iter().filter(|&h| h != me) {
        crate::arch::wake_hart(hart);
    }
}

/// Wakes `p` if it sleeps (or remembers the wake-up if it is about to).
pub fn wake(p: &Arc<Process>) {
    let mut s = p.sched.lock();
    match s.state {
        State::Sleeping => {
            s.state = State::Runnable;
            if !s.on_cpu {
                drop(s);
                enqueue(p.clone());
            }
        }
        State::Runnable => s.wakeup_pending = true,
        State::Zombie => {}
    }
}

/// Gives up the hart with `next` as the current task's state.
fn switch_out(next: State) {
    let cpu = cpu();
    // SAFETY: only this hart touches its `current`.
    let Some(me) = (unsafe { (*cpu.current.get()).clone() }) else {
        return;
    };
    {
        let mut s = me.sched.lock();
        if next == State::Sleeping && s.wakeup_pending {
            s.wakeup_pending = false;
            return;
        }
        s.state = next;
    }
    let ctx = me.context.get();
    let fp = me.fp.get();
    drop(me);
    // SAFETY: only the task itself touches its `fp`, here and below (module docs).
    save_fp(unsafe { &mut *fp });
    // SAFETY: the scheduler context was saved by `run` on this hart; this task's context
    // is saved before anyone can resume it (the hand-over protocol in the module docs).
    unsafe { switch(ctx, cpu.scheduler.get()) };
    // Resumed, possibly on another hart.
    // SAFETY: as above; the task's registers were saved before it was resumed.
    load_fp(unsafe { &*fp });
}

/// A preemption point for long work in the kernel (which runs with interrupts masked):
/// does what the timer interrupt would have done meanwhile (wakes the sleepers that are
/// due) and lets other tasks run.
pub fn preempt() {
    wake_sleepers();
    yield_now();
}

/// Lets other tasks run; the current one stays runnable.
pub fn yield_now() {
    switch_out(State::Runnable);
}

/// Sleeps until [`wake`]; callers re-check their condition afterwards.
pub fn sleep() {
    switch_out(State::Sleeping);
}

/// Leaves the hart for good (the task became a zombie).
pub fn exit_current() -> ! {
    switch_out(State::Zombie);
    unreachable!("a zombie was resumed");
}

/// The scheduler loop of this hart: runs tasks from the queue forever.
pub fn run() -> ! {
    let cpu = cpu();
    let hart = crate::smp::hart_id();
    let hart_stack_bottom = crate::smp::hart_stack(hart).map_or(0, |s| s.bottom());
    crate::arch::disable_interrupts();
    let mut was_busy = true;
    loop {
        let next = RUN_QUEUE.lock().pop_front();
        let Some(p) = next else {
            if was_busy {
                // Going idle: an empty run queue keeps no buffer from a burst of tasks.
                {
                    let mut queue = RUN_QUEUE.lock();
                    if queue.is_empty() && queue.capacity() > IDLE_QUEUE_KEEP {
                        *queue = VecDeque::new();
                    }
                }
                // Then give this hart's pooled table pages back, and let any hart take
                // the frames in its cache.
                crate::memory::frames::drain_local_tables();
                crate::memory::frames::park();
                was_busy = false;
            }
            // Give back the heap objects this hart caches and the slabs they keep, on
            // every pass and not only after running a task: interrupts taken while idle
            // (a sleeper woken, the last reference to an exited task dropped) free objects
            // here too, and a hart that idles on is never asked again; one cached object
            // can keep a slab of 16 pages out of MemFree (the flake of issue 13's
            // MemFree checks on two harts). Cheap when nothing is cached.
            crate::memory::heap::trim();
            // Idle: take pending interrupts (the timer, a wake-up), then look for due
            // sleepers. Listed as idle first, then the queue checked once more: a task
            // queued in between is seen here, or its waker sees this hart listed.
            IDLE.insert(hart);
            if RUN_QUEUE.lock().is_empty() {
                crate::arch::wait_for_interrupt();
            }
            IDLE.remove(hart);
            crate::arch::enable_interrupts();
            crate::arch::disable_interrupts();
            wake_sleepers();
            continue;
        };
        was_busy = true;
        p.sched.lock().on_cpu = true;
        p.activate_on_this_hart();
        crate::smp::set_stack_limit(p.kstack.bottom());
        let ctx = p.context.get();
        // SAFETY: only this hart touches its `current`.
        unsafe { *cpu.current.get() = Some(p.clone()) };
        set_current_ptr(Some(&p));
        let ran_from = crate::timer::now_ns();
        // SAFETY: `ctx` was saved by `switch_out` or built by `Process::new`, and no other
        // hart runs `p` (it was popped from the queue and is `on_cpu`).
        unsafe { switch(cpu.scheduler.get(), ctx) };
        let ran = crate::timer::now_ns().saturating_sub(ran_from);
        p.group.cpu_ns.fetch_add(ran, Ordering::Relaxed);
        if let Some(busy) = BUSY_NS.get(hart) {
            busy.fetch_add(ran, Ordering::Relaxed);
        }
        crate::smp::set_stack_limit(hart_stack_bottom);
        p.deactivate_on_this_hart();
        // SAFETY: as above.
        unsafe { *cpu.current.get() = None };
        set_current_ptr(None);
        let state = {
            let mut s = p.sched.lock();
            s.on_cpu = false;
            s.state
        };
        match state {
            State::Runnable => enqueue(p),
            // Only now can the parent reap it (its registers are saved, its stack is
            // free).
            State::Zombie => super::retire(&p),
            State::Sleeping => {}
        }
    }
}
