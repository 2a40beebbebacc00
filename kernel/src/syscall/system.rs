//! Time, system information, randomness, signal bookkeeping and power off.

use super::uaccess::{copy_from_user, copy_out, copy_to_user};
use super::{Errno, SysResult};
use crate::proc::signal::{self, SIGACTION_SIZE, SigAction};
use crate::proc::{self, sched};

/// Clock ids.
const CLOCK_REALTIME: usize = 0;
const CLOCK_MONOTONIC: usize = 1;
const CLOCK_PROCESS_CPUTIME_ID: usize = 2;
const CLOCK_THREAD_CPUTIME_ID: usize = 3;
const CLOCK_MONOTONIC_RAW: usize = 4;
const CLOCK_REALTIME_COARSE: usize = 5;
const CLOCK_MONOTONIC_COARSE: usize = 6;
const CLOCK_BOOTTIME: usize = 7;
/// `clock_nanosleep` flag: the time is absolute.
const TIMER_ABSTIME: usize = 1;
const NS_PER_SEC: u64 = 1_000_000_000;

/// The value of clock `id` in ns.
fn clock_ns(id: usize) -> Result<u64, Errno> {
    match id {
        CLOCK_REALTIME | CLOCK_REALTIME_COARSE => Ok(crate::drivers::rtc::realtime_ns()),
        CLOCK_MONOTONIC
        | CLOCK_MONOTONIC_RAW
        | CLOCK_MONOTONIC_COARSE
        | CLOCK_BOOTTIME
        | CLOCK_PROCESS_CPUTIME_ID
        | CLOCK_THREAD_CPUTIME_ID => Ok(crate::timer::now_ns()),
        _ => Err(Errno::EINVAL),
    }
}

fn put_timespec(addr: usize, ns: u64) -> Result<(), Errno> {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&(ns / NS_PER_SEC).to_le_bytes());
    b[8..].copy_from_slice(&(ns % NS_PER_SEC).to_le_bytes());
    copy_to_user(addr, &b)
}

/// Reads a `struct timespec`, `EINVAL` unless it is a valid non-negative duration.
pub(super) fn get_timespec(addr: usize) -> Result<u64, Errno> {
    let mut b = [0u8; 16];
    copy_from_user(&mut b, addr)?;
    let sec = i64::from_le_bytes(b[..8].try_into().unwrap_or_default());
    let nsec = i64::from_le_bytes(b[8..].try_into().unwrap_or_default());
    if sec < 0 || !(0..NS_PER_SEC as i64).contains(&nsec) {
        return Err(Errno::EINVAL);
    }
    Ok((sec as u64)
        .saturating_mul(NS_PER_SEC)
        .saturating_add(nsec as u64))
}

pub fn clock_gettime(id: usize, ts: usize) -> SysResult {
    put_timespec(ts, clock_ns(id)?)?;
    Ok(0)
}

pub fn clock_getres(id: usize, ts: usize) -> SysResult {
    clock_ns(id)?;
    if ts != 0 {
        put_timespec(ts, 1)?;
    }
    Ok(0)
}

pub fn gettimeofday(tv: usize) -> SysResult {
    if tv != 0 {
        let ns = crate::drivers::rtc::realtime_ns();
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&(ns / NS_PER_SEC).to_le_bytes());
        b[8..].copy_from_slice(&((ns % NS_PER_SEC) / 1000).to_le_bytes());
        copy_to_user(tv, &b)?;
    }
    Ok(0)
}

/// Sleeps until monotonic time `deadline`; on an early wake-up (a kill) writes the
/// remaining time to `rem` and fails with `EINTR`.
fn sleep_until(deadline: u64, rem: usize) -> SysResult {
    let me = proc::current();
    if sched::sleep_until(&me, deadline) {
        return Ok(0);
    }
    if rem != 0 {
        put_timespec(rem, deadline.saturating_sub(crate::timer::now_ns()))?;
    }
    Err(Errno::EINTR)
}

pub fn nanosleep(req: usize, rem: usize) -> SysResult {
    let ns = get_timespec(req)?;
    sleep_until(crate::timer::now_ns().saturating_add(ns), rem)
}

