//! File system calls over the read-only initramfs, tmpfs, `/proc`, `/dev` and the console.
//! Calls that change the file tree are in [`super::tree`].

use alloc::string::String;
use alloc::vec::Vec;

use super::uaccess::{
    COPY_CHUNK, PATH_MAX, check_range, copy_from_user, copy_out, copy_to_user, read_cstr, read_u64,
};
use super::{Errno, SysResult};
use crate::fs::initramfs::Kind;
use crate::fs::initramfs::NodeFile;
use crate::fs::tmpfs::{self, Found};
use crate::fs::{FileRef, O_NONBLOCK, Stat, normalize};
use crate::proc;

/// `AT_FDCWD`: paths relative to the working directory.
pub(super) const AT_FDCWD: usize = -100isize as usize;
/// `AT_EMPTY_PATH`: `newfstatat` on the descriptor itself.
pub(super) const AT_EMPTY_PATH: usize = 0x1000;
/// `AT_SYMLINK_NOFOLLOW`: the last component is not followed.
pub(super) const AT_SYMLINK_NOFOLLOW: usize = 0x100;
/// Open flags.
const O_CREAT: usize = 0o100;
const O_EXCL: usize = 0o200;
const O_NOFOLLOW: usize = 0o400000;
pub(super) const O_CLOEXEC: usize = 0o2000000;
/// `fcntl` commands.
const F_DUPFD: usize = 0;
const F_GETFD: usize = 1;
const F_SETFD: usize = 2;
const F_GETFL: usize = 3;
const F_SETFL: usize = 4;
const F_DUPFD_CLOEXEC: usize = 1030;
/// How often a blocked console read looks for input.
const CONSOLE_POLL_NS: u64 = 10_000_000;
/// Most `iovec`s per `readv`/`writev` (Linux's `UIO_MAXIOV`).
const IOV_MAX: usize = 1024;

/// The file behind descriptor `fd` of the current process.
pub(super) fn file(fd: usize) -> Result<FileRef, Errno> {
    proc::current().group.lock().fds.get(fd)
}

pub fn read(fd: usize, buf: usize, len: usize) -> SysResult {
    let f = file(fd)?;
    // The whole buffer must lie in the user half before anything moves (Linux's
    // access_ok): a buffer running past its top is EFAULT, not a partial copy.
    check_range(buf, len)?;
    let mut done = 0;
    let mut chunk = [0u8; COPY_CHUNK];
    let mut slice = Slice::new();
    while done < len {
        if !slice.go_on() {
            break;
        }
        let want = (len - done).min(COPY_CHUNK);
        // The lock guard must be gone before any wait (a temporary in the `match`
        // scrutinee would live through the arms).
        let result = f.lock().read(&mut chunk[..want]);
        let n = match result {
            Err(Errno::EAGAIN) if done == 0 && !f.nonblocking() => {
                wait_for(&f, 0)?;
                continue;
            }
            Err(Errno::EAGAIN) if done > 0 => break,
            result => result?,
        };
        if n == 0 {
            break;
        }
        if let Err(e) = copy_to_user(buf + done, &chunk[..n]) {
            // Like Linux, bytes that did not reach the caller were not consumed.
            let _ = f.lock().lseek(-(n as i64), 1);
            return if done > 0 { Ok(done) } else { Err(e) };
        }
        done += n;
        if n < want {
            break;
        }
    }
    Ok(done)
}

/// The time a long `read` or `write` (a GiB from `/dev/zero`, to `/dev/null`) runs
/// between preemption points: the kernel runs with interrupts masked, so the copy loop
/// lets other tasks run every tick, and stops early (with what it moved so far) once
/// the task is killed.
struct Slice {
    start: u64,
    me: alloc::sync::Arc<proc::Process>,
}

impl Slice {
    fn new() -> Slice {
        Slice {
            start: crate::timer::now_ns(),
            me: proc::current(),
        }
    }

    /// Whether the copy goes on: `false` once the task is killed; yields the hart when
    /// a tick has passed since the last time.
    fn go_on(&mut self) -> bool {
        if crate::timer::now_ns() - self.start >= crate::timer::TICK_NS {
            proc::sched::preempt();
            self.start = crate::timer::now_ns();
        }
        !self.me.killed.load(core::sync::atomic::Ordering::Acquire)
    }
}

