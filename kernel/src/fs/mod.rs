//! Files: the [`File`] trait every kind of open file implements (the read-only
//! initramfs, tmpfs, `/proc`, pipes, the console), open file descriptions, and the
//! per-process descriptor table.

#![deny(unsafe_code)]

pub mod dev;
pub mod initramfs;
pub mod pipe;
pub mod poll;
pub mod procfs;
pub mod tmpfs;
pub mod tty;

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering};

use pagoda_mm::addr::PAGE_SIZE;
use pagoda_mm::vm::MemObject;
use spin::{Mutex, Once};

use crate::errno::Errno;
use initramfs::{Initramfs, Kind, LookupError, Node, S_IFDIR, S_IFLNK};

/// The initramfs, set once at boot.
static ROOT: Once<Initramfs> = Once::new();

/// Installs the initramfs (an empty one when the firmware passed none).
pub fn init(archive: &'static [u8]) {
    ROOT.call_once(|| Initramfs::new(archive));
}

/// The initramfs.
pub fn root() -> &'static Initramfs {
    static EMPTY: Initramfs = Initramfs::empty();
    ROOT.get().unwrap_or(&EMPTY)
}

/// Most open descriptors per process (as `RLIMIT_NOFILE`'s usual soft limit).
pub const MAX_FDS: usize = 1024;

/// `st_mode` type bits (a directory's, `S_IFDIR`, is the cpio format's).
pub(crate) const S_IFIFO: u32 = 0o010000;
pub(crate) const S_IFREG: u32 = 0o100000;
pub(crate) const S_IFCHR: u32 = 0o020000;
pub(crate) const S_IFBLK: u32 = 0o060000;

/// What `fstat` reports (the fields of Linux's `struct stat` pagoda fills).
#[derive(Clone, Copy, Debug, Default)]
pub struct Stat {
    /// Inode number.
    pub ino: u64,
    /// Type and permission bits.
    pub mode: u32,
    /// Size in bytes.
    pub size: u64,
    /// Device number for character devices.
    pub rdev: u64,
    /// Modification time (and access and change time), seconds since the epoch.
    pub mtime: u64,
    /// The file system's device (`st_dev`): [`DEV_ROOT`], [`DEV_DEV`], [`DEV_PROC`],
    /// [`DEV_PIPE`] or a tmpfs instance's, anonymous device numbers (major 0) as Linux
    /// gives to file systems without a disk. `df` and `find -xdev` tell file systems
    /// apart by them.
    pub dev: u64,
    /// Hard links (`None`: 1, for files that do not count them).
    pub nlink: Option<u32>,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// 512-byte blocks allocated (`None`: the size rounded up).
    pub blocks: Option<u64>,
    /// Access, modification and change times with nanoseconds (`None`: `mtime` for all
    /// three).
    pub times: Option<Times>,
}

/// A time with nanoseconds (`struct timespec`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timespec {
    /// Seconds since the epoch.
    pub sec: i64,
    /// Nanoseconds (below 10^9).
    pub nsec: u32,
}

/// The three times of a file.
#[derive(Clone, Copy, Debug, Default)]
pub struct Times {
    /// Last access.
    pub atime: Timespec,
    /// Last change of the contents.
    pub mtime: Timespec,
    /// Last change of the inode.
    pub ctime: Timespec,
}

/// `st_dev` of the initramfs.
pub const DEV_ROOT: u64 = 1;
/// `st_dev` of `/dev`.
pub const DEV_DEV: u64 = 5;
/// `st_dev` of `/proc`.
pub const DEV_PROC: u64 = 21;
/// `st_dev` of pipes.
pub const DEV_PIPE: u64 = 12;

