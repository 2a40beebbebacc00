//! The out-of-memory killer: when a user page fault finds no frame and reclaim cannot
//! free one (no swap, or swap full), the process holding the most memory (resident and
//! swapped) dies, not the one that happened to fault (as Linux's `oom_kill.c`).
//!
//! The fault that ran short is retried once memory may be back:
//!
//! ```text
//!  page fault ─► no frame ─► out_of_memory()
//!                               │ a victim is already dying ───────► wait a tick, retry
//!                               │ choose: largest RSS, never init
//!                               ├─ the victim is another process ──► SIGKILL it, log,
//!                               │                                     wait a tick, retry
//!                               └─ the victim is the faulting one ─► it dies (logged)
//! ```
//!
//! A victim frees its memory as it exits (its address space is dropped on the exit
//! path, which needs no user memory); until it has, no second victim is chosen, so one
//! shortage kills one process.

#![deny(unsafe_code)]

use alloc::sync::Arc;
use core::sync::atomic::{AtomicUsize, Ordering};

use spin::Mutex;

use crate::memory::uspace::UserSpace;

use super::{ExitStatus, INIT_PID, Mm, PROCESSES, Pid, Process, current, exit, signal};

/// Victims killed that have not yet given back their memory (counted from the kill to
/// the end of their address space's teardown, which the exit path reports through
/// [`victim_released`]).
static RELEASING: AtomicUsize = AtomicUsize::new(0);

/// Held while a victim is chosen and marked.
static KILLER: Mutex<()> = Mutex::new(());

/// Called by the exit path once an address space is gone: if the killer chose a process
/// using it, its memory is back.
pub fn victim_released(mm: &Mm) {
    if mm.oom_victim.swap(false, Ordering::AcqRel) {
        RELEASING.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What the killer found.
enum Choice {
    /// A process killed earlier still holds its memory (or memory is back): wait and
    /// retry.
    Dying,
    /// Kill this process.
    Victim(Pid),
    /// Nothing but init holds user memory.
    Nothing,
}

/// The pages a process holds, as Linux's `oom_badness` counts them: resident pages,
/// pages in swap, and page-table pages (a process can hold memory in tables alone, e.g. a
/// huge populated read-only mapping of the zero page).
fn badness(vm: &UserSpace) -> usize {
    vm.rss_pages() + vm.swap_entries() + vm.mmu().memory().pages()
}

/// The victim by Linux's rule without `oom_score_adj`: the most [`badness`]; init and
/// processes that already exited are never chosen.
fn choose() -> Choice {
    if RELEASING.load(Ordering::Acquire) != 0 || crate::memory::frames::user_may_allocate() {
        // A victim is still giving its memory back, or memory came back meanwhile.
        return Choice::Dying;
    }
    let procs = PROCESSES.lock();
    let mut best: Option<(usize, Pid)> = None;
    for (&pid, p) in procs.iter() {
        if p.tgid == INIT_PID || p.kernel {
            continue;
        }
        let mm = p.mm();
        let vm = mm.lock();
        let Some(vm) = vm.as_ref() else { continue };
        if p.killed.load(Ordering::Acquire) {
            return Choice::Dying;
        }
        let points = badness(vm);
        if best.is_none_or(|(most, _)| points > most) {
            best = Some((points, pid));
        }
    }
    match best {
        Some((_, pid)) => Choice::Victim(pid),
        None => Choice::Nothing,
    }
}

/// Processes the killer chose (`oom_kill` in `/proc/vmstat`).
pub static OOM_KILLS: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// Logs the kill in Linux's form and sends `SIGKILL` to `victim`.
fn kill(victim: &Arc<Process>) {
    OOM_KILLS.fetch_add(1, Ordering::Relaxed);
    let mm = victim.mm();
    let (total_kb, rss_kb, tables_kb) = match &*mm.lock() {
        Some(vm) => {
            let total: usize = vm.areas().map(|a| a.range.end.0 - a.range.start.0).sum();
            (
                total / 1024,
                vm.rss_pages() * 4,
                vm.mmu().memory().pages() * 4,
            )
        }
        None => (0, 0, 0),
    };
    victim.with_name(|name| {
        crate::println!(
            "Out of memory: Killed process {} ({name}) total-vm:{total_kb}kB, anon-rss:{rss_kb}kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:{tables_kb}kB oom_score_adj:0",
            victim.tgid
        )
    });
    if !mm.oom_victim.swap(true, Ordering::AcqRel) {
        RELEASING.fetch_add(1, Ordering::AcqRel);
    }
    signal::send(victim, signal::SIGKILL, 0, signal::SI_KERNEL);
}

/// Called when a page fault of the current process found no frame. Returns when the
/// fault should be retried (another process was killed, or is dying, and this one
/// waited a tick for its memory); ends the current process if it is the victim.
pub fn out_of_memory() {
    let me = current();
    if me.killed.load(Ordering::Acquire) {
        return; // Dying already: the return to user mode ends it.
    }
    // One choice at a time: two harts short of memory at once kill one process.
    let killer = KILLER.lock();
    let victim = match choose() {
        Choice::Dying => None,
        Choice::Victim(pid) => super::find(pid),
        Choice::Nothing => Some(me.clone()),
    };
    if let Some(v) = &victim {
        kill(v);
    }
    drop(killer);
    if let Some(v) = victim {
        if Arc::ptr_eq(&v.group, &me.group) {
            if me.tgid == INIT_PID {
                crate::println!("pagoda: out of memory and no killable process");
            }
            drop((v, me));
            exit(ExitStatus::Signaled(signal::SIGKILL));
        }
        super::sched::wake(&v);
    }
    // Give the victim a tick to exit; a kill of this process ends the wait early.
    let _ = super::sched::sleep_until(&me, crate::timer::now_ns() + crate::timer::TICK_NS);
}
