//! Process system calls: identity, `clone` (fork), `execve`, exit, `wait4`, `kill`,
//! resource limits.

use super::uaccess::{PATH_MAX, copy_from_user, copy_to_user, read_cstr, read_cstr_array};
use super::{Errno, SysResult};
use crate::arch::trap::TrapFrame;
use crate::proc::{self, ExitStatus, exec, futex, sched};
use pagoda_mm::addr::PAGE_SIZE;

pub fn getpid() -> SysResult {
    Ok(sched::with_current(|p| p.map_or(0, |p| p.tgid)))
}

pub fn gettid() -> SysResult {
    Ok(sched::with_current(|p| p.map_or(0, |p| p.pid)))
}

pub fn getppid() -> SysResult {
    Ok(proc::current().group.lock().parent)
}

/// `clone` flags.
const CLONE_VM: u64 = 0x0000_0100;
const CLONE_FS: u64 = 0x0000_0200;
const CLONE_FILES: u64 = 0x0000_0400;
const CLONE_SIGHAND: u64 = 0x0000_0800;
const CLONE_PIDFD: u64 = 0x0000_1000;
const CLONE_VFORK: u64 = 0x0000_4000;
const CLONE_PARENT: u64 = 0x0000_8000;
const CLONE_THREAD: u64 = 0x0001_0000;
const CLONE_SYSVSEM: u64 = 0x0004_0000;
const CLONE_SETTLS: u64 = 0x0008_0000;
const CLONE_PARENT_SETTID: u64 = 0x0010_0000;
const CLONE_CHILD_CLEARTID: u64 = 0x0020_0000;
const CLONE_DETACHED: u64 = 0x0040_0000;
const CLONE_CHILD_SETTID: u64 = 0x0100_0000;
/// The low byte: the signal sent to the parent at exit.
const CSIGNAL: u64 = 0xff;
/// The flags pagoda implements (`CLONE_SYSVSEM` and `CLONE_DETACHED` mean nothing here:
/// there are no System V semaphores, and Linux ignores the other).
const SUPPORTED: u64 = CSIGNAL
    | CLONE_VM
    | CLONE_FS
    | CLONE_FILES
    | CLONE_SIGHAND
    | CLONE_VFORK
    | CLONE_PARENT
    | CLONE_THREAD
    | CLONE_SYSVSEM
    | CLONE_SETTLS
    | CLONE_PARENT_SETTID
    | CLONE_CHILD_CLEARTID
    | CLONE_DETACHED
    | CLONE_CHILD_SETTID;

/// `clone(flags, stack, parent_tid, tls, child_tid)` (riscv64 argument order).
pub fn clone(
    frame: &TrapFrame,
    flags: usize,
    stack: usize,
    ptid: usize,
    tls: usize,
    ctid: usize,
) -> SysResult {
    do_clone(frame, flags as u64, stack, ptid, tls, ctid)
}

/// Bytes of `struct clone_args` up to `tls` (`CLONE_ARGS_SIZE_VER0`).
const CLONE_ARGS_SIZE_VER0: usize = 64;
/// Bytes of `struct clone_args` pagoda knows (up to `cgroup`).
const CLONE_ARGS_SIZE_KNOWN: usize = 88;