/// Normalises `.` and `..` components of an absolute path (lexically: `..` of `/` is
/// `/`); a trailing `/` is kept (it asks for a directory). `ENOMEM` without memory for
/// the result.
pub fn normalize(path: &str) -> Result<String, Errno> {
    let mut parts: Vec<&str> = Vec::new();
    parts
        .try_reserve(path.bytes().filter(|&b| b == b'/').count() + 1)
        .map_err(|_| Errno::ENOMEM)?;
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    let mut out = String::new();
    out.try_reserve(path.len() + 2).map_err(|_| Errno::ENOMEM)?;
    for p in &parts {
        out.push('/');
        out.push_str(p);
    }
    if out.is_empty() {
        out.push('/');
    }
    if (path.ends_with('/') || path.ends_with("/.")) && !out.ends_with('/') {
        out.push('/');
    }
    Ok(out)
}

/// `d_type` of a directory entry: character device, directory, regular file, link.
pub const DT_CHR: u8 = 2;
/// `d_type` of a directory.
pub const DT_DIR: u8 = 4;
/// `d_type` of a block device.
pub const DT_BLK: u8 = 6;
/// `d_type` of a regular file.
pub const DT_REG: u8 = 8;
/// `d_type` of a symbolic link.
pub const DT_LNK: u8 = 10;

/// One entry of a directory listing, as `getdents64` reports it.
#[derive(Clone, Copy, Debug)]
pub struct DirEntry<'a> {
    /// Inode number.
    pub ino: u64,
    /// `d_type` ([`DT_DIR`], [`DT_REG`], ...).
    pub kind: u8,
    /// The name within the directory.
    pub name: &'a str,
}

/// A `String` holding `parts` one after the other, allocated fallibly (`ENOMEM`).
pub fn concat(parts: &[&str]) -> Result<String, Errno> {
    let mut out = String::new();
    out.try_reserve(parts.iter().map(|p| p.len()).sum())
        .map_err(|_| Errno::ENOMEM)?;
    for p in parts {
        out.push_str(p);
    }
    Ok(out)
}

/// An open file: what a descriptor refers to. Each kind of file is one implementation:
/// the console ([`tty::Console`]), a pipe end ([`pipe::PipeEnd`]), a file or directory
/// of the initramfs ([`initramfs::NodeFile`]), a `/proc` file ([`procfs::MapsFile`],
/// [`procfs::GeneratedFile`]). The defaults are those of a file that cannot do the
/// operation, with Linux's errors.
pub trait File: Send {
    /// Reads at the file position, moving it.
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Errno>;

    /// Reads at `offset` without moving the file position (`pread64`); `ESPIPE` for a
    /// file without positions.
    fn read_at(&mut self, _offset: usize, _buf: &mut [u8]) -> Result<usize, Errno> {
        Err(Errno::ESPIPE)
    }

    /// Writes at the file position; `EBADF` for a file not open for writing.
    fn write(&mut self, _buf: &[u8]) -> Result<usize, Errno> {
        Err(Errno::EBADF)
    }

    /// Writes at the end of the file, wherever it is when the write happens, and moves
    /// the position there (`O_APPEND`); a file without an end writes as [`write`].
    ///
    /// [`write`]: File::write
    fn append(&mut self, buf: &[u8]) -> Result<usize, Errno> {
        self.write(buf)
    }

    /// Writes at `offset` without moving the file position (`pwrite64`); `ESPIPE` for a
    /// file without positions.
    fn write_at(&mut self, _offset: usize, _buf: &[u8]) -> Result<usize, Errno> {
        Err(Errno::ESPIPE)
    }

    /// Sets the size of a regular file open for writing (`ftruncate`); `EINVAL` for
    /// anything else.
    fn truncate(&mut self, _len: u64) -> Result<(), Errno> {
        Err(Errno::EINVAL)
    }

    /// Whether `mmap` may map it for reading and for writing (the access mode it was
    /// opened with; read-only by default: the initramfs).
    fn mmap_access(&self) -> (bool, bool) {
        (true, false)
    }

    /// The tmpfs inode behind an open tmpfs file or directory (`fchmod`, `futimens`,
    /// `fstatfs`); `None` for other files.
    fn tmpfs(&self) -> Option<tmpfs::Handle> {
        None
    }

    /// `poll` events ready now (`POLLIN`, `POLLOUT`, `POLLHUP`, `POLLERR`); a regular
    /// file never blocks.
    fn poll(&self) -> u16 {
        poll::POLLIN | poll::POLLOUT
    }