/// Waits, holding no lock, until the file that answered `EAGAIN` may make progress: a
/// pipe end on its wait queue (for a write of `want` bytes), the console by polling
/// every [`CONSOLE_POLL_NS`]. `EINTR` if the task is killed meanwhile.
fn wait_for(f: &FileRef, want: usize) -> Result<(), Errno> {
    let waiter = f.lock().waiter();
    match waiter {
        Some(w) => w.wait(want),
        None => {
            let me = proc::current();
            let deadline = crate::timer::now_ns() + CONSOLE_POLL_NS;
            if crate::proc::sched::sleep_until(&me, deadline) {
                Ok(())
            } else {
                Err(Errno::EINTR)
            }
        }
    }
}

pub fn pread64(fd: usize, buf: usize, len: usize, offset: usize) -> SysResult {
    let f = file(fd)?;
    if offset > i64::MAX as usize {
        return Err(Errno::EINVAL);
    }
    let mut slice = Slice::new();
    copy_out(buf, len, |done, chunk| {
        if !slice.go_on() {
            return Ok(0);
        }
        f.lock().read_at(offset.saturating_add(done), chunk)
    })
}

pub fn write(fd: usize, buf: usize, len: usize) -> SysResult {
    let f = file(fd)?;
    check_range(buf, len)?;
    let mut done = 0;
    let mut chunk = [0u8; COPY_CHUNK];
    let mut slice = Slice::new();
    while done < len {
        if !slice.go_on() {
            break;
        }
        let n = (len - done).min(COPY_CHUNK);
        if let Err(e) = copy_from_user(&mut chunk[..n], buf + done) {
            return if done > 0 { Ok(done) } else { Err(e) };
        }
        let mut off = 0;
        while off < n {
            let result = if f.appending() {
                f.lock().append(&chunk[off..n])
            } else {
                f.lock().write(&chunk[off..n])
            };
            let err = match result {
                Ok(k) => {
                    off += k;
                    continue;
                }
                Err(Errno::EAGAIN) if !f.nonblocking() => match wait_for(&f, n - off) {
                    Ok(()) => continue,
                    Err(e) => e,
                },
                Err(Errno::EPIPE) => {
                    // The writer gets SIGPIPE (it ends the process unless ignored).
                    let me = proc::current();
                    proc::signal::send(&me, proc::signal::SIGPIPE, me.pid as u32, 0);
                    Errno::EPIPE
                }
                Err(e) => e,
            };
            return if done + off > 0 {
                Ok(done + off)
            } else {
                Err(err)
            };
        }
        done += n;
    }
    Ok(done)
}

/// `pwrite64(fd, buf, len, offset)`: writes at `offset` without moving the file
/// position (`ESPIPE` for pipes and terminals).
pub fn pwrite64(fd: usize, buf: usize, len: usize, offset: usize) -> SysResult {
    let f = file(fd)?;
    if offset > i64::MAX as usize {
        return Err(Errno::EINVAL);
    }
    check_range(buf, len)?;
    let mut done = 0;
    let mut chunk = [0u8; COPY_CHUNK];
    let mut slice = Slice::new();
    while done < len {
        if !slice.go_on() {
            break;
        }
        let n = (len - done).min(COPY_CHUNK);
        let result = copy_from_user(&mut chunk[..n], buf + done)
            .and_then(|()| f.lock().write_at(offset.saturating_add(done), &chunk[..n]));
        match result {
            Ok(k) => {
                done += k;
                if k < n {
                    break;
                }
            }
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        }
    }
    Ok(done)
}

/// `pipe2(fds, flags)`: a new pipe; its read end at `fds[0]`, its write end at `fds[1]`.
pub fn pipe2(fds: usize, flags: usize) -> SysResult {
    if flags & !(O_CLOEXEC | O_NONBLOCK) != 0 {
        return Err(Errno::EINVAL);
    }
    // The pipe itself comes from the kernel heap: admitted like the descriptions below.
    if !crate::memory::frames::user_may_take(core::mem::size_of::<crate::fs::pipe::PipeEnd>() * 4) {
        return Err(Errno::ENOMEM);
    }
    let (read, write) = crate::fs::pipe::new()?;
    let read = crate::fs::open(read, flags)?;
    let write = crate::fs::open(write, flags)?;
    let me = proc::current();
    let mut inner = me.group.lock();
    let cloexec = flags & O_CLOEXEC != 0;
    let r = inner.fds.insert(read, cloexec)?;
    let w = match inner.fds.insert(write, cloexec) {
        Ok(w) => w,
        Err(e) => {
            let _ = inner.fds.close(r);
            return Err(e);
        }
    };
    drop(inner);
    let mut out = [0u8; 8];
    out[..4].copy_from_slice(&(r as i32).to_le_bytes());
    out[4..].copy_from_slice(&(w as i32).to_le_bytes());
    if let Err(e) = copy_to_user(fds, &out) {
        let mut inner = me.group.lock();
        let _ = inner.fds.close(r);
        let _ = inner.fds.close(w);
        return Err(e);
    }
    Ok(0)
}

