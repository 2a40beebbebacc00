//! The Linux riscv64 system-call interface: numbers, argument decoding and errno.
//!
//! `ecall` from user mode arrives in [`dispatch`] with the number in `a7` and up to six
//! arguments in `a0..a5`; the result (or `-errno`) goes back in `a0`. Every handler returns
//! a [`SysResult`]; the error types of the layers below are converted to [`Errno`] here.
//! A number pagoda does not implement returns `ENOSYS` and is logged once with its name.
//!
//! | module | calls |
//! |---|---|
//! | [`fs`] | read, write, readv, writev, pread64, pwrite64, openat, close, pipe2, lseek, getdents64, newfstatat, fstat, readlinkat, ioctl, dup, dup3, fcntl, getcwd, chdir, faccessat, statfs, fstatfs, mount, umount2 |
//! | [`tree`] | mkdirat, unlinkat, symlinkat, linkat, renameat2, truncate, ftruncate, fchmod, fchmodat, fchown, fchownat, utimensat, fsync, fdatasync, memfd_create, umask |
//! | [`process`] | getpid, getppid, gettid, clone, clone3, execve, exit, exit_group, wait4, waitid, kill, setpgid, getpgid, getsid, setsid, tkill, tgkill, set_tid_address, set_robust_list, futex, sched_yield, sched_getaffinity, ids, prlimit64, getrlimit |
//! | [`memory`] | brk, mmap, munmap, mprotect, madvise, msync, mlock, mlock2, munlock, mlockall, munlockall, mincore |
//! | [`system`] | ppoll, pselect6, setitimer, getitimer, rt_sigtimedwait, nanosleep, clock_nanosleep, clock_gettime, clock_getres, gettimeofday, uname, getrandom, sysinfo, reboot, signal stubs |

#![deny(unsafe_code)]

mod fs;
mod memory;
mod process;
mod system;
mod tree;
pub mod uaccess;

use core::sync::atomic::{AtomicU64, Ordering};

// `proc` still names the error codes `crate::syscall::errno` (until its rewrite).
pub(crate) use crate::errno;
pub use crate::errno::{Errno, SysResult};
pub use system::{UTS_NODENAME, UTS_RELEASE, UTS_SYSNAME};

use crate::arch::trap::{TrapFrame, reg};