/// `clone3(args, size)`: the same through `struct clone_args`; fields beyond those
/// pagoda knows must be zero (`E2BIG`), as must `set_tid` and `cgroup`.
pub fn clone3(frame: &TrapFrame, args: usize, size: usize) -> SysResult {
    if !(CLONE_ARGS_SIZE_VER0..=PAGE_SIZE).contains(&size) {
        return Err(Errno::EINVAL);
    }
    let mut b = [0u8; CLONE_ARGS_SIZE_KNOWN];
    let known = size.min(CLONE_ARGS_SIZE_KNOWN);
    copy_from_user(&mut b[..known], args)?;
    let mut rest = [0u8; 64];
    let mut at = args + known;
    while at < args + size {
        let n = (args + size - at).min(rest.len());
        copy_from_user(&mut rest[..n], at)?;
        if rest[..n].iter().any(|&x| x != 0) {
            return Err(Errno::E2BIG);
        }
        at += n;
    }
    let word = |i: usize| u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap_or_default());
    let (flags, pidfd, child_tid, parent_tid, exit_signal) =
        (word(0), word(1), word(2), word(3), word(4));
    let (stack, stack_size, tls) = (word(5) as usize, word(6) as usize, word(7) as usize);
    if word(8) != 0 || word(9) != 0 || word(10) != 0 || pidfd != 0 {
        return Err(Errno::EINVAL); // set_tid, set_tid_size, cgroup, a pidfd
    }
    if flags & CSIGNAL != 0 || exit_signal > 64 {
        return Err(Errno::EINVAL);
    }
    // The stack is given as its lowest address and size; clone wants its top.
    let top = match (stack, stack_size) {
        (0, 0) => 0,
        (0, _) | (_, 0) => return Err(Errno::EINVAL),
        (s, n) => s.checked_add(n).ok_or(Errno::EINVAL)?,
    };
    do_clone(
        frame,
        flags | exit_signal,
        top,
        parent_tid as usize,
        tls,
        child_tid as usize,
    )
}

/// `clone` and `clone3` once decoded.
fn do_clone(
    frame: &TrapFrame,
    flags: u64,
    stack: usize,
    ptid: usize,
    tls: usize,
    ctid: usize,
) -> SysResult {
    if flags & CLONE_PIDFD != 0 || flags & !SUPPORTED != 0 {
        return Err(Errno::EINVAL);
    }
    // Linux's rules: a thread shares the signal actions, which need the address space.
    let thread = flags & CLONE_THREAD != 0;
    if (thread && flags & CLONE_SIGHAND == 0)
        || (flags & CLONE_SIGHAND != 0 && flags & CLONE_VM == 0)
    {
        return Err(Errno::EINVAL);
    }
    // Sharing descriptors or the working directory is only modelled for threads.
    if !thread && flags & (CLONE_FILES | CLONE_FS | CLONE_SIGHAND) != 0 {
        return Err(Errno::EINVAL);
    }
    if thread && flags & (CLONE_FILES | CLONE_FS) != CLONE_FILES | CLONE_FS {
        return Err(Errno::EINVAL);
    }
    let args = proc::CloneArgs {
        share_vm: flags & CLONE_VM != 0,
        thread,
        vfork: flags & CLONE_VFORK != 0,
        same_parent: flags & CLONE_PARENT != 0,
        set_tid: (flags & CLONE_CHILD_SETTID != 0).then_some(ctid),
        parent_tid: (flags & CLONE_PARENT_SETTID != 0).then_some(ptid),
        clear_tid: if flags & CLONE_CHILD_CLEARTID != 0 {
            ctid
        } else {
            0
        },
        tls: (flags & CLONE_SETTLS != 0).then_some(tls),
        stack,
    };
    proc::clone(frame, args)
}

pub fn execve(frame: &mut TrapFrame, path: usize, argv: usize, envp: usize) -> SysResult {
    let path = read_cstr(path, PATH_MAX)?;
    let argv = read_cstr_array(argv, exec::MAX_ARG_BYTES)?;
    let envp = read_cstr_array(envp, exec::MAX_ARG_BYTES)?;
    if path.is_empty() {
        return Err(Errno::ENOENT);
    }
    let me = proc::current();
    let new = exec::exec_into(&me, &path, &argv, &envp)?;
    me.group.lock().fds.close_on_exec();
    *frame = new;
    // The new image's a0 (0) is in the frame; the dispatcher must not overwrite it.
    Ok(0)
}

pub fn exit(code: usize) -> SysResult {
    proc::exit_thread(ExitStatus::Exited(code as i32))
}

pub fn exit_group(code: usize) -> SysResult {
    proc::exit(ExitStatus::Exited(code as i32))
}

/// `wait4` options.
const WNOHANG: usize = 1;
const WUNTRACED: usize = 2;
const WCONTINUED: usize = 8;
const WALL: usize = 0x4000_0000;
const WCLONE: usize = 0x8000_0000;