    /// Moves the file position (`whence`: 0 set, 1 current, 2 end); `ESPIPE` for a file
    /// without positions.
    fn lseek(&mut self, _offset: i64, _whence: u32) -> Result<usize, Errno> {
        Err(Errno::ESPIPE)
    }

    /// The file's metadata.
    fn stat(&self) -> Stat;

    /// Where a read or write that answered `EAGAIN` waits for progress; `None`: it
    /// polls (the console).
    fn waiter(&self) -> Option<pipe::Waiter> {
        None
    }

    /// Whether it is a terminal (`ioctl`'s terminal requests).
    fn is_tty(&self) -> bool {
        false
    }

    /// Lists a directory from the file position on (`getdents64`): calls `emit` with
    /// each entry until it returns `false` (no room), moving the position past each
    /// entry it took. `ENOTDIR` for a file that is not a directory.
    fn read_dir(&mut self, _emit: &mut dyn FnMut(&DirEntry<'_>) -> bool) -> Result<(), Errno> {
        Err(Errno::ENOTDIR)
    }

    /// The absolute path of a directory, for paths relative to a directory descriptor
    /// (`openat(dirfd, ...)`); `ENOTDIR` for a file that is not a directory.
    fn dir_path(&self) -> Result<String, Errno> {
        Err(Errno::ENOTDIR)
    }

    /// What `/proc/PID/fd/N` links to, as Linux writes it: the file's path, or
    /// `pipe:[INODE]` for a pipe.
    fn describe(&self, out: &mut dyn core::fmt::Write) -> core::fmt::Result;

    /// The memory object `mmap` maps (one per file: see
    /// [`initramfs::mem_object`]); `Ok(None)` for a file that cannot be mapped
    /// (`ENODEV`).
    fn mem_object(&self) -> Result<Option<Arc<MemObject>>, Errno> {
        Ok(None)
    }

    /// Heap bytes the file holds besides itself (generated text), for the admission
    /// check of [`open`].
    fn heap_bytes(&self) -> usize {
        0
    }
}

/// Copies what `data` holds from `offset` into `buf`; the bytes copied (0 past the end).
pub(crate) fn copy_at(data: &[u8], offset: usize, buf: &mut [u8]) -> usize {
    let rest = data.get(offset..).unwrap_or(&[]);
    let n = rest.len().min(buf.len());
    buf[..n].copy_from_slice(&rest[..n]);
    n
}

/// Moves a file position within a file of `len` bytes.
pub(crate) fn seek(pos: &mut usize, len: usize, offset: i64, whence: u32) -> Result<usize, Errno> {
    let base = match whence {
        0 => 0,
        1 => *pos as i64,
        2 => len as i64,
        _ => return Err(Errno::EINVAL),
    };
    let new = base
        .checked_add(offset)
        .filter(|&p| p >= 0)
        .ok_or(Errno::EINVAL)?;
    *pos = new as usize;
    Ok(*pos)
}

/// Looks up `path` (absolute, as the caller spelled it) like Linux's path walk, following
/// symbolic links (the last one too): `ENOENT` for an empty path or a missing file,
/// `ENOTDIR` when a component before the last is not a directory or the path ends in
/// `/` after a file, `ELOOP` past [`pagoda_formats::cpio::MAX_SYMLINKS`] links. `/proc/PID/exe`
/// leads to the program the process runs.
pub fn lookup(path: &str) -> Result<Node, Errno> {
    if let Some(exe) = procfs::exe_link(path)? {
        return walk(&exe, true);
    }
    walk(path, true)
}

/// [`lookup`] without following a symbolic link in the last component (`lstat`,
/// `readlink`).
pub fn lookup_nofollow(path: &str) -> Result<Node, Errno> {
    walk(path, false)
}

/// The initramfs walk of `path`, its errors as `Errno`s.
fn walk(path: &str, follow_last: bool) -> Result<Node, Errno> {
    if path.is_empty() {
        return Err(Errno::ENOENT);
    }
    root().resolve(path, follow_last).map_err(|e| match e {
        LookupError::NotFound => Errno::ENOENT,
        LookupError::NotDir => Errno::ENOTDIR,
        LookupError::Loop => Errno::ELOOP,
        LookupError::TooLong => Errno::ENAMETOOLONG,
        LookupError::NoMemory => Errno::ENOMEM,
    })
}

/// `openat`'s checks of the access mode against what was found: `ENOTDIR` for
/// `O_DIRECTORY` on a file, `EISDIR` / `EROFS` for any write access (everything is
/// read-only).
pub fn check_open_mode(is_dir: bool, flags: usize) -> Result<(), Errno> {
    /// The access-mode bits of the open flags.
    const O_ACCMODE: usize = 3;
    /// `O_DIRECTORY`: fail unless a directory.
    const O_DIRECTORY: usize = 0o200000;
    if flags & O_DIRECTORY != 0 && !is_dir {
        return Err(Errno::ENOTDIR);
    }
    if flags & O_ACCMODE != 0 {
        return Err(if is_dir { Errno::EISDIR } else { Errno::EROFS });
    }
    Ok(())
}

/// `openat`'s checks for a device node (readable and writable): only `O_DIRECTORY` is
/// refused (`ENOTDIR`).
pub fn check_open_mode_device(flags: usize) -> Result<(), Errno> {
    /// `O_DIRECTORY`: fail unless a directory.
    const O_DIRECTORY: usize = 0o200000;
    if flags & O_DIRECTORY != 0 {
        return Err(Errno::ENOTDIR);
    }
    Ok(())
}

/// Metadata of an initramfs node: type, mode bits and time as the archive gives them.
pub fn node_stat(node: &Node) -> Stat {
    let kind = match node.kind {
        Kind::Dir => S_IFDIR,
        Kind::File => S_IFREG,
        Kind::Symlink => S_IFLNK,
    };
    Stat {
        ino: node.ino,
        mode: kind | node.perm,
        size: node.data.len() as u64,
        rdev: 0,
        mtime: u64::from(node.mtime),
        dev: DEV_ROOT,
        ..Stat::default()
    }
}

/// A shared open file description (shared across `fork`, as in Linux).
pub type FileRef = Arc<OpenFile<dyn File>>;

/// An open file description: a [`File`] behind its lock and the status flags set at
/// `open` or by `fcntl(F_SETFL)`, counted in [`OPEN_FILES`] from [`open`] until the last
/// descriptor referring to it is closed.
/// The file lives inside the description (one heap object per open file, as before
/// files were a trait: `F` is unsized to `dyn File` when the `Arc` is made).
pub struct OpenFile<F: ?Sized + File> {
    status: AtomicUsize,
    file: Mutex<F>,
}

/// `O_NONBLOCK`: system calls on the file return `EAGAIN` instead of waiting.
pub const O_NONBLOCK: usize = 0o4000;
/// The status flags an open file description keeps: the access mode, and the flags
/// `fcntl(F_SETFL)` may change.
const STATUS_KEPT: usize = 3 | STATUS_SETTABLE;
/// The status flags `fcntl(F_SETFL)` may change: `O_APPEND` and `O_NONBLOCK`.
const STATUS_SETTABLE: usize = tmpfs::O_APPEND | O_NONBLOCK;

impl<F: ?Sized + File> OpenFile<F> {
    /// Whether `O_APPEND` is set.
    pub fn appending(&self) -> bool {
        self.status.load(Ordering::Relaxed) & tmpfs::O_APPEND != 0
    }

