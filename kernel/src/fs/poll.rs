//! `ppoll`: waits until one of a set of descriptors is ready, a timeout passes or a
//! signal arrives.
//!
//! Readiness is asked of each file ([`super::File::poll`]). The wait re-checks every
//! scheduler tick (files have no wait queue a poller can join across descriptors), so a
//! descriptor that becomes ready is seen within [`crate::timer::TICK_NS`]; with no
//! descriptor at all, `ppoll` is a pure sleep (glibc's `pause`).

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use crate::errno::Errno;
use crate::proc::{self, Process};
use crate::syscall::uaccess::{copy_from_user, copy_to_user};

/// Data to read.
pub const POLLIN: u16 = 0x001;
/// Room to write.
pub const POLLOUT: u16 = 0x004;
/// An error (a pipe's readers are gone).
pub const POLLERR: u16 = 0x008;
/// Hung up (a pipe's writers are gone).
pub const POLLHUP: u16 = 0x010;
/// Not an open descriptor.
const POLLNVAL: u16 = 0x020;
/// Bytes of `struct pollfd` (fd, events, revents).
const POLLFD_SIZE: usize = 8;

/// `ppoll(fds, nfds, timeout, sigmask)`: `deadline` is the end of the timeout in ns since
/// boot (`None`: wait forever), `mask` the signal mask to wait with. Returns how many
/// descriptors have events, 0 on timeout, `EINTR` on a signal.
pub fn ppoll(
    fds: usize,
    nfds: usize,
    deadline: Option<u64>,
    mask: Option<u64>,
) -> Result<usize, Errno> {
    if nfds > crate::fs::MAX_FDS {
        return Err(Errno::EINVAL);
    }
    let mut polls = Vec::new();
    polls.try_reserve(nfds).map_err(|_| Errno::ENOMEM)?;
    for i in 0..nfds {
        let mut b = [0u8; POLLFD_SIZE];
        copy_from_user(&mut b, fds + i * POLLFD_SIZE)?;
        let fd = i32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        let events = u16::from_le_bytes([b[4], b[5]]);
        polls.push((fd, events, 0u16));
    }
    let me = proc::current();
    let old_mask = mask.map(|m| {
        me.blocked
            .swap(m & !proc::signal::UNBLOCKABLE, Ordering::AcqRel)
    });
    let result = wait_ready(&me, &mut polls, deadline);
    match (old_mask, &result) {
        // Interrupted: the handler runs with the ppoll mask, the old one comes back
        // when it returns (as rt_sigsuspend).
        (Some(old), Err(Errno::EINTR)) => me.inner.lock().signals.saved_mask = Some(old),
        (Some(old), _) => me.blocked.store(old, Ordering::Release),
        (None, _) => {}
    }
    let ready = result?;
    for (i, &(_, _, revents)) in polls.iter().enumerate() {
        copy_to_user(fds + i * POLLFD_SIZE + 6, &revents.to_le_bytes())?;
    }
    Ok(ready)
}

/// Fills in the `revents` of `polls` until one is non-zero, the deadline passes or a
/// signal arrives; returns how many are non-zero.
fn wait_ready(
    me: &Arc<Process>,
    polls: &mut [(i32, u16, u16)],
    deadline: Option<u64>,
) -> Result<usize, Errno> {
    loop {
        let mut ready = 0;
        {
            let inner = me.inner.lock();
            for (fd, events, revents) in polls.iter_mut() {
                *revents = if *fd < 0 {
                    0
                } else {
                    match inner.fds.get(*fd as usize) {
                        Ok(f) => f.lock().poll() & (*events | POLLERR | POLLHUP),
                        Err(_) => POLLNVAL,
                    }
                };
                ready += usize::from(*revents != 0);
            }
        }
        let now = crate::timer::now_ns();
        if ready > 0 || deadline.is_some_and(|d| now >= d) {
            return Ok(ready);
        }
        let wake = deadline.map_or(u64::MAX, |d| d.min(now + crate::timer::TICK_NS));
        let wake = if polls.is_empty() {
            deadline.unwrap_or(u64::MAX)
        } else {
            wake
        };
        if !proc::sched::sleep_until(me, wake) && me.interrupted() {
            return Err(Errno::EINTR);
        }
    }
}