/// Which children a `wait4` pid selects.
fn wait_target(pid: i32) -> Result<proc::WaitFor, Errno> {
    Ok(match pid {
        -1 => proc::WaitFor::Any,
        0 => proc::WaitFor::Group(proc::current().group.lock().pgid),
        // -INT_MIN names no group (Linux: ESRCH).
        i32::MIN => return Err(Errno::ESRCH),
        p if p < 0 => proc::WaitFor::Group(-p as usize),
        p => proc::WaitFor::Pid(p as usize),
    })
}

pub fn wait4(pid: usize, wstatus: usize, options: usize, rusage: usize) -> SysResult {
    if options & !(WNOHANG | WUNTRACED | WCONTINUED | WALL | WCLONE | 0x2000_0000) != 0 {
        return Err(Errno::EINVAL);
    }
    let who = wait_target(pid as isize as i32)?;
    let events = proc::WaitEvents {
        stopped: options & WUNTRACED != 0,
        continued: options & WCONTINUED != 0,
        exited: true,
    };
    match proc::wait(who, events, options & WNOHANG != 0, true)? {
        None => Ok(0),
        Some((child, status)) => {
            if wstatus != 0 {
                copy_to_user(wstatus, &status.wstatus().to_le_bytes())?;
            }
            if rusage != 0 {
                copy_to_user(rusage, &[0u8; RUSAGE_SIZE])?;
            }
            Ok(child)
        }
    }
}

/// Bytes of `struct rusage`.
const RUSAGE_SIZE: usize = 144;
/// Bytes of `siginfo_t`.
const SIGINFO_SIZE: usize = 128;
/// `waitid` id types.
const P_ALL: usize = 0;
const P_PID: usize = 1;
const P_PGID: usize = 2;
/// `waitid` options beyond `WNOHANG`.
const WEXITED: usize = 4;
const WNOWAIT: usize = 0x0100_0000;
/// `si_code` of `SIGCHLD`: exited, killed, killed with a core dump.
const CLD_EXITED: i32 = 1;
const CLD_KILLED: i32 = 2;
const CLD_STOPPED: i32 = 5;
const CLD_CONTINUED: i32 = 6;

/// `waitid(idtype, id, infop, options, rusage)`: like `wait4`, with the outcome in a
/// `siginfo_t` (all zero under `WNOHANG` when no child is ready) and `WNOWAIT` to leave
/// the child waitable.
pub fn waitid(idtype: usize, id: usize, infop: usize, options: usize, rusage: usize) -> SysResult {
    let known = WNOHANG | WUNTRACED | WEXITED | WCONTINUED | WNOWAIT | WALL | WCLONE | 0x2000_0000;
    if options & !known != 0 || options & (WEXITED | WUNTRACED | WCONTINUED) == 0 {
        return Err(Errno::EINVAL);
    }
    let id = id as u32 as usize;
    let who = match idtype {
        P_ALL => proc::WaitFor::Any,
        P_PID if id > 0 => proc::WaitFor::Pid(id),
        P_PGID if id > 0 => proc::WaitFor::Group(id),
        P_PGID => proc::WaitFor::Group(proc::current().group.lock().pgid),
        _ => return Err(Errno::EINVAL),
    };
    let events = proc::WaitEvents {
        stopped: options & WUNTRACED != 0,
        continued: options & WCONTINUED != 0,
        exited: options & WEXITED != 0,
    };
    let found = proc::wait(who, events, options & WNOHANG != 0, options & WNOWAIT == 0)?;
    let mut info = [0u8; SIGINFO_SIZE];
    if let Some((pid, status)) = found {
        let (code, value) = match status {
            ExitStatus::Exited(c) => (CLD_EXITED, c & 0xff),
            ExitStatus::Signaled(s) => (CLD_KILLED, s),
            ExitStatus::Stopped(s) => (CLD_STOPPED, s),
            ExitStatus::Continued => (CLD_CONTINUED, proc::signal::SIGCONT),
        };
        info[..4].copy_from_slice(&proc::signal::SIGCHLD.to_le_bytes());
        info[8..12].copy_from_slice(&code.to_le_bytes());
        info[16..20].copy_from_slice(&(pid as u32).to_le_bytes());
        // si_uid 0 at 20, si_status at 24.
        info[24..28].copy_from_slice(&value.to_le_bytes());
    }
    if infop != 0 {
        copy_to_user(infop, &info)?;
    }
    if rusage != 0 {
        copy_to_user(rusage, &[0u8; RUSAGE_SIZE])?;
    }
    Ok(0)
}