/// Reads the `iovec` array at `iov`.
fn iovecs(iov: usize, count: usize) -> Result<Vec<(usize, usize)>, Errno> {
    if count > IOV_MAX {
        return Err(Errno::EINVAL);
    }
    let mut out = Vec::new();
    out.try_reserve(count).map_err(|_| Errno::ENOMEM)?;
    let mut total: usize = 0;
    for i in 0..count {
        let base = read_u64(iov + i * 16)? as usize;
        let len = read_u64(iov + i * 16 + 8)? as usize;
        total = total
            .checked_add(len)
            .filter(|&t| t <= isize::MAX as usize)
            .ok_or(Errno::EINVAL)?;
        out.push((base, len));
    }
    Ok(out)
}

pub fn writev(fd: usize, iov: usize, count: usize) -> SysResult {
    file(fd)?;
    let mut total = 0;
    for (base, len) in iovecs(iov, count)? {
        match write(fd, base, len) {
            Ok(n) => total += n,
            Err(e) if total == 0 => return Err(e),
            Err(_) => break,
        }
    }
    Ok(total)
}

pub fn readv(fd: usize, iov: usize, count: usize) -> SysResult {
    file(fd)?;
    let mut total = 0;
    for (base, len) in iovecs(iov, count)? {
        match read(fd, base, len) {
            Ok(n) => {
                total += n;
                if n < len {
                    break;
                }
            }
            Err(e) if total == 0 => return Err(e),
            Err(_) => break,
        }
    }
    Ok(total)
}

/// Resolves `path` (relative to `dirfd` or the working directory) to an absolute path.
fn resolve(dirfd: usize, path: &str) -> Result<String, Errno> {
    if path.is_empty() {
        return Err(Errno::ENOENT);
    }
    if path.starts_with('/') {
        return crate::fs::concat(&[path]);
    }
    let base = if dirfd == AT_FDCWD {
        let me = proc::current();
        let inner = me.group.lock();
        crate::fs::concat(&[&inner.cwd])?
    } else {
        file(dirfd)?.lock().dir_path()?
    };
    let sep = if base.ends_with('/') { "" } else { "/" };
    crate::fs::concat(&[&base, sep, path])
}

/// The absolute, normalised path of the user string at `path`, relative to `dirfd`.
pub(super) fn abs_path(dirfd: usize, path: usize) -> Result<String, Errno> {
    normalize(&resolve(dirfd, &read_cstr(path, PATH_MAX)?)?)
}

/// Opens `path` (absolute and normalised) as a file description with `flags`; a new
/// tmpfs file gets `mode` (less the umask) when `O_CREAT` makes one.
fn open_path(path: &str, flags: usize, mode: usize) -> Result<FileRef, Errno> {
    let creat = flags & O_CREAT != 0;
    let excl = creat && flags & O_EXCL != 0;
    // O_CREAT | O_EXCL never follows a link in the last component (it exists).
    let follow = flags & O_NOFOLLOW == 0 && !excl;
    let elsewhere = match tmpfs::resolve(path, follow) {
        Ok(Found::Tmpfs(fs, inode)) => {
            if excl {
                return Err(Errno::EEXIST);
            }
            return tmpfs::open(&fs, inode, flags, path);
        }
        Ok(Found::Elsewhere(p)) => p,
        Err(Errno::ENOENT) if creat => return create_path(path, flags, mode),
        Err(e) => return Err(e),
    };
    let path = elsewhere.as_deref().unwrap_or(path);
    if let Some(file) = crate::fs::procfs::open(path, flags)? {
        return Ok(file);
    }
    if let Some(file) = crate::fs::dev::open(path, flags)? {
        return Ok(file);
    }
    let node = match crate::fs::lookup(path) {
        Ok(node) => node,
        Err(Errno::ENOENT) if creat => return create_path(path, flags, mode),
        Err(e) => return Err(e),
    };
    if excl {
        return Err(Errno::EEXIST);
    }
    crate::fs::check_open_mode(node.kind == Kind::Dir, flags)?;
    crate::fs::open(NodeFile::new(node), flags)
}