/// Linux riscv64 system-call numbers (the generic table).
pub mod nr {
    pub const GETCWD: usize = 17;
    pub const DUP: usize = 23;
    pub const DUP3: usize = 24;
    pub const FCNTL: usize = 25;
    pub const IOCTL: usize = 29;
    pub const FACCESSAT: usize = 48;
    pub const CHDIR: usize = 49;
    pub const OPENAT: usize = 56;
    pub const CLOSE: usize = 57;
    pub const PIPE2: usize = 59;
    pub const GETDENTS64: usize = 61;
    pub const LSEEK: usize = 62;
    pub const READ: usize = 63;
    pub const WRITE: usize = 64;
    pub const READV: usize = 65;
    pub const WRITEV: usize = 66;
    pub const PREAD64: usize = 67;
    pub const PSELECT6: usize = 72;
    pub const PPOLL: usize = 73;
    pub const READLINKAT: usize = 78;
    pub const NEWFSTATAT: usize = 79;
    pub const FSTAT: usize = 80;
    pub const EXIT: usize = 93;
    pub const EXIT_GROUP: usize = 94;
    pub const WAITID: usize = 95;
    pub const SET_TID_ADDRESS: usize = 96;
    pub const FUTEX: usize = 98;
    pub const SET_ROBUST_LIST: usize = 99;
    pub const NANOSLEEP: usize = 101;
    pub const GETITIMER: usize = 102;
    pub const SETITIMER: usize = 103;
    pub const CLOCK_GETTIME: usize = 113;
    pub const CLOCK_GETRES: usize = 114;
    pub const CLOCK_NANOSLEEP: usize = 115;
    pub const SCHED_GETAFFINITY: usize = 123;
    pub const SCHED_YIELD: usize = 124;
    pub const KILL: usize = 129;
    pub const TKILL: usize = 130;
    pub const TGKILL: usize = 131;
    pub const SIGALTSTACK: usize = 132;
    pub const RT_SIGSUSPEND: usize = 133;
    pub const RT_SIGACTION: usize = 134;
    pub const RT_SIGPROCMASK: usize = 135;
    pub const RT_SIGPENDING: usize = 136;
    pub const RT_SIGTIMEDWAIT: usize = 137;
    pub const RT_SIGRETURN: usize = 139;
    pub const REBOOT: usize = 142;
    pub const SETPGID: usize = 154;
    pub const GETPGID: usize = 155;
    pub const GETSID: usize = 156;
    pub const SETSID: usize = 157;
    pub const UNAME: usize = 160;
    pub const GETRLIMIT: usize = 163;
    pub const UMASK: usize = 166;
    pub const GETTIMEOFDAY: usize = 169;
    pub const GETPID: usize = 172;
    pub const GETPPID: usize = 173;
    pub const GETUID: usize = 174;
    pub const GETEUID: usize = 175;
    pub const GETGID: usize = 176;
    pub const GETEGID: usize = 177;
    pub const GETTID: usize = 178;
    pub const SYSINFO: usize = 179;
    pub const BRK: usize = 214;
    pub const MUNMAP: usize = 215;
    pub const MREMAP: usize = 216;
    pub const CLONE: usize = 220;
    pub const EXECVE: usize = 221;
    pub const MMAP: usize = 222;
    pub const MPROTECT: usize = 226;
    pub const MLOCK: usize = 228;
    pub const MUNLOCK: usize = 229;
    pub const MLOCKALL: usize = 230;
    pub const MUNLOCKALL: usize = 231;
    pub const MINCORE: usize = 232;
    pub const MADVISE: usize = 233;
    pub const SWAPON: usize = 224;
    pub const SWAPOFF: usize = 225;
    pub const WAIT4: usize = 260;
    pub const CLONE3: usize = 435;
    pub const PRLIMIT64: usize = 261;
    pub const MLOCK2: usize = 284;
    pub const GETRANDOM: usize = 278;
    pub const STATFS: usize = 43;
    pub const FSTATFS: usize = 44;
    pub const SENDFILE: usize = 71;
    pub const CAPGET: usize = 90;
    pub const PERSONALITY: usize = 92;
    pub const GETRESUID: usize = 148;
    pub const GETRESGID: usize = 150;
    pub const GETGROUPS: usize = 158;
    pub const GETRUSAGE: usize = 165;
    pub const PRCTL: usize = 167;
    pub const SYSLOG: usize = 116;
    pub const MOUNT: usize = 40;
    pub const UMOUNT2: usize = 39;
    pub const MKDIRAT: usize = 34;
    pub const UNLINKAT: usize = 35;
    pub const SYMLINKAT: usize = 36;
    pub const LINKAT: usize = 37;
    pub const TRUNCATE: usize = 45;
    pub const FTRUNCATE: usize = 46;
    pub const FCHMOD: usize = 52;
    pub const FCHMODAT: usize = 53;
    pub const FCHOWNAT: usize = 54;
    pub const FCHOWN: usize = 55;
    pub const PWRITE64: usize = 68;
    pub const FSYNC: usize = 82;
    pub const FDATASYNC: usize = 83;
    pub const UTIMENSAT: usize = 88;
    pub const MSYNC: usize = 227;
    pub const RENAMEAT2: usize = 276;
    pub const MEMFD_CREATE: usize = 279;
}