    /// Whether `O_NONBLOCK` is set.
    pub fn nonblocking(&self) -> bool {
        self.status.load(Ordering::Relaxed) & O_NONBLOCK != 0
    }

    /// The status flags (`F_GETFL`).
    pub fn status(&self) -> usize {
        self.status.load(Ordering::Relaxed)
    }

    /// Sets the status flags `F_SETFL` may change (`O_APPEND`, `O_NONBLOCK`).
    pub fn set_status(&self, flags: usize) {
        let _ = self
            .status
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |s| {
                Some(s & !STATUS_SETTABLE | flags & STATUS_SETTABLE)
            });
    }
}

impl<F: ?Sized + File> core::ops::Deref for OpenFile<F> {
    type Target = Mutex<F>;
    fn deref(&self) -> &Mutex<F> {
        &self.file
    }
}

impl<F: ?Sized + File> Drop for OpenFile<F> {
    fn drop(&mut self) {
        OPEN_FILES.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Open file descriptions in the whole system (Linux's `nr_files`).
static OPEN_FILES: AtomicUsize = AtomicUsize::new(0);

/// The most open file descriptions the system holds at once: Linux's `fs.file-max`
/// default, a tenth of RAM in kilobytes, at least [`NR_FILE_MIN`]. Set at boot from the
/// RAM size ([`set_file_max`]).
static FILE_MAX: AtomicUsize = AtomicUsize::new(NR_FILE_MIN);

/// The smallest `fs.file-max` (Linux's `NR_FILE`).
const NR_FILE_MIN: usize = 8192;

/// Sets `fs.file-max` for `ram_frames` 4 KiB frames of RAM.
pub fn set_file_max(ram_frames: usize) {
    let max = (ram_frames * (PAGE_SIZE / 1024) / 10).max(NR_FILE_MIN);
    FILE_MAX.store(max, Ordering::Relaxed);
}

/// Heap bytes one open file description takes, besides the file and its generated text:
/// the `Arc` with its counts, the status and the lock (for the admission check of
/// [`open`]).
const OPEN_FILE_BYTES: usize =
    2 * core::mem::size_of::<usize>() + core::mem::size_of::<OpenFile<tty::Console>>();

/// Opens `file` as a new description: `ENFILE` when the system holds `fs.file-max`
/// descriptions already, `ENOMEM` when kernel memory is down to its reserve (a user
/// cannot make the kernel hold more than it may).
pub fn open<F: File + 'static>(file: F, status: usize) -> Result<FileRef, Errno> {
    let max = FILE_MAX.load(Ordering::Relaxed);
    if OPEN_FILES
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
            (n < max).then_some(n + 1)
        })
        .is_err()
    {
        return Err(Errno::ENFILE);
    }
    let text = core::mem::size_of::<F>() + file.heap_bytes();
    if !crate::memory::frames::user_may_take(OPEN_FILE_BYTES + text) {
        OPEN_FILES.fetch_sub(1, Ordering::Relaxed);
        return Err(Errno::ENOMEM);
    }
    // From here the count is the description's: dropping it gives the count back.
    Ok(Arc::new(OpenFile {
        status: AtomicUsize::new(status & STATUS_KEPT),
        file: Mutex::new(file),
    }))
}