/// `open(O_CREAT)` of a missing `path`: a new tmpfs file if its directory is in a tmpfs,
/// else `EROFS` (the initramfs), or the error of the directory's lookup.
fn create_path(path: &str, flags: usize, mode: usize) -> Result<FileRef, Errno> {
    if path.ends_with('/') {
        return Err(Errno::EISDIR);
    }
    let Some((fs, dir, name)) = tmpfs::parent_of(path)? else {
        return Err(read_only_error(path, true));
    };
    let perm = mode as u32 & !umask();
    let inode = match fs.create_file(&dir, name, perm) {
        Ok(inode) => inode,
        // Made by someone else meanwhile: open it (unless O_EXCL).
        Err(Errno::EEXIST) if flags & O_EXCL == 0 => tmpfs::Tmpfs::child(&dir, name)?,
        Err(e) => return Err(e),
    };
    tmpfs::open(&fs, inode, flags, path)
}

/// The calling process's umask.
pub(super) fn umask() -> u32 {
    proc::current().group.lock().umask
}

/// What a change to `path` (absolute, normalised, outside every tmpfs) answers: the
/// initramfs is read-only. `creating`: the call makes `path` (`EEXIST` if it exists,
/// else `EROFS` if its directory exists); otherwise `EROFS` if it exists. Otherwise the
/// lookup's error (`ENOENT`, `ENOTDIR`).
pub(super) fn read_only_error(path: &str, creating: bool) -> Errno {
    match stat_path(path, false) {
        Ok(_) if creating => Errno::EEXIST,
        Ok(_) => Errno::EROFS,
        Err(Errno::ENOENT) if creating => {
            let trimmed = path.trim_end_matches('/');
            let dir = trimmed.rsplit_once('/').map_or("/", |(d, _)| d);
            let dir = if dir.is_empty() { "/" } else { dir };
            match stat_path(dir, true) {
                Ok(st)
                    if st.mode & crate::fs::initramfs::S_IFMT == crate::fs::initramfs::S_IFDIR =>
                {
                    Errno::EROFS
                }
                Ok(_) => Errno::ENOTDIR,
                Err(e) => e,
            }
        }
        Err(e) => e,
    }
}

/// The metadata of the file at `path` (absolute and normalised), without opening it;
/// a symbolic link in the last component is followed if `follow`.
pub(super) fn stat_path(path: &str, follow: bool) -> Result<Stat, Errno> {
    let elsewhere = match tmpfs::resolve(path, follow)? {
        Found::Tmpfs(fs, inode) => return Ok(inode.stat(fs.dev())),
        Found::Elsewhere(p) => p,
    };
    let path = elsewhere.as_deref().unwrap_or(path);
    if !follow && let Some(target) = crate::fs::procfs::exe_link(path)? {
        return Ok(Stat {
            mode: crate::fs::initramfs::S_IFLNK | 0o777,
            size: target.len() as u64,
            dev: crate::fs::DEV_PROC,
            ..Stat::default()
        });
    }
    if let Some(st) = crate::fs::procfs::stat(path)? {
        return Ok(st);
    }
    if let Some(st) = crate::fs::dev::stat(path) {
        return Ok(st);
    }
    let node = if follow {
        crate::fs::lookup(path)?
    } else {
        crate::fs::lookup_nofollow(path)?
    };
    Ok(crate::fs::node_stat(&node))
}

pub fn openat(dirfd: usize, path: usize, flags: usize, mode: usize) -> SysResult {
    let path = abs_path(dirfd, path)?;
    let file = open_path(&path, flags, mode & 0o7777)?;
    proc::current()
        .group
        .lock()
        .fds
        .insert(file, flags & O_CLOEXEC != 0)
}

pub fn close(fd: usize) -> SysResult {
    proc::current().group.lock().fds.close(fd).map(|()| 0)
}

pub fn lseek(fd: usize, offset: usize, whence: usize) -> SysResult {
    let whence = u32::try_from(whence).map_err(|_| Errno::EINVAL)?;
    file(fd)?.lock().lseek(offset as i64, whence)
}

/// The most bytes one `getdents64` call fills (the kernel buffer it builds them in: one
/// page; a caller with a larger buffer calls again, as it does at a directory's end).
const DIRENT_BUF_MAX: usize = 4096;
/// Bytes of `struct linux_dirent64` before the name: `d_ino`, `d_off`, `d_reclen`,
/// `d_type`.
const DIRENT_HEADER: usize = 19;

