//! System calls that change the file tree or a file's metadata: `mkdirat`, `unlinkat`,
//! `symlinkat`, `linkat`, `renameat2`, `ftruncate`/`truncate`, `fchmod`/`fchmodat`,
//! `fchown`/`fchownat`, `utimensat`, `fsync`/`fdatasync`, `memfd_create`, `umask`. Only
//! tmpfs can change: a path elsewhere (the initramfs, `/proc`, `/dev`) answers `EROFS`
//! as a read-only file system does (or `EEXIST`, `ENOENT`, ... as Linux checks first).

use alloc::sync::Arc;

use super::fs::{
    AT_EMPTY_PATH, AT_FDCWD, AT_SYMLINK_NOFOLLOW, abs_path, file, read_only_error, stat_path, umask,
};
use super::uaccess::{PATH_MAX, copy_from_user, read_cstr};
use super::{Errno, SysResult};
use crate::fs::tmpfs::{self, Found, Inode, NewEntry, SetTime, Tmpfs};
use crate::fs::{Timespec, initramfs};
use crate::proc;

/// `AT_REMOVEDIR`: `unlinkat` removes a directory.
const AT_REMOVEDIR: usize = 0x200;
/// `AT_SYMLINK_FOLLOW`: `linkat` follows a link in the old path.
const AT_SYMLINK_FOLLOW: usize = 0x400;
/// `renameat2` flags.
const RENAME_NOREPLACE: usize = 1;
const RENAME_EXCHANGE: usize = 2;
/// `utimensat`'s special nanosecond values.
const UTIME_NOW: u64 = (1 << 30) - 1;
const UTIME_OMIT: u64 = (1 << 30) - 2;
/// Nanoseconds in a second.
const NSEC_PER_SEC: u64 = 1_000_000_000;
/// `memfd_create` flags: close-on-exec, sealing allowed, huge pages.
const MFD_CLOEXEC: usize = 1;
const MFD_ALLOW_SEALING: usize = 2;
/// Longest `memfd_create` name (Linux's 249 bytes: `memfd:` and the NUL make 256).
const MFD_NAME_MAX: usize = 249;
/// Permission bits a new file or directory may get.
const PERM_BITS: usize = 0o7777;

/// A path resolved to a tmpfs inode, or the path elsewhere.
enum Target {
    Tmpfs(Arc<Tmpfs>, Arc<Inode>),
    Elsewhere(alloc::string::String),
}

/// Resolves `path` (absolute, normalised); a symbolic link in the last component is
/// followed if `follow`.
fn target(path: alloc::string::String, follow: bool) -> Result<Target, Errno> {
    Ok(match tmpfs::resolve(&path, follow)? {
        Found::Tmpfs(fs, inode) => Target::Tmpfs(fs, inode),
        Found::Elsewhere(p) => Target::Elsewhere(p.unwrap_or(path)),
    })
}

/// The directory and name a new entry at `path` goes in; the error a read-only or
/// missing directory gives otherwise.
fn new_entry(path: &str) -> Result<NewEntry<'_>, Errno> {
    // An existing entry first (EEXIST), whatever the file system.
    if stat_path(path, false).is_ok() {
        return Err(Errno::EEXIST);
    }
    tmpfs::parent_of(path)?.ok_or_else(|| read_only_error(path, true))
}

/// An existing entry at `path` (its directory and name, not followed); `EROFS` for one
/// outside tmpfs, `EBUSY` for a mount point.
fn old_entry(path: &str) -> Result<NewEntry<'_>, Errno> {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() || tmpfs::is_mount_point(trimmed) {
        return Err(Errno::EBUSY);
    }
    match tmpfs::parent_of(path) {
        Ok(Some(entry)) => Ok(entry),
        Ok(None) | Err(Errno::EEXIST) => Err(read_only_error(path, false)),
        Err(e) => Err(e),
    }
}

pub fn mkdirat(dirfd: usize, path: usize, mode: usize) -> SysResult {
    let path = abs_path(dirfd, path)?;
    let (fs, dir, name) = new_entry(&path)?;
    fs.mkdir(&dir, name, (mode & PERM_BITS) as u32 & !umask())?;
    Ok(0)
}