/// `kill(pid, sig)`: a process (pid > 0), the caller's process group (0), a process
/// group (-pgid) or every process but init and the caller (-1).
pub fn kill(pid: usize, sig: usize) -> SysResult {
    let sig = i32::try_from(sig).map_err(|_| Errno::EINVAL)?;
    let pid = pid as isize as i32;
    use proc::signal::Targets;
    match pid {
        p if p > 0 => proc::signal::kill(p as usize, sig, proc::signal::SI_USER),
        0 => {
            let pgid = proc::current().group.lock().pgid;
            proc::signal::kill_many(Targets::Group(pgid), sig)
        }
        -1 => proc::signal::kill_many(Targets::All, sig),
        i32::MIN => Err(Errno::ESRCH),
        p => proc::signal::kill_many(Targets::Group(-p as usize), sig),
    }
    .map(|()| 0)
}

pub fn setpgid(pid: usize, pgid: usize) -> SysResult {
    let (pid, pgid) = (pid as isize as i32, pgid as isize as i32);
    if pid < 0 || pgid < 0 {
        return Err(Errno::EINVAL);
    }
    proc::set_pgid(pid as usize, pgid as usize).map(|()| 0)
}

/// The process `pid` names (0: the caller), for `getpgid`/`getsid`.
fn process_of(pid: usize) -> Result<alloc::sync::Arc<proc::Process>, Errno> {
    let pid = pid as isize as i32;
    match pid {
        0 => Ok(proc::current()),
        p if p > 0 => proc::find(p as usize).ok_or(Errno::ESRCH),
        _ => Err(Errno::ESRCH),
    }
}

pub fn getpgid(pid: usize) -> SysResult {
    Ok(process_of(pid)?.group.lock().pgid)
}

pub fn getsid(pid: usize) -> SysResult {
    Ok(process_of(pid)?.group.lock().sid)
}

pub fn setsid() -> SysResult {
    proc::set_sid()
}

/// `tgkill(tgid, tid, sig)`; `tkill(tid, sig)` is `tgid` 0.
pub fn tgkill(tgid: usize, tid: usize, sig: usize) -> SysResult {
    let (tgid, tid) = (tgid as isize, tid as isize);
    if tgid < 0 || tid <= 0 {
        return Err(Errno::EINVAL);
    }
    let sig = i32::try_from(sig).map_err(|_| Errno::EINVAL)?;
    proc::signal::kill_thread(tgid as usize, tid as usize, sig).map(|()| 0)
}

pub fn set_tid_address(addr: usize) -> SysResult {
    let me = proc::current();
    me.thread.lock().clear_child_tid = addr;
    Ok(me.pid)
}

/// Bytes of `struct robust_list_head`.
const ROBUST_LIST_HEAD_SIZE: usize = 24;

pub fn set_robust_list(head: usize, len: usize) -> SysResult {
    if len != ROBUST_LIST_HEAD_SIZE {
        return Err(Errno::EINVAL);
    }
    proc::current().thread.lock().robust_list = head;
    Ok(0)
}

/// `futex` operations.
const FUTEX_WAIT: usize = 0;
const FUTEX_WAKE: usize = 1;
const FUTEX_REQUEUE: usize = 3;
const FUTEX_CMP_REQUEUE: usize = 4;
const FUTEX_WAIT_BITSET: usize = 9;
const FUTEX_WAKE_BITSET: usize = 10;
/// `futex` flags in the operation word.
const FUTEX_PRIVATE_FLAG: usize = 128;
const FUTEX_CLOCK_REALTIME: usize = 256;
/// `FUTEX_WAIT`'s mask: every bit.
const FUTEX_BITSET_MATCH_ANY: u32 = u32::MAX;