/// Handles the system call in `frame` and stores its result in `a0`.
pub fn dispatch(frame: &mut TrapFrame) {
    let n = frame.regs[reg::A7];
    let a = [
        frame.regs[10],
        frame.regs[11],
        frame.regs[12],
        frame.regs[13],
        frame.regs[14],
        frame.regs[15],
    ];
    let result =
        match n {
            nr::GETPID => process::getpid(),
            nr::READ => fs::read(a[0], a[1], a[2]),
            nr::WRITE => fs::write(a[0], a[1], a[2]),
            nr::READV => fs::readv(a[0], a[1], a[2]),
            nr::WRITEV => fs::writev(a[0], a[1], a[2]),
            nr::PREAD64 => fs::pread64(a[0], a[1], a[2], a[3]),
            nr::PPOLL => system::ppoll(a[0], a[1], a[2], a[3], a[4]),
            nr::PSELECT6 => system::pselect6(a[0], a[1], a[2], a[3], a[4], a[5]),
            nr::OPENAT => fs::openat(a[0], a[1], a[2], a[3]),
            nr::PWRITE64 => fs::pwrite64(a[0], a[1], a[2], a[3]),
            nr::MKDIRAT => tree::mkdirat(a[0], a[1], a[2]),
            nr::UNLINKAT => tree::unlinkat(a[0], a[1], a[2]),
            nr::SYMLINKAT => tree::symlinkat(a[0], a[1], a[2]),
            nr::LINKAT => tree::linkat(a[0], a[1], a[2], a[3], a[4]),
            nr::RENAMEAT2 => tree::renameat2(a[0], a[1], a[2], a[3], a[4]),
            nr::TRUNCATE => tree::truncate(a[0], a[1]),
            nr::FTRUNCATE => tree::ftruncate(a[0], a[1]),
            nr::FCHMOD => tree::fchmod(a[0], a[1]),
            nr::FCHMODAT => tree::fchmodat(a[0], a[1], a[2]),
            nr::FCHOWN => tree::fchown(a[0], a[1], a[2]),
            nr::FCHOWNAT => tree::fchownat(a[0], a[1], a[2], a[3], a[4]),
            nr::UTIMENSAT => tree::utimensat(a[0], a[1], a[2], a[3]),
            nr::FSYNC | nr::FDATASYNC => tree::fsync(a[0]),
            nr::MEMFD_CREATE => tree::memfd_create(a[0], a[1]),
            nr::MSYNC => memory::msync(a[0], a[1], a[2]),
            nr::CLOSE => fs::close(a[0]),
            nr::PIPE2 => fs::pipe2(a[0], a[1]),
            nr::LSEEK => fs::lseek(a[0], a[1], a[2]),
            nr::GETDENTS64 => fs::getdents64(a[0], a[1], a[2]),
            nr::NEWFSTATAT => fs::newfstatat(a[0], a[1], a[2], a[3]),
            nr::FSTAT => fs::fstat(a[0], a[1]),
            nr::READLINKAT => fs::readlinkat(a[0], a[1], a[2], a[3]),
            nr::IOCTL => fs::ioctl(a[0], a[1], a[2]),
            nr::DUP => fs::dup(a[0]),
            nr::DUP3 => fs::dup3(a[0], a[1], a[2]),
            nr::FCNTL => fs::fcntl(a[0], a[1], a[2]),
            nr::GETCWD => fs::getcwd(a[0], a[1]),
            nr::CHDIR => fs::chdir(a[0]),
            nr::FACCESSAT => fs::faccessat(a[0], a[1], a[2]),
            nr::GETPPID => process::getppid(),
            nr::GETTID => process::gettid(),
            nr::GETUID | nr::GETEUID | nr::GETGID | nr::GETEGID => Ok(0),
            nr::GETRESUID | nr::GETRESGID => process::getresid([a[0], a[1], a[2]]),
            nr::GETGROUPS => process::getgroups(a[0], a[1]),
            nr::CAPGET => process::capget(a[0], a[1]),
            nr::PERSONALITY => process::personality(a[0]),
            nr::GETRUSAGE => process::getrusage(a[0], a[1]),
            nr::PRCTL => process::prctl(a[0], a[1]),
            nr::STATFS => fs::statfs(a[0], a[1]),
            nr::FSTATFS => fs::fstatfs(a[0], a[1]),
            nr::SENDFILE => fs::sendfile(a[0], a[1]),
            nr::SYSLOG => system::syslog(a[0], a[1], a[2]),
            nr::MOUNT => fs::mount(a[0], a[1], a[2], a[3], a[4]),
            nr::SWAPON => fs::swapon(a[0], a[1]),
            nr::SWAPOFF => fs::swapoff(a[0]),
            nr::UMOUNT2 => fs::umount2(a[0]),
            nr::CLONE => process::clone(frame, a[0], a[1], a[2], a[3], a[4]),
            nr::CLONE3 => process::clone3(frame, a[0], a[1]),
            nr::FUTEX => process::futex(a[0], a[1], a[2], a[3], a[4], a[5]),
            nr::EXECVE => process::execve(frame, a[0], a[1], a[2]),
            nr::EXIT => process::exit(a[0]),
            nr::EXIT_GROUP => process::exit_group(a[0]),
            nr::WAIT4 => process::wait4(a[0], a[1], a[2], a[3]),
            nr::WAITID => process::waitid(a[0], a[1], a[2], a[3], a[4]),
            nr::SETPGID => process::setpgid(a[0], a[1]),
            nr::GETPGID => process::getpgid(a[0]),
            nr::GETSID => process::getsid(a[0]),
            nr::SETSID => process::setsid(),
            nr::KILL => process::kill(a[0], a[1]),
            nr::TKILL => process::tgkill(0, a[0], a[1]),
            nr::TGKILL => process::tgkill(a[0], a[1], a[2]),
            nr::SET_TID_ADDRESS => process::set_tid_address(a[0]),
            nr::SCHED_YIELD => process::sched_yield(),
            nr::SCHED_GETAFFINITY => process::sched_getaffinity(a[0], a[1], a[2]),
            nr::PRLIMIT64 => process::prlimit64(a[0], a[1], a[2], a[3]),
            nr::GETRLIMIT => process::prlimit64(0, a[0], 0, a[1]),
            nr::UMASK => tree::umask_call(a[0]),
            nr::BRK => memory::brk(a[0]),
            nr::MMAP => memory::mmap(a[0], a[1], a[2], a[3], a[4], a[5]),
            nr::MUNMAP => memory::munmap(a[0], a[1]),
            nr::MREMAP => memory::mremap(a[0], a[1], a[2], a[3], a[4]),
            nr::MPROTECT => memory::mprotect(a[0], a[1], a[2]),
            nr::MADVISE => memory::madvise(a[0], a[1], a[2]),
            nr::MLOCK => memory::mlock(a[0], a[1]),
            nr::MLOCK2 => memory::mlock2(a[0], a[1], a[2]),
            nr::MUNLOCK => memory::munlock(a[0], a[1]),
            nr::MLOCKALL => memory::mlockall(a[0]),
            nr::MUNLOCKALL => memory::munlockall(),
            nr::MINCORE => memory::mincore(a[0], a[1], a[2]),
            nr::NANOSLEEP => system::nanosleep(a[0], a[1]),
            nr::SETITIMER => system::setitimer(a[0], a[1], a[2]),
            nr::GETITIMER => system::getitimer(a[0], a[1]),
            nr::CLOCK_NANOSLEEP => system::clock_nanosleep(a[0], a[1], a[2], a[3]),
            nr::CLOCK_GETTIME => system::clock_gettime(a[0], a[1]),
            nr::CLOCK_GETRES => system::clock_getres(a[0], a[1]),
            nr::GETTIMEOFDAY => system::gettimeofday(a[0]),
            nr::UNAME => system::uname(a[0]),
            nr::GETRANDOM => system::getrandom(a[0], a[1], a[2]),
            nr::SYSINFO => system::sysinfo(a[0]),
            nr::REBOOT => system::reboot(a[0], a[1], a[2]),
            nr::RT_SIGACTION => system::check_sigset_size(a[3])
                .and_then(|()| system::rt_sigaction(a[0], a[1], a[2])),
            nr::RT_SIGPROCMASK => system::check_sigset_size(a[3])
                .and_then(|()| system::rt_sigprocmask(a[0], a[1], a[2])),
            nr::SIGALTSTACK => crate::proc::signal::sigaltstack(frame, a[0], a[1]),
            nr::RT_SIGSUSPEND => {
                system::check_sigset_size(a[1]).and_then(|()| system::rt_sigsuspend(a[0]))
            }
            nr::RT_SIGPENDING => {
                system::check_sigset_size(a[1]).and_then(|()| system::rt_sigpending(a[0]))
            }
            nr::RT_SIGRETURN => crate::proc::signal::sigreturn(frame),
            nr::RT_SIGTIMEDWAIT => system::check_sigset_size(a[3])
                .and_then(|()| system::rt_sigtimedwait(a[0], a[1], a[2])),
            nr::SET_ROBUST_LIST => process::set_robust_list(a[0], a[1]),
            _ => unknown(n),
        };
    frame.regs[reg::A0] = match result {
        Ok(v) => v,
        Err(Errno::EINTR) => interrupted(frame),
        Err(e) => e.as_return(),
    };
}