/// Open file descriptions in the system now, and `fs.file-max`.
pub fn open_files() -> (usize, usize) {
    (
        OPEN_FILES.load(Ordering::Relaxed),
        FILE_MAX.load(Ordering::Relaxed),
    )
}

/// One descriptor: the open file and its close-on-exec flag.
#[derive(Clone)]
struct Slot {
    file: FileRef,
    cloexec: bool,
}

/// A process's descriptor table.
pub struct FdTable {
    slots: Vec<Option<Slot>>,
    /// Descriptors are below this (`RLIMIT_NOFILE`'s soft limit, at most [`MAX_FDS`]).
    limit: usize,
}

impl Default for FdTable {
    fn default() -> FdTable {
        FdTable {
            slots: Vec::new(),
            limit: MAX_FDS,
        }
    }
}

impl FdTable {
    /// A table with descriptors 0, 1 and 2 on the console.
    pub fn with_console() -> Result<FdTable, Errno> {
        let console = open(tty::Console, 0)?;
        let slot = Some(Slot {
            file: console,
            cloexec: false,
        });
        let mut slots = Vec::new();
        slots.try_reserve(3).map_err(|_| Errno::ENOMEM)?;
        slots.extend([slot.clone(), slot.clone(), slot]);
        Ok(FdTable {
            slots,
            limit: MAX_FDS,
        })
    }