/// `futex(uaddr, op, val, timeout or val2, uaddr2, val3)`.
pub fn futex(
    uaddr: usize,
    op: usize,
    val: usize,
    timeout: usize,
    uaddr2: usize,
    val3: usize,
) -> SysResult {
    let shared = op & FUTEX_PRIVATE_FLAG == 0;
    let cmd = op & !(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME);
    if op & FUTEX_CLOCK_REALTIME != 0 && cmd != FUTEX_WAIT_BITSET && cmd != FUTEX_WAIT {
        return Err(Errno::ENOSYS);
    }
    // Counts are ints; a negative one is as good as none, as Linux reads it.
    let count = |v: usize| (v as u32 as i32).max(0) as usize;
    match cmd {
        FUTEX_WAIT | FUTEX_WAIT_BITSET => {
            let bitset = if cmd == FUTEX_WAIT {
                FUTEX_BITSET_MATCH_ANY
            } else {
                val3 as u32
            };
            let deadline = if timeout == 0 {
                None
            } else {
                let ns = super::system::get_timespec(timeout)?;
                let now = crate::timer::now_ns();
                Some(if cmd == FUTEX_WAIT {
                    // Relative.
                    now.saturating_add(ns)
                } else if op & FUTEX_CLOCK_REALTIME != 0 {
                    now.saturating_add(ns.saturating_sub(crate::drivers::rtc::realtime_ns()))
                } else {
                    ns
                })
            };
            futex::wait(uaddr, val as u32, bitset, deadline, shared)
        }
        FUTEX_WAKE => futex::wake(uaddr, count(val), FUTEX_BITSET_MATCH_ANY, shared),
        FUTEX_WAKE_BITSET => futex::wake(uaddr, count(val), val3 as u32, shared),
        FUTEX_REQUEUE | FUTEX_CMP_REQUEUE => {
            let expect = (cmd == FUTEX_CMP_REQUEUE).then_some(val3 as u32);
            futex::requeue(uaddr, count(val), uaddr2, count(timeout), expect, shared)
        }
        _ => Err(Errno::ENOSYS),
    }
}

/// `sched_getaffinity(pid, len, mask)`: every task may run on every online hart; the
/// mask is one word (`MAX_HARTS` fits), so `len` must hold 8 bytes.
pub fn sched_getaffinity(pid: usize, len: usize, mask: usize) -> SysResult {
    if pid != 0 {
        proc::find(pid).ok_or(Errno::ESRCH)?;
    }
    const WORD: usize = 8;
    if len < WORD || !len.is_multiple_of(WORD) {
        return Err(Errno::EINVAL);
    }
    let online = crate::smp::online_mask().snapshot();
    let bits = online.iter().fold(0u64, |m, h| m | 1 << h);
    copy_to_user(mask, &bits.to_le_bytes())?;
    Ok(WORD)
}

pub fn sched_yield() -> SysResult {
    sched::yield_now();
    Ok(0)
}