pub fn clock_nanosleep(id: usize, flags: usize, req: usize, rem: usize) -> SysResult {
    let now = clock_ns(id)?;
    let ns = get_timespec(req)?;
    let deadline = if flags & TIMER_ABSTIME != 0 {
        let mono = crate::timer::now_ns();
        mono.saturating_add(ns.saturating_sub(now))
    } else {
        crate::timer::now_ns().saturating_add(ns)
    };
    sleep_until(deadline, if flags & TIMER_ABSTIME != 0 { 0 } else { rem })
}

/// `uname` fields, each 65 bytes.
const UTS_FIELD: usize = 65;

/// What `uname` says (also `/proc/sys/kernel/ostype`, `hostname`, `osrelease`).
pub const UTS_SYSNAME: &str = "Linux";
/// The host name.
pub const UTS_NODENAME: &str = "pagoda";
/// The release.
pub const UTS_RELEASE: &str = "6.1.0-pagoda";

pub fn uname(buf: usize) -> SysResult {
    let fields = [
        UTS_SYSNAME,
        UTS_NODENAME,
        UTS_RELEASE,
        "#1 SMP pagoda",
        "riscv64",
        "(none)",
    ];
    let mut b = [0u8; UTS_FIELD * 6];
    for (i, f) in fields.iter().enumerate() {
        b[i * UTS_FIELD..i * UTS_FIELD + f.len()].copy_from_slice(f.as_bytes());
    }
    copy_to_user(buf, &b)?;
    Ok(0)
}

/// `getrandom` flags: `GRND_NONBLOCK`, `GRND_RANDOM`, `GRND_INSECURE`.
const GRND_ALL: usize = 0x7;
/// Most bytes one `getrandom` returns (as Linux: 32 MiB - 1).
const GETRANDOM_MAX: usize = (32 << 20) - 1;

pub fn getrandom(buf: usize, len: usize, flags: usize) -> SysResult {
    if flags & !GRND_ALL != 0 {
        return Err(Errno::EINVAL);
    }
    copy_out(buf, len.min(GETRANDOM_MAX), |_, chunk| {
        crate::random::fill(chunk);
        Ok(chunk.len())
    })
}

pub fn sysinfo(buf: usize) -> SysResult {
    let f = crate::memory::frames::stats();
    let mut b = [0u8; 112];
    let uptime = crate::timer::now_ns() / NS_PER_SEC;
    b[..8].copy_from_slice(&uptime.to_le_bytes());
    b[32..40].copy_from_slice(&(f.total as u64).to_le_bytes());
    b[40..48].copy_from_slice(&(f.free as u64).to_le_bytes());
    let (swap_total, swap_free, _) = crate::memory::swap::totals();
    b[64..72].copy_from_slice(&swap_total.to_le_bytes());
    b[72..80].copy_from_slice(&swap_free.to_le_bytes());
    b[80..82].copy_from_slice(&(proc::count() as u16).to_le_bytes());
    b[104..108].copy_from_slice(&4096u32.to_le_bytes());
    copy_to_user(buf, &b)?;
    Ok(0)
}

/// `reboot` magic numbers and commands.
const MAGIC1: usize = 0xfee1_dead;
const MAGIC2: [usize; 4] = [672_274_793, 85_072_278, 369_367_448, 537_993_216];
const CMD_POWER_OFF: usize = 0x4321_fedc;
const CMD_HALT: usize = 0xcdef_0123;
const CMD_RESTART: usize = 0x0123_4567;

pub fn reboot(magic1: usize, magic2: usize, cmd: usize) -> SysResult {
    // The arguments are C `int`s: only their low 32 bits count.
    let (magic1, magic2, cmd) = (
        magic1 as u32 as usize,
        magic2 as u32 as usize,
        cmd as u32 as usize,
    );
    if magic1 != MAGIC1 || !MAGIC2.contains(&magic2) {
        return Err(Errno::EINVAL);
    }
    if proc::current().pid != proc::INIT_PID {
        // Only init may power the machine off (pagoda has no users to check).
        return Err(Errno::EPERM);
    }
    match cmd {
        CMD_POWER_OFF | CMD_HALT | CMD_RESTART => {
            crate::println!("pagoda: power off requested by init");
            crate::memory::print_stats();
            crate::drivers::finisher::power_off(0)
        }
        _ => Err(Errno::EINVAL),
    }
}