pub fn unlinkat(dirfd: usize, path: usize, flags: usize) -> SysResult {
    if flags & !AT_REMOVEDIR != 0 {
        return Err(Errno::EINVAL);
    }
    let path = abs_path(dirfd, path)?;
    let rmdir = flags & AT_REMOVEDIR != 0;
    if !rmdir && path.ends_with('/') {
        // unlink("dir/"): a directory (EISDIR) or not one (ENOTDIR).
        let st = stat_path(&path, true)?;
        return Err(if is_dir_mode(st.mode) {
            Errno::EISDIR
        } else {
            Errno::ENOTDIR
        });
    }
    let (fs, dir, name) = old_entry(&path)?;
    fs.unlink(&dir, name, rmdir)?;
    Ok(0)
}

/// Whether `st_mode` bits are a directory's.
fn is_dir_mode(mode: u32) -> bool {
    mode & initramfs::S_IFMT == initramfs::S_IFDIR
}

pub fn symlinkat(target_ptr: usize, dirfd: usize, path: usize) -> SysResult {
    let target = read_cstr(target_ptr, PATH_MAX)?;
    let path = abs_path(dirfd, path)?;
    if target.is_empty() {
        return Err(Errno::ENOENT);
    }
    let (fs, dir, name) = new_entry(&path)?;
    fs.symlink(&dir, name, &target)?;
    Ok(0)
}