/// `prlimit64(pid, resource, new, old)` (and `getrlimit`): reads and sets the limits of
/// the caller's process, or reads another's. A new soft limit above the new hard one is
/// `EINVAL`; a descriptor limit above [`crate::fs::MAX_FDS`] (pagoda's `nr_open`)
/// `EPERM`; other hard limits may be raised (root has `CAP_SYS_RESOURCE`); changing
/// another process's limits `EPERM`. What is enforced: `RLIMIT_NOFILE` (new descriptors stay below it);
/// the others are kept and reported, the stack's size being fixed at `execve` by the
/// kernel's own limit.
pub fn prlimit64(pid: usize, resource: usize, new: usize, old: usize) -> SysResult {
    let me = proc::current();
    let target = if pid == 0 || pid == me.tgid || pid == me.pid {
        proc::find(me.tgid).unwrap_or(me.clone())
    } else {
        proc::find(pid).ok_or(Errno::ESRCH)?
    };
    if resource >= proc::RLIM_NLIMITS {
        return Err(Errno::EINVAL);
    }
    let wanted = if new != 0 {
        // Read first, as Linux does (a bad pointer is EFAULT).
        let mut b = [0u8; 16];
        super::uaccess::copy_from_user(&mut b, new)?;
        let word = |i: usize| u64::from_le_bytes([0, 1, 2, 3, 4, 5, 6, 7].map(|k| b[i + k]));
        Some((word(0), word(8)))
    } else {
        None
    };
    let mut inner = target.group.lock();
    let mut limits = inner.rlimits();
    let current = limits[resource];
    if old != 0 {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&current.0.to_le_bytes());
        b[8..].copy_from_slice(&current.1.to_le_bytes());
        copy_to_user(old, &b)?;
    }
    if let Some((soft, hard)) = wanted {
        if soft > hard {
            return Err(Errno::EINVAL);
        }
        let nr_open = crate::fs::MAX_FDS as u64;
        if (resource == proc::RLIMIT_NOFILE && hard > nr_open) || target.tgid != me.tgid {
            return Err(Errno::EPERM);
        }
        limits[resource] = (soft, hard);
        inner.set_rlimits(limits)?;
        if resource == proc::RLIMIT_NOFILE {
            inner
                .fds
                .set_limit(usize::try_from(soft).unwrap_or(usize::MAX));
        }
        if resource == proc::RLIMIT_AS {
            // The space takes the limit with the group lock let go (the two are never
            // held together); read again, so that concurrent setters leave the space at
            // the group's last value.
            drop(inner);
            let limit = target.group.lock().as_limit();
            let mm = target.mm();
            if let Some(space) = mm.lock().as_mut() {
                space.set_as_limit(limit);
            }
        }
    }
    Ok(0)
}

pub fn getgroups(size: usize, _list: usize) -> SysResult {
    // Root belongs to no supplementary group.
    if size > i32::MAX as usize {
        return Err(Errno::EINVAL);
    }
    Ok(0)
}

/// `getresuid` / `getresgid`: real, effective and saved ids, all 0 (root).
pub fn getresid(ids: [usize; 3]) -> SysResult {
    for at in ids {
        copy_to_user(at, &0u32.to_le_bytes())?;
    }
    Ok(0)
}

/// `capget(header, data)`: root's capabilities, every one of Linux 6.1's 41 effective and
/// permitted, none inheritable. A version pagoda does not know is `EINVAL` with the
/// preferred version written back (how callers ask for it).
pub fn capget(header: usize, data: usize) -> SysResult {
    const VERSION_1: u32 = 0x1998_0330;
    const VERSION_2: u32 = 0x2007_1026;
    const VERSION_3: u32 = 0x2008_0522;
    /// Bits of the capabilities Linux 6.1 has (`CAP_LAST_CAP` is 40).
    const ALL_CAPS: u64 = (1 << 41) - 1;
    let mut h = [0u8; 8];
    copy_from_user(&mut h, header)?;
    let version = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
    let pid = i32::from_le_bytes([h[4], h[5], h[6], h[7]]);
    let words = match version {
        VERSION_1 => 1,
        VERSION_2 | VERSION_3 => 2,
        _ => {
            copy_to_user(header, &VERSION_3.to_le_bytes())?;
            return if data == 0 { Ok(0) } else { Err(Errno::EINVAL) };
        }
    };
    if pid < 0 {
        return Err(Errno::EINVAL);
    }
    if pid > 0 {
        proc::find(pid as usize).ok_or(Errno::ESRCH)?;
    }
    if data == 0 {
        return Ok(0);
    }
    for w in 0..words {
        let caps = (ALL_CAPS >> (32 * w)) as u32;
        let mut d = [0u8; 12];
        d[..4].copy_from_slice(&caps.to_le_bytes());
        d[4..8].copy_from_slice(&caps.to_le_bytes());
        copy_to_user(data + w * 12, &d)?;
    }
    Ok(0)
}

