//! `ppoll` and `pselect6`: wait until one of a set of descriptors is ready, a timeout
//! passes or a signal arrives.
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
    let ready = wait_with_mask(&mut polls, deadline, mask)?;
    for (i, &(_, _, revents)) in polls.iter().enumerate() {
        copy_to_user(fds + i * POLLFD_SIZE + 6, &revents.to_le_bytes())?;
    }
    Ok(ready)
}

/// [`wait_ready`] with the signal mask `mask` in force while waiting.
fn wait_with_mask(
    polls: &mut [(i32, u16, u16)],
    deadline: Option<u64>,
    mask: Option<u64>,
) -> Result<usize, Errno> {
    let me = proc::current();
    let old_mask = mask.map(|m| {
        me.blocked
            .swap(m & !proc::signal::UNBLOCKABLE, Ordering::AcqRel)
    });
    let result = wait_ready(&me, polls, deadline);
    match (old_mask, &result) {
        // Interrupted: the handler runs with the wait's mask, the old one comes back
        // when it returns (as rt_sigsuspend).
        (Some(old), Err(Errno::EINTR)) => me.thread.lock().signals.saved_mask = Some(old),
        (Some(old), _) => me.blocked.store(old, Ordering::Release),
        (None, _) => {}
    }
    result
}

/// Bits in an `fd_set` (`FD_SETSIZE`).
const FD_SETSIZE: usize = 1024;

/// `pselect6(nfds, readfds, writefds, exceptfds, ...)`: the `fd_set` bitmaps (any may be
/// 0) are read, waited on as `ppoll` would (reading: `POLLIN`; writing: `POLLOUT`; no
/// file here has exceptional conditions) and rewritten with the ready descriptors.
/// Returns how many bits are set in all.
pub fn pselect(
    nfds: usize,
    sets: [usize; 3],
    deadline: Option<u64>,
    mask: Option<u64>,
) -> Result<usize, Errno> {
    if nfds > FD_SETSIZE {
        return Err(Errno::EINVAL);
    }
    let bytes = nfds.div_ceil(64) * 8;
    let mut bits = [[0u8; FD_SETSIZE / 8]; 3];
    for (set, b) in sets.iter().zip(bits.iter_mut()) {
        if *set != 0 {
            copy_from_user(&mut b[..bytes], *set)?;
        }
    }
    let is_set = |b: &[u8; FD_SETSIZE / 8], fd: usize| b[fd / 8] & (1 << (fd % 8)) != 0;
    let mut polls = Vec::new();
    for fd in 0..nfds {
        let mut events = 0;
        if is_set(&bits[0], fd) {
            events |= POLLIN;
        }
        if is_set(&bits[1], fd) {
            events |= POLLOUT;
        }
        if events != 0 || is_set(&bits[2], fd) {
            polls.try_reserve(1).map_err(|_| Errno::ENOMEM)?;
            polls.push((fd as i32, events, 0u16));
        }
    }
    wait_with_mask(&mut polls, deadline, mask)?;
    let mut out = [[0u8; FD_SETSIZE / 8]; 3];
    let mut count = 0;
    for &(fd, events, revents) in &polls {
        if revents & POLLNVAL != 0 {
            return Err(Errno::EBADF);
        }
        let fd = fd as usize;
        let readable = events & POLLIN != 0 && revents & (POLLIN | POLLHUP | POLLERR) != 0;
        let writable = events & POLLOUT != 0 && revents & (POLLOUT | POLLERR) != 0;
        for (set, on) in [(0, readable), (1, writable)] {
            if on {
                out[set][fd / 8] |= 1 << (fd % 8);
                count += 1;
            }
        }
    }
    for (set, b) in sets.iter().zip(out.iter()) {
        if *set != 0 {
            copy_to_user(*set, &b[..bytes])?;
        }
    }
    Ok(count)
}

/// Fills in the `revents` of `polls` until one is non-zero, the deadline passes or a
/// signal arrives; returns how many are non-zero.
fn wait_ready(
    me: &Arc<Process>,
    polls: &mut [(i32, u16, u16)],
    deadline: Option<u64>,
) -> Result<usize, Errno> {
    // The files of each round, taken from the descriptor table with the process's lock
    // and asked with it released: a file's lock is never taken under the process's
    // (reading the console takes them the other way round).
    let mut files: Vec<Option<Result<crate::fs::FileRef, Errno>>> = Vec::new();
    files
        .try_reserve_exact(polls.len())
        .map_err(|_| Errno::ENOMEM)?;
    loop {
        files.clear();
        {
            let inner = me.group.lock();
            for &(fd, _, _) in polls.iter() {
                files.push((fd >= 0).then(|| inner.fds.get(fd as usize)));
            }
        }
        let mut ready = 0;
        for ((_, events, revents), file) in polls.iter_mut().zip(&files) {
            *revents = match file {
                None => 0,
                Some(Ok(f)) => f.lock().poll() & (*events | POLLERR | POLLHUP),
                Some(Err(_)) => POLLNVAL,
            };
            ready += usize::from(*revents != 0);
        }
        // No reference is kept across the wait (a file closed meanwhile goes at once).
        files.clear();
        let now = crate::timer::now_ns();
        if ready > 0 || deadline.is_some_and(|d| now >= d) {
            return Ok(ready);
        }
        // Without a deadline too the files are asked again every tick (before, a wait
        // without a timeout slept until a signal: ash's ppoll on the console never
        // saw a key).
        let tick = now + crate::timer::TICK_NS;
        let wake = deadline.map_or(tick, |d| d.min(tick));
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