/// The kernel's `sigset_t` size.
const SIGSET_SIZE: usize = 8;
pub fn rt_sigaction(sig: usize, act: usize, oldact: usize) -> SysResult {
    let new = if act != 0 {
        let mut b = [0u8; SIGACTION_SIZE];
        copy_from_user(&mut b, act)?;
        Some(SigAction::from_bytes(&b))
    } else {
        None
    };
    let old = signal::sigaction(sig, new)?;
    if oldact != 0 {
        copy_to_user(oldact, &old.to_bytes())?;
    }
    Ok(0)
}

/// Reads a signal set (`sigset_t`, 8 bytes) at `va`, `None` for a null pointer.
fn read_sigset(va: usize) -> Result<Option<u64>, Errno> {
    if va == 0 {
        return Ok(None);
    }
    let mut b = [0u8; SIGSET_SIZE];
    copy_from_user(&mut b, va)?;
    Ok(Some(u64::from_le_bytes(b)))
}

pub fn rt_sigprocmask(how: usize, set: usize, oldset: usize) -> SysResult {
    let new = read_sigset(set)?;
    if new.is_some() && how > 2 {
        return Err(Errno::EINVAL);
    }
    let old = signal::procmask(how, new)?;
    if oldset != 0 {
        copy_to_user(oldset, &old.to_le_bytes())?;
    }
    Ok(0)
}

pub fn rt_sigpending(set: usize) -> SysResult {
    copy_to_user(set, &signal::pending().to_le_bytes())?;
    Ok(0)
}

pub fn ppoll(fds: usize, nfds: usize, tmo: usize, mask: usize, setsize: usize) -> SysResult {
    let deadline = if tmo == 0 {
        None
    } else {
        Some(crate::timer::now_ns().saturating_add(get_timespec(tmo)?))
    };
    if mask != 0 {
        check_sigset_size(setsize)?;
    }
    crate::fs::poll::ppoll(fds, nfds, deadline, read_sigset(mask)?)
}

/// `pselect6(nfds, readfds, writefds, exceptfds, timeout, sigmask)`; `sigmask` points at
/// `{ const sigset_t *ss; size_t ss_len; }`.
pub fn pselect6(nfds: usize, r: usize, w: usize, e: usize, tmo: usize, sig: usize) -> SysResult {
    let nfds = i32::try_from(nfds as isize).map_err(|_| Errno::EINVAL)?;
    let nfds = usize::try_from(nfds).map_err(|_| Errno::EINVAL)?;
    let deadline = if tmo == 0 {
        None
    } else {
        Some(crate::timer::now_ns().saturating_add(get_timespec(tmo)?))
    };
    let mask = if sig == 0 {
        None
    } else {
        let mut b = [0u8; 16];
        copy_from_user(&mut b, sig)?;
        let ss = u64::from_le_bytes(b[..8].try_into().unwrap_or_default()) as usize;
        if ss != 0 {
            check_sigset_size(u64::from_le_bytes(b[8..].try_into().unwrap_or_default()) as usize)?;
        }
        read_sigset(ss)?
    };
    crate::fs::poll::pselect(nfds, [r, w, e], deadline, mask)
}

/// `rt_sigtimedwait(set, info, timeout, sigsetsize)`.
pub fn rt_sigtimedwait(set: usize, info: usize, tmo: usize) -> SysResult {
    let set = read_sigset(set)?.ok_or(Errno::EFAULT)?;
    let deadline = if tmo == 0 {
        None
    } else {
        Some(crate::timer::now_ns().saturating_add(get_timespec(tmo)?))
    };
    let (sig, siginfo) = signal::timed_wait(set, deadline)?;
    if info != 0 {
        copy_to_user(info, &siginfo)?;
    }
    Ok(sig as usize)
}

/// `setitimer`/`getitimer` timer: real time (`SIGALRM`).
const ITIMER_REAL: usize = 0;
const US_PER_SEC: u64 = 1_000_000;