pub fn getdents64(fd: usize, buf: usize, len: usize) -> SysResult {
    let f = file(fd)?;
    let cap = len.min(DIRENT_BUF_MAX);
    let mut out: Vec<u8> = Vec::new();
    out.try_reserve_exact(cap).map_err(|_| Errno::ENOMEM)?;
    let mut count = 0usize;
    let mut refused = false;
    f.lock().read_dir(&mut |e| {
        let reclen = (DIRENT_HEADER + e.name.len() + 1).next_multiple_of(8);
        if out.len() + reclen > cap {
            refused = true;
            return false;
        }
        count += 1;
        out.extend_from_slice(&e.ino.to_le_bytes());
        // d_off: an opaque cookie for telldir/seekdir, which pagoda does not support.
        out.extend_from_slice(&(count as i64).to_le_bytes());
        out.extend_from_slice(&(reclen as u16).to_le_bytes());
        out.push(e.kind);
        out.extend_from_slice(e.name.as_bytes());
        out.resize(out.len() + reclen - DIRENT_HEADER - e.name.len(), 0);
        true
    })?;
    // The buffer cannot hold even the next entry.
    if out.is_empty() && refused {
        return Err(Errno::EINVAL);
    }
    copy_to_user(buf, &out)?;
    Ok(out.len())
}

/// Writes Linux's riscv64 `struct stat` (128 bytes) for `st` at `buf`.
fn put_stat(buf: usize, st: &Stat) -> SysResult {
    let mut b = [0u8; 128];
    b[..8].copy_from_slice(&st.dev.to_le_bytes());
    b[8..16].copy_from_slice(&st.ino.to_le_bytes());
    b[16..20].copy_from_slice(&st.mode.to_le_bytes());
    b[20..24].copy_from_slice(&st.nlink.unwrap_or(1).to_le_bytes());
    b[24..28].copy_from_slice(&st.uid.to_le_bytes());
    b[28..32].copy_from_slice(&st.gid.to_le_bytes());
    b[32..40].copy_from_slice(&st.rdev.to_le_bytes());
    b[48..56].copy_from_slice(&st.size.to_le_bytes());
    b[56..60].copy_from_slice(&4096u32.to_le_bytes());
    let blocks = st.blocks.unwrap_or(st.size.div_ceil(512));
    b[64..72].copy_from_slice(&blocks.to_le_bytes());
    // st_atime, st_mtime, st_ctime, each seconds then nanoseconds.
    let mtime = crate::fs::Timespec {
        sec: st.mtime as i64,
        nsec: 0,
    };
    let times = st.times.map_or([mtime; 3], |t| [t.atime, t.mtime, t.ctime]);
    for (at, t) in [72, 88, 104].into_iter().zip(times) {
        b[at..at + 8].copy_from_slice(&t.sec.to_le_bytes());
        b[at + 8..at + 16].copy_from_slice(&u64::from(t.nsec).to_le_bytes());
    }
    copy_to_user(buf, &b)?;
    Ok(0)
}

pub fn fstat(fd: usize, buf: usize) -> SysResult {
    let st = file(fd)?.lock().stat();
    put_stat(buf, &st)
}

pub fn newfstatat(dirfd: usize, path: usize, buf: usize, flags: usize) -> SysResult {
    const AT_NO_AUTOMOUNT: usize = 0x800;
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let name = read_cstr(path, PATH_MAX)?;
    if name.is_empty() {
        if flags & AT_EMPTY_PATH == 0 {
            return Err(Errno::ENOENT);
        }
        let st = if dirfd == AT_FDCWD {
            crate::fs::node_stat(&crate::fs::root().lookup("/").ok_or(Errno::ENOENT)?)
        } else {
            file(dirfd)?.lock().stat()
        };
        return put_stat(buf, &st);
    }
    let path = normalize(&resolve(dirfd, &name)?)?;
    let st = stat_path(&path, flags & AT_SYMLINK_NOFOLLOW == 0)?;
    put_stat(buf, &st)
}

