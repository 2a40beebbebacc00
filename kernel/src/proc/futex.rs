//! Futexes: a task sleeps on a 32-bit word of user memory until another task wakes that
//! word (the kernel half of every pthread mutex, condition variable and join).
//!
//! A futex is named by a [`Key`]: the address space and the address for private memory
//! (the threads of one process see the word at one address), the physical address of
//! the word for shared memory (processes may map it at different addresses; a shared
//! page is never copied on write, so the frame stays the word's). Waiters sit in one
//! list, in arrival order; every operation works on it under its lock, so a wake-up
//! cannot slip between a waiter's check of the word and its queueing:
//!
//! ```text
//!  waiter: lock ─ *uaddr == val? ─ queue ─ unlock ─ sleep ──► dequeued by a waker: 0
//!                      │ no: EAGAIN                      ├──► a signal: EINTR
//!                                                        └──► the deadline: ETIMEDOUT
//!  waker:  (changes *uaddr) lock ─ dequeue up to n matching waiters ─ unlock ─ wake them
//! ```

#![deny(unsafe_code)]

use alloc::sync::Arc;
use alloc::vec::Vec;

use pagoda_mm::addr::{PAGE_SIZE, VirtAddr};
use pagoda_mm::vm::{AreaKind, Mmu};
use spin::Mutex;

use super::{Process, current, sched};
use crate::syscall::errno::Errno;
use crate::syscall::uaccess::copy_from_user;

/// What a futex is, for matching waiters with wakers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Key {
    /// Private memory: (the address space's identity, the address).
    Private(usize, usize),
    /// Shared memory: the physical address of the word.
    Shared(usize),
}

/// A task waiting on a futex.
struct Waiter {
    key: Key,
    /// `FUTEX_WAIT_BITSET`'s mask (all ones for `FUTEX_WAIT`): a wake-up with a disjoint
    /// mask passes it by.
    bitset: u32,
    task: Arc<Process>,
}

/// Every waiting task (at most one entry per task, so bounded by `threads-max`).
static WAITERS: Mutex<Vec<Waiter>> = Mutex::new(Vec::new());

/// The key of the word at `uaddr` for `me`: private unless `shared` is asked for and the
/// word lies in a shared mapping that is present.
fn key(me: &Process, uaddr: usize, shared: bool) -> Result<Key, Errno> {
    if !uaddr.is_multiple_of(4) {
        return Err(Errno::EINVAL);
    }
    let mm = me.mm();
    if shared {
        let vm = mm.lock();
        let vm = vm.as_ref().ok_or(Errno::EFAULT)?;
        let area = vm.area_containing(VirtAddr(uaddr)).ok_or(Errno::EFAULT)?;
        if area.kind == AreaKind::SharedAnon
            && let Some(pte) = vm.mmu().query(VirtAddr(uaddr)).present()
        {
            return Ok(Key::Shared(pte.pa.as_usize() + uaddr % PAGE_SIZE));
        }
    }
    Ok(Key::Private(Arc::as_ptr(&mm) as usize, uaddr))
}

/// Reads the futex word at `uaddr`.
fn read_word(uaddr: usize) -> Result<u32, Errno> {
    let mut b = [0u8; 4];
    copy_from_user(&mut b, uaddr)?;
    Ok(u32::from_le_bytes(b))
}

/// `FUTEX_WAIT`/`FUTEX_WAIT_BITSET`: sleeps while `*uaddr == val` until woken through a
/// wake-up whose mask meets `bitset`, a signal (`EINTR`) or monotonic time `deadline`
/// (`ETIMEDOUT`); `EAGAIN` if the word already differs.
pub fn wait(
    uaddr: usize,
    val: u32,
    bitset: u32,
    deadline: Option<u64>,
    shared: bool,
) -> Result<usize, Errno> {
    if bitset == 0 {
        return Err(Errno::EINVAL);
    }
    let me = current();
    // Fault the word in (and fail on a bad address) before taking the lock.
    read_word(uaddr)?;
    let key = key(&me, uaddr, shared)?;
    {
        let mut waiters = WAITERS.lock();
        if read_word(uaddr)? != val {
            return Err(Errno::EAGAIN);
        }
        waiters.try_reserve(1).map_err(|_| Errno::ENOMEM)?;
        waiters.push(Waiter {
            key,
            bitset,
            task: me.clone(),
        });
    }
    loop {
        let queued = |w: &Waiter| Arc::ptr_eq(&w.task, &me);
        if !WAITERS.lock().iter().any(queued) {
            return Ok(0);
        }
        let timed_out = deadline.is_some_and(|d| crate::timer::now_ns() >= d);
        if timed_out || me.interrupted() {
            let mut waiters = WAITERS.lock();
            let Some(i) = waiters.iter().position(queued) else {
                return Ok(0); // Woken after all.
            };
            waiters.swap_remove(i);
            return Err(if timed_out {
                Errno::ETIMEDOUT
            } else {
                Errno::EINTR
            });
        }
        sched::sleep_once(&me, deadline);
    }
}