    /// A copy for a child process (`fork`), sharing every open file description;
    /// `ENOMEM` instead of failing the kernel when there is no memory for it.
    pub fn try_clone(&self) -> Result<FdTable, Errno> {
        let mut slots = Vec::new();
        slots
            .try_reserve(self.slots.len())
            .map_err(|_| Errno::ENOMEM)?;
        slots.extend(self.slots.iter().cloned());
        Ok(FdTable {
            slots,
            limit: self.limit,
        })
    }

    /// Sets the bound of new descriptor numbers (`RLIMIT_NOFILE`; open ones stay).
    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit.min(MAX_FDS);
    }

    /// The file behind `fd`.
    pub fn get(&self, fd: usize) -> Result<FileRef, Errno> {
        self.slots
            .get(fd)
            .and_then(|s| s.as_ref())
            .map(|s| s.file.clone())
            .ok_or(Errno::EBADF)
    }

    /// Installs `file` at the lowest free descriptor.
    pub fn insert(&mut self, file: FileRef, cloexec: bool) -> Result<usize, Errno> {
        let slot = Some(Slot { file, cloexec });
        if let Some(i) = self.slots.iter().position(Option::is_none)
            && i < self.limit
        {
            self.slots[i] = slot;
            return Ok(i);
        }
        if self.slots.len() >= self.limit {
            return Err(Errno::EMFILE);
        }
        self.slots.try_reserve(1).map_err(|_| Errno::ENOMEM)?;
        self.slots.push(slot);
        Ok(self.slots.len() - 1)
    }

    /// Closes `fd`.
    pub fn close(&mut self, fd: usize) -> Result<(), Errno> {
        self.slots
            .get_mut(fd)
            .and_then(Option::take)
            .map(drop)
            .ok_or(Errno::EBADF)
    }

    /// Installs `file` at the lowest free descriptor at or above `min` (`F_DUPFD`).
    pub fn insert_from(
        &mut self,
        min: usize,
        file: FileRef,
        cloexec: bool,
    ) -> Result<usize, Errno> {
        if min >= self.limit {
            return Err(Errno::EINVAL);
        }
        let free = (min..self.limit).find(|&i| self.slots.get(i).is_none_or(Option::is_none));
        let fd = free.ok_or(Errno::EMFILE)?;
        self.install(fd, file, cloexec)?;
        Ok(fd)
    }

    /// Puts `file` at descriptor `fd`, closing what was there (`dup3`).
    pub fn install(&mut self, fd: usize, file: FileRef, cloexec: bool) -> Result<(), Errno> {
        if fd >= self.limit {
            return Err(Errno::EBADF);
        }
        if fd >= self.slots.len() {
            self.slots
                .try_reserve(fd + 1 - self.slots.len())
                .map_err(|_| Errno::ENOMEM)?;
            self.slots.resize(fd + 1, None);
        }
        self.slots[fd] = Some(Slot { file, cloexec });
        Ok(())
    }

    /// The lowest open descriptor at or above `from` (listing `/proc/PID/fd`).
    pub fn next_open(&self, from: usize) -> Option<usize> {
        (from..self.slots.len()).find(|&fd| self.slots[fd].is_some())
    }

    /// The close-on-exec flag of `fd`.
    pub fn cloexec(&self, fd: usize) -> Result<bool, Errno> {
        self.slots
            .get(fd)
            .and_then(|s| s.as_ref())
            .map(|s| s.cloexec)
            .ok_or(Errno::EBADF)
    }

    /// Sets the close-on-exec flag of `fd`.
    pub fn set_cloexec(&mut self, fd: usize, on: bool) -> Result<(), Errno> {
        let slot = self
            .slots
            .get_mut(fd)
            .and_then(|s| s.as_mut())
            .ok_or(Errno::EBADF)?;
        slot.cloexec = on;
        Ok(())
    }

    /// Closes every close-on-exec descriptor (`execve`).
    pub fn close_on_exec(&mut self) {
        for slot in &mut self.slots {
            if slot.as_ref().is_some_and(|s| s.cloexec) {
                *slot = None;
            }
        }
    }
}