pub fn readlinkat(dirfd: usize, path: usize, buf: usize, len: usize) -> SysResult {
    let path = abs_path(dirfd, path)?;
    if len == 0 || len > isize::MAX as usize {
        return Err(Errno::EINVAL);
    }
    let elsewhere = match tmpfs::resolve(&path, false)? {
        Found::Tmpfs(_, inode) => {
            let target = tmpfs::link_target(&inode)?.as_bytes();
            let n = target.len().min(len);
            copy_to_user(buf, &target[..n])?;
            return Ok(n);
        }
        Found::Elsewhere(p) => p,
    };
    let path = elsewhere.unwrap_or(path);
    if let Some(exe) = crate::fs::procfs::exe_link(&path)? {
        let n = exe.len().min(len);
        copy_to_user(buf, &exe.as_bytes()[..n])?;
        return Ok(n);
    }
    if crate::fs::procfs::stat(&path)?.is_some() || crate::fs::dev::stat(&path).is_some() {
        return Err(Errno::EINVAL);
    }
    let node = crate::fs::lookup_nofollow(&path)?;
    if node.kind != Kind::Symlink {
        return Err(Errno::EINVAL);
    }
    let n = node.data.len().min(len);
    copy_to_user(buf, &node.data[..n])?;
    Ok(n)
}

pub fn ioctl(fd: usize, request: usize, arg: usize) -> SysResult {
    let f = file(fd)?;
    let is_tty = f.lock().is_tty();
    if !is_tty {
        return Err(Errno::ENOTTY);
    }
    crate::fs::tty::ioctl(request, arg)
}

/// `statfs` magic numbers of pagoda's file systems (Linux's `RAMFS_MAGIC`,
/// `PROC_SUPER_MAGIC`; `TMPFS_MAGIC` is tmpfs's).
const RAMFS_MAGIC: u64 = 0x8584_58f6;
const PROC_SUPER_MAGIC: u64 = 0x9fa0;
const TMPFS_MAGIC: u64 = tmpfs::TMPFS_MAGIC;
/// `f_flags` of a read-only file system.
const ST_RDONLY: u64 = 1;
/// Bytes of the riscv64 `struct statfs`.
const STATFS_SIZE: usize = 120;
/// Longest file name (`f_namelen`).
const NAME_MAX: u64 = 255;

/// Writes the `struct statfs` of the file system holding `path` (absolute, normalised,
/// existing): the initramfs (read-only; its blocks are the archive's, none free), `/proc`
/// or `/dev` (no blocks).
fn put_statfs(path: &str, buf: usize) -> SysResult {
    let under =
        |dir: &str| path == dir || path.starts_with(dir) && path[dir.len()..].starts_with('/');
    let (magic, blocks, files, flags) = if under("/proc") {
        (PROC_SUPER_MAGIC, 0, 0, ST_RDONLY)
    } else if under("/dev") {
        (TMPFS_MAGIC, 0, 0, 0)
    } else {
        let (bytes, nodes) = crate::fs::root().size();
        (
            RAMFS_MAGIC,
            bytes.div_ceil(4096) as u64,
            nodes as u64,
            ST_RDONLY,
        )
    };
    write_statfs(buf, magic, (blocks, 0), (files, 0), flags)
}

/// Writes the `struct statfs` of a tmpfs instance.
fn put_tmpfs_statfs(fs: &tmpfs::Tmpfs, buf: usize) -> SysResult {
    let s = fs.fs_stat();
    write_statfs(buf, TMPFS_MAGIC, (s.blocks, s.bfree), (s.files, s.ffree), 0)
}

/// Writes a `struct statfs` at `buf`: the magic, (blocks, free blocks) of 4 KiB, (inodes,
/// free inodes), the flags.
fn write_statfs(
    buf: usize,
    magic: u64,
    blocks: (u64, u64),
    files: (u64, u64),
    flags: u64,
) -> SysResult {
    let mut b = [0u8; STATFS_SIZE];
    let fields: [(usize, u64); 10] = [
        (0, magic),
        (8, 4096),
        (16, blocks.0),
        (24, blocks.1),
        (32, blocks.1),
        (40, files.0),
        (48, files.1),
        (56, NAME_MAX),
        (64, 4096),
        (72, flags),
    ];
    for (at, v) in fields {
        b[at..at + 8].copy_from_slice(&v.to_le_bytes());
    }
    copy_to_user(buf, &b)?;
    Ok(0)
}

pub fn statfs(path: usize, buf: usize) -> SysResult {
    let path = abs_path(AT_FDCWD, path)?;
    if let Found::Tmpfs(fs, _) = tmpfs::resolve(&path, true)? {
        return put_tmpfs_statfs(&fs, buf);
    }
    stat_path(&path, true)?;
    put_statfs(&path, buf)
}