/// `FUTEX_WAKE`/`FUTEX_WAKE_BITSET`: wakes up to `n` waiters on the word at `uaddr`
/// whose mask meets `bitset`; returns how many.
pub fn wake(uaddr: usize, n: usize, bitset: u32, shared: bool) -> Result<usize, Errno> {
    if bitset == 0 {
        return Err(Errno::EINVAL);
    }
    let me = current();
    let key = key(&me, uaddr, shared)?;
    Ok(wake_key(key, n, bitset))
}

/// Wakes up to `n` waiters of `key` whose mask meets `bitset`, oldest first.
fn wake_key(key: Key, n: usize, bitset: u32) -> usize {
    let mut woken = 0;
    let mut waiters = WAITERS.lock();
    let mut i = 0;
    while i < waiters.len() && woken < n {
        if waiters[i].key == key && waiters[i].bitset & bitset != 0 {
            let w = waiters.remove(i);
            sched::wake(&w.task);
            woken += 1;
        } else {
            i += 1;
        }
    }
    woken
}

/// The wake-up of `CLONE_CHILD_CLEARTID` when thread `me` exits: `n` waiters on its
/// `clear_child_tid` word (as a shared futex, as Linux sends it).
pub fn wake_address(me: &Process, uaddr: usize, n: usize) -> Result<usize, Errno> {
    Ok(wake_key(key(me, uaddr, true)?, n, u32::MAX))
}

/// `FUTEX_REQUEUE`/`FUTEX_CMP_REQUEUE`: wakes up to `n_wake` waiters on `uaddr` and moves
/// up to `n_move` of the rest to `uaddr2`; with `expect`, `EAGAIN` unless `*uaddr` still
/// holds it. Returns woken plus moved.
pub fn requeue(
    uaddr: usize,
    n_wake: usize,
    uaddr2: usize,
    n_move: usize,
    expect: Option<u32>,
    shared: bool,
) -> Result<usize, Errno> {
    let me = current();
    let from = key(&me, uaddr, shared)?;
    let to = key(&me, uaddr2, shared)?;
    let mut waiters = WAITERS.lock();
    if let Some(v) = expect
        && read_word(uaddr)? != v
    {
        return Err(Errno::EAGAIN);
    }
    let (mut woken, mut moved) = (0, 0);
    let mut i = 0;
    while i < waiters.len() && (woken < n_wake || moved < n_move) {
        if waiters[i].key != from {
            i += 1;
        } else if woken < n_wake {
            let w = waiters.remove(i);
            sched::wake(&w.task);
            woken += 1;
        } else {
            waiters[i].key = to;
            moved += 1;
            i += 1;
        }
    }
    Ok(woken + moved)
}

/// Bit of a robust futex word: its owner died holding it.
const FUTEX_OWNER_DIED: u32 = 0x4000_0000;
/// Bit of a robust futex word: some task waits on it.
const FUTEX_WAITERS: u32 = 0x8000_0000;
/// The owner's thread id in a robust futex word.
const FUTEX_TID_MASK: u32 = 0x3fff_ffff;
/// Robust-list entries walked at most (Linux's `ROBUST_LIST_LIMIT`): the list is user
/// memory and may be a cycle.
const ROBUST_LIST_LIMIT: usize = 2048;

/// Reads a user word of 8 bytes.
fn read_u64(uaddr: usize) -> Result<u64, Errno> {
    let mut b = [0u8; 8];
    copy_from_user(&mut b, uaddr)?;
    Ok(u64::from_le_bytes(b))
}

/// Releases the robust futexes thread `me` still holds as it exits (the list registered
/// with `set_robust_list`, whose head is at `head`): each word it owns gets
/// `FUTEX_OWNER_DIED`, and one waiter is woken, so the next owner learns the lock's state
/// may be inconsistent instead of waiting forever. A bad list ends the walk silently.
pub fn exit_robust_list(me: &Process, head: usize) {
    // struct robust_list_head { next, futex_offset, list_op_pending }
    let (Ok(mut entry), Ok(offset), Ok(pending)) =
        (read_u64(head), read_u64(head + 8), read_u64(head + 16))
    else {
        return;
    };
    let release = |entry: u64| {
        let uaddr = (entry as usize).wrapping_add(offset as usize);
        let Ok(word) = read_word(uaddr) else { return };
        if word & FUTEX_TID_MASK != me.pid as u32 {
            return;
        }
        let new = (word & FUTEX_WAITERS) | FUTEX_OWNER_DIED;
        if crate::syscall::uaccess::copy_to_user(uaddr, &new.to_le_bytes()).is_ok()
            && word & FUTEX_WAITERS != 0
        {
            let _ = wake_address(me, uaddr, 1);
        }
    };
    for _ in 0..ROBUST_LIST_LIMIT {
        // The low bit marks a priority-inheritance futex; the link is the rest.
        let next = entry & !1;
        if next as usize == head || next == 0 {
            break;
        }
        let Ok(after) = read_u64(next as usize) else {
            break;
        };
        if next != pending & !1 {
            release(next);
        }
        entry = after;
    }
    if pending & !1 != 0 {
        release(pending & !1);
    }
}