/// A system call that returned `EINTR` (a signal interrupted it): remembered, with its
/// first argument (still in `a0`), so that a handler with `SA_RESTART` starts it over.
/// Out of line, and reading `a0` from the frame, so that the common path keeps no
/// argument alive across the handler call.
#[cold]
#[inline(never)]
fn interrupted(frame: &TrapFrame) -> usize {
    crate::proc::signal::note_interrupted(frame, frame.regs[reg::A0]);
    Errno::EINTR.as_return()
}

/// Numbers below this are logged once each when unimplemented; the rest once in all (no
/// Linux riscv64 call is numbered that high).
const LOGGED_LIMIT: usize = 512;
/// One bit per number already logged.
static LOGGED: [AtomicU64; LOGGED_LIMIT / 64] = [const { AtomicU64::new(0) }; LOGGED_LIMIT / 64];

/// An unimplemented system call: `ENOSYS`, logged the first time with its name.
fn unknown(n: usize) -> SysResult {
    // Numbers beyond the table share one bit: logged once in all.
    let slot = n.min(LOGGED_LIMIT - 1);
    let bit = 1u64 << (slot % 64);
    let first = LOGGED[slot / 64].fetch_or(bit, Ordering::Relaxed) & bit == 0;
    if first {
        let pid = crate::proc::sched::with_current(|p| p.map_or(0, |p| p.pid));
        crate::println!(
            "pagoda: pid {pid}: system call {n} ({}) not implemented: ENOSYS",
            name(n)
        );
    }
    Err(Errno::ENOSYS)
}

/// The name of some Linux riscv64 system calls that programs are known to try.
fn name(n: usize) -> &'static str {
    match n {
        5 => "setxattr",
        19 => "eventfd2",
        20 => "epoll_create1",
        22 => "epoll_pwait",
        26 => "inotify_init1",
        34 => "mkdirat",
        35 => "unlinkat",
        43 => "statfs",
        46 => "ftruncate",
        53 => "fchmodat",
        59 => "pipe2",
        71 => "sendfile",
        73 => "ppoll",
        82 => "fsync",
        122 => "sched_setaffinity",
        139 => "rt_sigreturn",
        165 => "getrusage",
        167 => "prctl",
        198 => "socket",
        216 => "mremap",
        258 => "riscv_hwprobe",
        276 => "renameat2",
        279 => "memfd_create",
        291 => "statx",
        293 => "rseq",
        _ => "unknown",
    }
}