pub fn linkat(
    olddirfd: usize,
    oldpath: usize,
    newdirfd: usize,
    newpath: usize,
    flags: usize,
) -> SysResult {
    if flags & !(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let old = abs_path(olddirfd, oldpath)?;
    let new = abs_path(newdirfd, newpath)?;
    let (fs, inode) = match target(old, flags & AT_SYMLINK_FOLLOW != 0)? {
        Target::Tmpfs(fs, inode) => (fs, inode),
        Target::Elsewhere(p) => {
            stat_path(&p, false)?;
            // Across file systems, whatever the new path is.
            return Err(match tmpfs::parent_of(&new) {
                Ok(Some(_)) => Errno::EXDEV,
                _ => read_only_error(&new, true),
            });
        }
    };
    let (to_fs, dir, name) = new_entry(&new)?;
    if !Arc::ptr_eq(&fs, &to_fs) {
        return Err(Errno::EXDEV);
    }
    fs.link(&inode, &dir, name)?;
    Ok(0)
}

pub fn renameat2(
    olddirfd: usize,
    oldpath: usize,
    newdirfd: usize,
    newpath: usize,
    flags: usize,
) -> SysResult {
    if flags & !(RENAME_NOREPLACE | RENAME_EXCHANGE) != 0
        || flags == RENAME_NOREPLACE | RENAME_EXCHANGE
    {
        return Err(Errno::EINVAL);
    }
    let old = abs_path(olddirfd, oldpath)?;
    let new = abs_path(newdirfd, newpath)?;
    let (from_fs, from_dir, from_name) = old_entry(&old)?;
    // The source must exist before anything about the target matters.
    Tmpfs::child(&from_dir, from_name)?;
    let trimmed = new.trim_end_matches('/');
    if trimmed.is_empty() || tmpfs::is_mount_point(trimmed) {
        return Err(Errno::EBUSY);
    }
    let (to_fs, to_dir, to_name) = match tmpfs::parent_of(&new)? {
        Some(entry) => entry,
        None => return Err(Errno::EXDEV),
    };
    if !Arc::ptr_eq(&from_fs, &to_fs) {
        return Err(Errno::EXDEV);
    }
    from_fs.rename(
        &from_dir,
        from_name,
        &to_dir,
        to_name,
        flags & RENAME_NOREPLACE != 0,
        flags & RENAME_EXCHANGE != 0,
    )?;
    Ok(0)
}

/// A length argument of `truncate`: `EINVAL` if negative.
fn length(len: usize) -> Result<u64, Errno> {
    if (len as isize) < 0 {
        return Err(Errno::EINVAL);
    }
    Ok(len as u64)
}

pub fn ftruncate(fd: usize, len: usize) -> SysResult {
    let len = length(len)?;
    file(fd)?.lock().truncate(len).map(|()| 0)
}

pub fn truncate(path: usize, len: usize) -> SysResult {
    let len = length(len)?;
    let path = abs_path(AT_FDCWD, path)?;
    match target(path, true)? {
        Target::Tmpfs(_, inode) => tmpfs::truncate(&inode, len).map(|()| 0),
        Target::Elsewhere(p) => {
            let st = stat_path(&p, true)?;
            Err(if is_dir_mode(st.mode) {
                Errno::EISDIR
            } else {
                Errno::EROFS
            })
        }
    }
}

/// The tmpfs inode of descriptor `fd`; `EROFS` for a file elsewhere (`EBADF` if not
/// open).
fn fd_inode(fd: usize) -> Result<Arc<Inode>, Errno> {
    let f = file(fd)?;
    let handle = f.lock().tmpfs();
    handle.map(|h| h.inode).ok_or(Errno::EROFS)
}

/// The tmpfs inode at `path` (relative to `dirfd`; `AT_EMPTY_PATH` with an empty path:
/// the descriptor's); `EROFS` for an existing file elsewhere.
fn path_inode(dirfd: usize, path: usize, flags: usize) -> Result<Arc<Inode>, Errno> {
    if flags & AT_EMPTY_PATH != 0 && read_cstr(path, PATH_MAX)?.is_empty() {
        return fd_inode(dirfd);
    }
    let path = abs_path(dirfd, path)?;
    match target(path, flags & AT_SYMLINK_NOFOLLOW == 0)? {
        Target::Tmpfs(_, inode) => Ok(inode),
        Target::Elsewhere(p) => {
            stat_path(&p, flags & AT_SYMLINK_NOFOLLOW == 0)?;
            Err(Errno::EROFS)
        }
    }
}

pub fn fchmod(fd: usize, mode: usize) -> SysResult {
    let inode = fd_inode(fd)?;
    tmpfs::chmod(&inode, mode as u32);
    Ok(0)
}

pub fn fchmodat(dirfd: usize, path: usize, mode: usize) -> SysResult {
    let inode = path_inode(dirfd, path, 0)?;
    tmpfs::chmod(&inode, mode as u32);
    Ok(0)
}

/// A `uid_t`/`gid_t` argument: `None` for -1 (unchanged).
fn id_arg(id: usize) -> Option<u32> {
    let id = id as u32;
    (id != u32::MAX).then_some(id)
}

pub fn fchown(fd: usize, uid: usize, gid: usize) -> SysResult {
    let inode = fd_inode(fd)?;
    tmpfs::chown(&inode, id_arg(uid), id_arg(gid));
    Ok(0)
}

pub fn fchownat(dirfd: usize, path: usize, uid: usize, gid: usize, flags: usize) -> SysResult {
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let inode = path_inode(dirfd, path, flags)?;
    tmpfs::chown(&inode, id_arg(uid), id_arg(gid));
    Ok(0)
}

/// One `struct timespec` of `utimensat`.
fn set_time(sec: u64, nsec: u64) -> Result<SetTime, Errno> {
    match nsec {
        UTIME_NOW => Ok(SetTime::Now),
        UTIME_OMIT => Ok(SetTime::Omit),
        n if n < NSEC_PER_SEC => Ok(SetTime::At(Timespec {
            sec: sec as i64,
            nsec: n as u32,
        })),
        _ => Err(Errno::EINVAL),
    }
}

pub fn utimensat(dirfd: usize, path: usize, times: usize, flags: usize) -> SysResult {
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let (atime, mtime) = if times == 0 {
        (SetTime::Now, SetTime::Now)
    } else {
        let mut b = [0u8; 32];
        copy_from_user(&mut b, times)?;
        let word = |i: usize| u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
        (set_time(word(0), word(1))?, set_time(word(2), word(3))?)
    };
    // A null path: the descriptor itself (futimens).
    let inode = if path == 0 {
        if dirfd == AT_FDCWD {
            return Err(Errno::EFAULT);
        }
        fd_inode(dirfd)?
    } else {
        path_inode(dirfd, path, flags)?
    };
    tmpfs::set_times(&inode, atime, mtime);
    Ok(0)
}

/// `fsync`, `fdatasync`: a tmpfs file has nothing to write back, nor has any other.
pub fn fsync(fd: usize) -> SysResult {
    file(fd)?;
    Ok(0)
}

pub fn memfd_create(name: usize, flags: usize) -> SysResult {
    if flags & !(MFD_CLOEXEC | MFD_ALLOW_SEALING) != 0 {
        return Err(Errno::EINVAL);
    }
    let name = read_cstr(name, PATH_MAX)?;
    if name.len() > MFD_NAME_MAX {
        return Err(Errno::EINVAL);
    }
    let file = tmpfs::memfd(&name)?;
    proc::current()
        .group
        .lock()
        .fds
        .insert(file, flags & MFD_CLOEXEC != 0)
}

/// `umask(mask)`: sets the file-mode creation mask, returns the old one.
pub fn umask_call(mask: usize) -> SysResult {
    let me = proc::current();
    let mut inner = me.group.lock();
    let old = inner.umask;
    inner.umask = mask as u32 & 0o777;
    Ok(old as usize)
}