pub fn fstatfs(fd: usize, buf: usize) -> SysResult {
    let f = file(fd)?;
    let handle = f.lock().tmpfs();
    if let Some(h) = handle
        && let Some(fs) = tmpfs::by_dev(h.dev)
    {
        return put_tmpfs_statfs(&fs, buf);
    }
    let st = f.lock().stat();
    // A descriptor's file system: /proc and /dev files have their inode ranges.
    let dir = f.lock().dir_path();
    let kind = st.mode & crate::fs::initramfs::S_IFMT;
    let path = match &dir {
        Ok(p) => p.as_str(),
        Err(_) if kind == crate::fs::S_IFCHR => "/dev",
        // Every /proc file, and only they, are regular files with inode 0.
        Err(_) if kind == crate::fs::S_IFREG && st.ino == 0 => "/proc",
        Err(_) => "/",
    };
    put_statfs(path, buf)
}

/// The file systems pagoda has, each where it always is: (type, mount point).
const MOUNTED: [(&str, &str); 3] = [("rootfs", "/"), ("proc", "/proc"), ("devtmpfs", "/dev")];

/// `swapon` flags Linux accepts: a priority (`SWAP_FLAG_PREFER` with the low 15 bits)
/// and the discard policies. Pagoda has one area, so the priority changes nothing, and
/// its disk has no discard.
const SWAP_FLAGS: usize = 0x7_ffff;

/// `swapon(2)`: enables the swap area on the disk's block device, the only device that
/// can hold one (`EINVAL` for any other existing path, as Linux for a file system that
/// cannot hold a swap file; `EBUSY` if it is already on).
pub fn swapon(path: usize, flags: usize) -> SysResult {
    if flags & !SWAP_FLAGS != 0 {
        return Err(Errno::EINVAL);
    }
    swap_device(path)?;
    crate::memory::swap::enable(false)?;
    Ok(0)
}

/// `swapoff(2)`: brings every swapped-out page back and disables the area; `ENOMEM` if
/// they do not fit in memory, `EINVAL` if swap is not on.
pub fn swapoff(path: usize) -> SysResult {
    swap_device(path)?;
    crate::memory::swap::disable()?;
    Ok(0)
}

