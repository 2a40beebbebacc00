//! Process system calls: identity, `clone` (fork), `execve`, exit, `wait4`, `kill`,
//! resource limits.

use super::uaccess::{PATH_MAX, copy_to_user, read_cstr, read_cstr_array};
use super::{Errno, SysResult};
use crate::arch::trap::{TrapFrame, reg};
use crate::proc::{self, ExitStatus, exec, sched};

pub fn getpid() -> SysResult {
    Ok(sched::with_current(|p| p.map_or(0, |p| p.pid)))
}

pub fn getppid() -> SysResult {
    Ok(proc::current().inner.lock().parent)
}

/// `clone` flags pagoda accepts: the ones glibc's `fork` passes.
const CLONE_CHILD_CLEARTID: usize = 0x0020_0000;
const CLONE_CHILD_SETTID: usize = 0x0100_0000;
const CLONE_PARENT_SETTID: usize = 0x0010_0000;
/// The low byte: the signal sent to the parent at exit.
const CSIGNAL: usize = 0xff;

pub fn clone(frame: &TrapFrame, flags: usize, stack: usize, ptid: usize, ctid: usize) -> SysResult {
    let supported = CSIGNAL | CLONE_CHILD_CLEARTID | CLONE_CHILD_SETTID | CLONE_PARENT_SETTID;
    if flags & !supported != 0 {
        // Threads (CLONE_VM, CLONE_THREAD, ...) are not supported.
        return Err(Errno::EINVAL);
    }
    let mut child_frame = *frame;
    if stack != 0 {
        child_frame.regs[reg::SP] = stack;
    }
    let set_tid = (flags & CLONE_CHILD_SETTID != 0).then_some(ctid);
    let clear_tid = if flags & CLONE_CHILD_CLEARTID != 0 {
        ctid
    } else {
        0
    };
    let pid = proc::fork(&child_frame, set_tid, clear_tid)?;
    if flags & CLONE_PARENT_SETTID != 0 {
        // Linux ignores a bad pointer here too (the child exists either way).
        let _ = copy_to_user(ptid, &(pid as u32).to_le_bytes());
    }
    Ok(pid)
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
    me.inner.lock().fds.close_on_exec();
    *frame = new;
    // The new image's a0 (0) is in the frame; the dispatcher must not overwrite it.
    Ok(0)
}

pub fn exit(code: usize) -> SysResult {
    proc::exit(ExitStatus::Exited(code as i32))
}

/// `wait4` options.
const WNOHANG: usize = 1;
const WUNTRACED: usize = 2;
const WCONTINUED: usize = 8;
const WALL: usize = 0x4000_0000;
const WCLONE: usize = 0x8000_0000;

pub fn wait4(pid: usize, wstatus: usize, options: usize, rusage: usize) -> SysResult {
    if options & !(WNOHANG | WUNTRACED | WCONTINUED | WALL | WCLONE | 0x2000_0000) != 0 {
        return Err(Errno::EINVAL);
    }
    let pid = pid as isize as i32;
    // Process groups are not modelled: 0 and -PGID mean "any child".
    let want = if pid <= 0 { -1 } else { pid as isize };
    match proc::wait(want, options & WNOHANG != 0)? {
        None => Ok(0),
        Some((child, status)) => {
            if wstatus != 0 {
                copy_to_user(wstatus, &status.to_le_bytes())?;
            }
            if rusage != 0 {
                copy_to_user(rusage, &[0u8; 144])?;
            }
            Ok(child)
        }
    }
}

/// `kill(pid, sig)` (`code` `SI_USER`) and `tkill`/`tgkill` (`SI_TKILL`: a process is
/// its one thread).
pub fn kill(pid: usize, sig: usize, code: i32) -> SysResult {
    let pid = pid as isize;
    if pid <= 0 {
        // Process groups and "everyone" are not modelled.
        return Err(Errno::ESRCH);
    }
    let sig = i32::try_from(sig).map_err(|_| Errno::EINVAL)?;
    proc::signal::kill(pid as usize, sig, code).map(|()| 0)
}

pub fn set_tid_address(addr: usize) -> SysResult {
    let me = proc::current();
    me.inner.lock().clear_child_tid = addr;
    Ok(me.pid)
}

pub fn set_robust_list(_head: usize, len: usize) -> SysResult {
    // One thread per process: the list is only needed for threads dying with locks held.
    const ROBUST_LIST_HEAD_SIZE: usize = 24;
    if len != ROBUST_LIST_HEAD_SIZE {
        return Err(Errno::EINVAL);
    }
    Ok(0)
}

pub fn sched_yield() -> SysResult {
    sched::yield_now();
    Ok(0)
}

/// `RLIMIT_STACK` and `RLIMIT_NOFILE`; every other limit is infinite.
const RLIMIT_STACK: usize = 3;
const RLIMIT_NOFILE: usize = 7;
const RLIM_NLIMITS: usize = 16;

pub fn prlimit64(pid: usize, resource: usize, new: usize, old: usize) -> SysResult {
    if pid != 0 && pid != proc::current().pid {
        proc::find(pid).ok_or(Errno::ESRCH)?;
    }
    if resource >= RLIM_NLIMITS {
        return Err(Errno::EINVAL);
    }
    if new != 0 {
        // Read first, as Linux does (a bad pointer is EFAULT); limits cannot be changed
        // (yet).
        let mut b = [0u8; 16];
        super::uaccess::copy_from_user(&mut b, new)?;
        return Err(Errno::EPERM);
    }
    if old != 0 {
        let (cur, max) = match resource {
            RLIMIT_STACK => (crate::memory::uspace::CONFIG.stack_rlimit as u64, u64::MAX),
            RLIMIT_NOFILE => (crate::fs::MAX_FDS as u64, crate::fs::MAX_FDS as u64),
            _ => (u64::MAX, u64::MAX),
        };
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&cur.to_le_bytes());
        b[8..].copy_from_slice(&max.to_le_bytes());
        copy_to_user(old, &b)?;
    }
    Ok(0)
}