/// Reads a `struct timeval` as ns; `EINVAL` unless valid.
fn get_timeval(b: &[u8]) -> Result<u64, Errno> {
    let sec = i64::from_le_bytes(b[..8].try_into().unwrap_or_default());
    let usec = i64::from_le_bytes(b[8..16].try_into().unwrap_or_default());
    if sec < 0 || !(0..US_PER_SEC as i64).contains(&usec) {
        return Err(Errno::EINVAL);
    }
    Ok((sec as u64)
        .saturating_mul(NS_PER_SEC)
        .saturating_add(usec as u64 * 1000))
}

/// Writes `ns` as a `struct timeval` (rounded up to a microsecond, as Linux does for a
/// timer that has not expired).
fn put_timeval(b: &mut [u8], ns: u64) {
    let us = ns.div_ceil(1000);
    b[..8].copy_from_slice(&(us / US_PER_SEC).to_le_bytes());
    b[8..16].copy_from_slice(&(us % US_PER_SEC).to_le_bytes());
}

/// Writes an `itimerval` (interval, then value).
fn put_itimer(addr: usize, a: signal::Alarm) -> Result<(), Errno> {
    let mut b = [0u8; 32];
    put_timeval(&mut b[..16], a.interval);
    put_timeval(&mut b[16..], a.deadline);
    copy_to_user(addr, &b)
}

pub fn setitimer(which: usize, new: usize, old: usize) -> SysResult {
    if which != ITIMER_REAL {
        // The CPU-time timers are not modelled.
        return Err(Errno::EINVAL);
    }
    let mut b = [0u8; 32];
    if new != 0 {
        copy_from_user(&mut b, new)?;
    }
    let interval = get_timeval(&b[..16])?;
    let value = get_timeval(&b[16..])?;
    let deadline = if value == 0 {
        0
    } else {
        crate::timer::now_ns().saturating_add(value)
    };
    let was = signal::set_alarm(signal::Alarm { deadline, interval })?;
    if old != 0 {
        put_itimer(old, was)?;
    }
    Ok(0)
}

pub fn getitimer(which: usize, cur: usize) -> SysResult {
    if which != ITIMER_REAL {
        return Err(Errno::EINVAL);
    }
    put_itimer(cur, signal::get_alarm())?;
    Ok(0)
}

pub fn rt_sigsuspend(mask: usize) -> SysResult {
    let mask = read_sigset(mask)?.ok_or(Errno::EFAULT)?;
    signal::suspend(mask)
}

/// Checks the `sigsetsize` argument of the `rt_sig*` calls.
pub fn check_sigset_size(size: usize) -> Result<(), Errno> {
    if size == SIGSET_SIZE {
        Ok(())
    } else {
        Err(Errno::EINVAL)
    }
}

/// `syslog(type, buf, len)` (glibc's `klogctl`), for `dmesg`: reading the kernel log
/// ([`crate::console::read_log`]: what the kernel printed, newest 16 KiB) with
/// `SYSLOG_ACTION_READ_ALL` (3), its size with `SIZE_BUFFER` (10) and `SIZE_UNREAD` (9);
/// opening, closing and the console-level actions (0, 1, 6, 7, 8) do nothing and
/// succeed; clearing (4, 5) and the consuming read (2) are `EINVAL` (the log is never
/// cleared).
pub fn syslog(kind: usize, buf: usize, len: usize) -> SysResult {
    const READ_ALL: usize = 3;
    const SIZE_UNREAD: usize = 9;
    const SIZE_BUFFER: usize = 10;
    match kind {
        0 | 1 | 6 | 7 | 8 => Ok(0),
        READ_ALL => {
            let len = isize::try_from(len).map_err(|_| Errno::EINVAL)? as usize;
            let mut out = alloc::vec::Vec::new();
            let want = len.min(crate::console::LOG_SIZE);
            out.try_reserve_exact(want).map_err(|_| Errno::ENOMEM)?;
            out.resize(want, 0);
            let n = crate::console::read_log(&mut out);
            copy_to_user(buf, &out[..n])?;
            Ok(n)
        }
        SIZE_UNREAD => Ok(crate::console::log_len()),
        SIZE_BUFFER => Ok(crate::console::LOG_SIZE),
        _ => Err(Errno::EINVAL),
    }
}
