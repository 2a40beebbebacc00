//! Wait queues: a task sleeps until a condition it checks holds, and whoever makes the
//! condition true wakes the queue.
//!
//! The protocol has no lost wake-up: the waiter registers itself, then re-checks the
//! condition, then sleeps; a waker that changes the condition after that check finds
//! the waiter registered and wakes it, and a wake-up that arrives before the waiter
//! actually leaves the hart is remembered by the scheduler (`wakeup_pending`), so the
//! sleep returns at once.

#![deny(unsafe_code)]

use alloc::sync::Arc;
use alloc::vec::Vec;

use spin::Mutex;

use super::{Process, current, sched};
use crate::syscall::errno::Errno;

/// Tasks waiting for one condition.
#[derive(Default)]
pub struct WaitQueue {
    waiters: Mutex<Vec<Arc<Process>>>,
}

impl WaitQueue {
    /// An empty queue.
    pub const fn new() -> WaitQueue {
        WaitQueue {
            waiters: Mutex::new(Vec::new()),
        }
    }

    /// Sleeps until `ready()` is true; `EINTR` if a signal that is not blocked arrives
    /// meanwhile.
    pub fn wait_until(&self, ready: impl FnMut() -> bool) -> Result<(), Errno> {
        self.wait(ready, true)
    }

    /// Sleeps until `ready()` is true, whatever signals arrive (Linux's uninterruptible
    /// sleep, state `D`): for waits that always end soon, such as a disk transfer.
    pub fn wait_uninterruptible(&self, ready: impl FnMut() -> bool) {
        let _ = self.wait(ready, false);
    }

    fn wait(&self, mut ready: impl FnMut() -> bool, interruptible: bool) -> Result<(), Errno> {
        let me = current();
        let interrupted = |me: &Arc<Process>| interruptible && me.interrupted();
        loop {
            if ready() {
                return Ok(());
            }
            if interrupted(&me) {
                return Err(Errno::EINTR);
            }
            {
                let mut w = self.waiters.lock();
                if w.try_reserve(1).is_err() {
                    // No memory to queue on: poll instead.
                    drop(w);
                    sched::preempt();
                    continue;
                }
                w.push(me.clone());
            }
            // `ready()` is evaluated once per check, and a true answer ends the wait at
            // once: a condition may take what it waited for (a finished request's
            // result), so asking again could see it gone and sleep forever.
            let done = ready();
            if !done && !interrupted(&me) {
                sched::sleep();
            }
            self.waiters.lock().retain(|p| !Arc::ptr_eq(p, &me));
            if done {
                return Ok(());
            }
        }
    }

    /// Wakes every waiter (each re-checks its condition).
    pub fn wake_all(&self) {
        let waiters = core::mem::take(&mut *self.waiters.lock());
        for p in &waiters {
            sched::wake(p);
        }
    }
}