/// `personality(persona)`: pagoda runs every program as `PER_LINUX` (0); asking
/// (`0xffffffff`) or setting `PER_LINUX` returns it, any other persona is `EINVAL`.
pub fn personality(persona: usize) -> SysResult {
    const QUERY: usize = 0xffff_ffff;
    match persona {
        QUERY | 0 => Ok(0),
        _ => Err(Errno::EINVAL),
    }
}

/// `getrusage(who, usage)`: `RUSAGE_SELF` (0), `RUSAGE_CHILDREN` (-1), `RUSAGE_THREAD`
/// (1, answered for the whole process). The CPU time is all in `ru_utime` (the scheduler
/// does not split user from kernel time); `ru_minflt` is the process's page faults and
/// `ru_majflt` those that read a page from swap; the other counters pagoda does not keep
/// are 0.
pub fn getrusage(who: usize, usage: usize) -> SysResult {
    const RUSAGE_SELF: usize = 0;
    const RUSAGE_THREAD: usize = 1;
    const RUSAGE_CHILDREN: usize = -1isize as usize;
    /// Bytes of `struct rusage`: two `timeval`s and 14 longs.
    const RUSAGE_SIZE: usize = 144;
    /// Offset of `ru_minflt`.
    const MINFLT_AT: usize = 32 + 4 * 8;
    /// Offset of `ru_majflt`.
    const MAJFLT_AT: usize = MINFLT_AT + 8;
    let me = proc::current();
    let (ns, (minflt, majflt)) = match who {
        RUSAGE_SELF | RUSAGE_THREAD => {
            let mm = me.mm();
            let faults = mm.lock().as_ref().map_or((0, 0), |vm| {
                let s = vm.stats();
                (s.minor_faults, s.major_faults)
            });
            (
                me.group.cpu_ns.load(core::sync::atomic::Ordering::Relaxed),
                faults,
            )
        }
        RUSAGE_CHILDREN => (
            me.group
                .children_cpu_ns
                .load(core::sync::atomic::Ordering::Relaxed),
            (0, 0),
        ),
        _ => return Err(Errno::EINVAL),
    };
    let mut b = [0u8; RUSAGE_SIZE];
    b[..8].copy_from_slice(&(ns / 1_000_000_000).to_le_bytes());
    b[8..16].copy_from_slice(&((ns % 1_000_000_000) / 1000).to_le_bytes());
    b[MINFLT_AT..MINFLT_AT + 8].copy_from_slice(&minflt.to_le_bytes());
    b[MAJFLT_AT..MAJFLT_AT + 8].copy_from_slice(&majflt.to_le_bytes());
    copy_to_user(usage, &b)?;
    Ok(0)
}

/// `prctl(option, arg2, ...)`: `PR_SET_NAME` / `PR_GET_NAME` (the command name, 16
/// bytes with its NUL), `PR_GET_DUMPABLE` (1) and `PR_SET_DUMPABLE` (0 or 1, accepted:
/// pagoda writes no core files); any other option is `EINVAL`, as Linux answers an
/// option it does not have.
pub fn prctl(option: usize, arg2: usize) -> SysResult {
    const PR_GET_DUMPABLE: usize = 3;
    const PR_SET_DUMPABLE: usize = 4;
    const PR_SET_NAME: usize = 15;
    const PR_GET_NAME: usize = 16;
    let me = proc::current();
    match option {
        PR_SET_NAME => {
            // Up to 15 bytes or the first NUL, a byte at a time (as strncpy_from_user:
            // a name ending just before an unmapped page is fine).
            let mut name = [0u8; proc::COMM_LEN];
            let mut len = 0;
            while len < proc::COMM_LEN - 1 {
                copy_from_user(&mut name[len..len + 1], arg2 + len)?;
                if name[len] == 0 {
                    break;
                }
                len += 1;
            }
            me.group.lock().set_comm(&name[..len]);
            Ok(0)
        }
        PR_GET_NAME => {
            let comm = me.group.lock().comm;
            copy_to_user(arg2, &comm)?;
            Ok(0)
        }
        PR_GET_DUMPABLE => Ok(1),
        PR_SET_DUMPABLE if arg2 <= 1 => Ok(0),
        _ => Err(Errno::EINVAL),
    }
}