/// Checks that the user path `path` names the disk's block device.
fn swap_device(path: usize) -> Result<(), Errno> {
    let path = abs_path(AT_FDCWD, path)?;
    stat_path(&path, true)?;
    if path != crate::fs::dev::DISK {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

/// `mount(source, target, type, flags, data)`: `tmpfs` mounts a new instance on a
/// directory (options in `data`: `size=`, `nr_inodes=`, `mode=`; `EBUSY` if a tmpfs
/// is mounted there already; `MS_REMOUNT` of a tmpfs succeeds without changing it).
/// pagoda's other file systems are always mounted, each at its place, so mounting
/// `proc` on `/proc` or `devtmpfs` on `/dev` (what a Linux init does) succeeds and
/// changes nothing (on Linux the second mount would stack a new instance there; this
/// one is the same). Any other type is `ENODEV` (`sysfs` too: there is none), another
/// place for these `EINVAL`, a missing target `ENOENT`, a target that is not a
/// directory `ENOTDIR`.
pub fn mount(_source: usize, target: usize, fstype: usize, flags: usize, data: usize) -> SysResult {
    /// `MS_REMOUNT`: change the options of a mounted file system.
    const MS_REMOUNT: usize = 32;
    /// Longest option string read (Linux copies one page).
    const DATA_MAX: usize = 4096;
    let target = abs_path(AT_FDCWD, target)?;
    let fstype = if fstype == 0 {
        String::new()
    } else {
        read_cstr(fstype, PATH_MAX)?
    };
    let st = stat_path(&target, true)?;
    if fstype == "tmpfs"
        || flags & MS_REMOUNT != 0 && tmpfs::is_mount_point(target.trim_end_matches('/'))
    {
        if st.mode & crate::fs::initramfs::S_IFMT != crate::fs::initramfs::S_IFDIR {
            return Err(Errno::ENOTDIR);
        }
        let at = target.trim_end_matches('/');
        if flags & MS_REMOUNT != 0 {
            return if tmpfs::is_mount_point(at) {
                Ok(0)
            } else {
                Err(Errno::EINVAL)
            };
        }
        let data = if data == 0 {
            String::new()
        } else {
            read_cstr(data, DATA_MAX)?
        };
        let options = tmpfs::Options::parse(&data)?;
        tmpfs::mount(if at.is_empty() { "/" } else { at }, options)?;
        return Ok(0);
    }
    match MOUNTED.iter().find(|(kind, _)| *kind == fstype) {
        None => Err(Errno::ENODEV),
        Some((_, at)) if *at == target.trim_end_matches('/') || (*at == "/" && target == "/") => {
            Ok(0)
        }
        Some(_) => Err(Errno::EINVAL),
    }
}

/// `umount2(target, flags)`: pagoda's file systems cannot be unmounted: `EBUSY` for
/// their mount points, `EINVAL` for anything else (not a mount point).
pub fn umount2(target: usize) -> SysResult {
    let target = abs_path(AT_FDCWD, target)?;
    let target = if target == "/" {
        "/"
    } else {
        target.trim_end_matches('/')
    };
    if tmpfs::is_mount_point(target) {
        return tmpfs::umount(target).map(|()| 0);
    }
    if MOUNTED.iter().any(|(_, at)| *at == target) {
        Err(Errno::EBUSY)
    } else {
        stat_path(target, true)?;
        Err(Errno::EINVAL)
    }
}

/// `sendfile`: `EINVAL`, which callers (BusyBox's `cat`, coreutils) take as "copy with
/// read and write instead", as they do on Linux for files that cannot be spliced.
pub fn sendfile(out: usize, input: usize) -> SysResult {
    file(out)?;
    file(input)?;
    Err(Errno::EINVAL)
}

pub fn dup(fd: usize) -> SysResult {
    let me = proc::current();
    let mut inner = me.group.lock();
    let f = inner.fds.get(fd)?;
    inner.fds.insert(f, false)
}

pub fn dup3(old: usize, new: usize, flags: usize) -> SysResult {
    if old == new || flags & !O_CLOEXEC != 0 {
        return Err(Errno::EINVAL);
    }
    let me = proc::current();
    let mut inner = me.group.lock();
    let f = inner.fds.get(old)?;
    inner.fds.install(new, f, flags & O_CLOEXEC != 0)?;
    Ok(new)
}

pub fn fcntl(fd: usize, cmd: usize, arg: usize) -> SysResult {
    let me = proc::current();
    let mut inner = me.group.lock();
    let f = inner.fds.get(fd)?;
    match cmd {
        F_DUPFD | F_DUPFD_CLOEXEC => inner.fds.insert_from(arg, f, cmd == F_DUPFD_CLOEXEC),
        F_GETFD => Ok(usize::from(inner.fds.cloexec(fd)?)),
        F_SETFD => inner.fds.set_cloexec(fd, arg & 1 != 0).map(|()| 0),
        F_GETFL => Ok(f.status()),
        F_SETFL => {
            f.set_status(arg);
            Ok(0)
        }
        _ => Err(Errno::EINVAL),
    }
}

pub fn getcwd(buf: usize, len: usize) -> SysResult {
    let cwd = proc::current().group.lock().cwd.clone();
    if len < cwd.len() + 1 {
        return Err(Errno::ERANGE);
    }
    let mut bytes = Vec::new();
    bytes
        .try_reserve(cwd.len() + 1)
        .map_err(|_| Errno::ENOMEM)?;
    bytes.extend_from_slice(cwd.as_bytes());
    bytes.push(0);
    copy_to_user(buf, &bytes)?;
    // Linux's getcwd returns the length written, the NUL included.
    Ok(bytes.len())
}

/// `chdir`: to any directory, of the initramfs, `/dev` or `/proc` (the working
/// directory is kept as a path: relative paths are resolved against it). A symbolic
/// link to a directory is followed; the directory is kept under the path as given.
pub fn chdir(path: usize) -> SysResult {
    let path = abs_path(AT_FDCWD, path)?;
    let st = stat_path(&path, true)?;
    if st.mode & crate::fs::initramfs::S_IFMT != crate::fs::initramfs::S_IFDIR {
        return Err(Errno::ENOTDIR);
    }
    let trimmed = path.trim_end_matches('/');
    let path = crate::fs::concat(&[if trimmed.is_empty() { "/" } else { trimmed }])?;
    proc::current().group.lock().cwd = path;
    Ok(0)
}

pub fn faccessat(dirfd: usize, path: usize, mode: usize) -> SysResult {
    const W_OK: usize = 2;
    let path = abs_path(dirfd, path)?;
    let st = stat_path(&path, true)?;
    let writable = st.dev != crate::fs::DEV_ROOT && st.dev != crate::fs::DEV_PROC;
    if mode & W_OK != 0 && !writable {
        return Err(Errno::EROFS);
    }
    if mode & 1 != 0 && st.mode & 0o111 == 0 {
        return Err(Errno::EACCES);
    }
    Ok(0)
}
