//! tmpfs: the writable in-memory file system, the memory manager's own. A file's data is
//! the page cache of its memory object ([`MemObject::memory`]): `read` and `write` copy
//! to and from the object's frames, and a `MAP_SHARED` mapping maps the same frames, so
//! a store through a mapping is what `read` sees and the reverse. There is no other copy
//! of the data (nothing to write back: `fsync` and `msync` have nothing to do).
//!
//! ```text
//!  Tmpfs (one per mount) ── root: Inode (Dir) ── entries: name → Arc<Inode>
//!    │ account: Account (size cap, inode cap)        │
//!    │                                               ├─ Inode (File) ── MemObject::memory
//!    │                                               │                    page index → frame
//!    │                                               ├─ Inode (Symlink) ── target
//!    │                                               └─ Inode (Dir) ── ...
//!    └─ charged: every page (on allocation), every inode and name (heap bytes)
//! ```
//!
//! Each instance has a size cap (Linux's default: half of RAM), against which the pages
//! of its files *and* the heap its inodes and names take are charged: a full file system
//! answers `ENOSPC`, a fault of a mapping past the cap gets `SIGBUS`. Its inodes are
//! capped too (Linux's default `nr_inodes`: half of RAM's pages). The heap a new inode or
//! name takes is admitted only while free memory is above the kernel's reserve
//! ([`crate::memory::frames::user_may_take`]), like every other kernel object a user
//! asks for; a page is allocated only while user memory may grow
//! ([`KernelFrames`]).
//!
//! Unlinking removes the name; the inode lives while an open file or a mapping holds it
//! (an `Arc`), and its pages go with the last of them: the kernel's last reference
//! releases them here ([`Inode`]'s `Drop`), an area's last reference in `pagoda-mm`.
//!
//! Locking: each directory's entries have a lock, each inode's metadata another; every
//! change to the name space (create, link, unlink, rename) holds the instance's `ns`
//! lock first, so a rename may hold two directories' locks without deadlock (lookups
//! hold one directory lock at a time). A file's size changes under its metadata lock
//! (writes and truncations are ordered) and inside the object under its page lock (a
//! fault's size check and a truncation are ordered).

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use pagoda_formats::cpio::MAX_SYMLINKS;
use pagoda_mm::addr::{PAGE_SHIFT, PAGE_SIZE};
use pagoda_mm::vm::{FrameSource, MemObject, PageAccount, PageError, unmap_object_tail};
use spin::Mutex;

use super::{DT_DIR, DT_LNK, DT_REG, DirEntry, File, FileRef, S_IFDIR, S_IFLNK, S_IFREG};
use super::{Stat, Times, Timespec};
use crate::errno::Errno;
use crate::memory::reclaim::KernelSpaces;
use crate::memory::uspace::{KernelFrames, read_cached, write_cached, zero_cached};

/// Longest name in a directory (`NAME_MAX`).
pub const NAME_MAX: usize = 255;
/// Longest symbolic-link target, its NUL included (`PATH_MAX`).
const PATH_MAX: usize = 4096;
/// Largest file size (Linux's `MAX_LFS_FILESIZE` on 64-bit machines).
pub const MAX_FILE_SIZE: u64 = i64::MAX as u64;
/// Most tmpfs instances mounted at once (each mount is a kernel object a user makes).
const MAX_MOUNTS: usize = 32;
/// Heap bytes an inode is charged for besides its name and link target: the inode with
/// its `Arc` counts, and the memory object of a file.
const INODE_BYTES: u64 = (core::mem::size_of::<Inode>()
    + 2 * core::mem::size_of::<usize>()
    + core::mem::size_of::<MemObject>()
    + 2 * core::mem::size_of::<usize>()) as u64;
/// Heap bytes a directory entry is charged for besides its name: the key and value and
/// a share of the B-tree node around them (nodes are at least half full).
const ENTRY_BYTES: u64 =
    2 * (core::mem::size_of::<String>() + core::mem::size_of::<Arc<Inode>>()) as u64;
/// `st_dev` of the first tmpfs instance; the others follow (anonymous device numbers,
/// major 0, as Linux gives file systems without a disk).
const DEV_FIRST: u64 = 40;
/// File-type bits of `st_mode`.
const S_IFMT: u32 = 0o170000;
/// Permission bits a `chmod` may set (with set-user-ID, set-group-ID and sticky).
const MODE_BITS: u32 = 0o7777;

/// What an instance may hold, and what it holds: bytes (pages and heap), inodes.
pub struct Account {
    limit: u64,
    used: AtomicU64,
    max_inodes: u64,
    inodes: AtomicU64,
}

impl Account {
    /// Takes `bytes` from the cap; `false` (nothing taken) if they do not fit.
    fn charge(&self, bytes: u64) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                u.checked_add(bytes).filter(|&n| n <= self.limit)
            })
            .is_ok()
    }

    /// Gives `bytes` back.
    fn uncharge(&self, bytes: u64) {
        self.used.fetch_sub(bytes, Ordering::AcqRel);
    }

    /// Takes an inode number from the inode cap.
    fn take_inode(&self) -> bool {
        self.inodes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_inodes).then_some(n + 1)
            })
            .is_ok()
    }
}

impl PageAccount for Account {
    fn charge_page(&self) -> bool {
        let ok = self.charge(PAGE_SIZE as u64);
        if ok {
            SHMEM_PAGES.fetch_add(1, Ordering::Relaxed);
        }
        ok
    }

    fn uncharge_pages(&self, pages: u64) {
        self.uncharge(pages * PAGE_SIZE as u64);
        SHMEM_PAGES.fetch_sub(pages, Ordering::Relaxed);
    }
}

/// Pages held by every tmpfs file in the system (`Shmem` of `/proc/meminfo`).
static SHMEM_PAGES: AtomicU64 = AtomicU64::new(0);

/// Pages held by tmpfs files now (charged: allocated or being allocated).
pub fn shmem_pages() -> u64 {
    SHMEM_PAGES.load(Ordering::Relaxed)
}

/// Metadata of an inode.
#[derive(Clone, Copy)]
struct Meta {
    /// Type and permission bits.
    mode: u32,
    nlink: u32,
    uid: u32,
    gid: u32,
    atime: Timespec,
    mtime: Timespec,
    ctime: Timespec,
}

/// What an inode is.
enum Body {
    /// A regular file: its data.
    File(Arc<MemObject>),
    /// A directory.
    Dir(Mutex<Dir>),
    /// A symbolic link: its target.
    Symlink(String),
}

/// A directory's entries, its parent, and whether it was removed (nothing may be created
/// in a removed directory).
struct Dir {
    entries: BTreeMap<String, Arc<Inode>>,
    parent: Weak<Inode>,
    removed: bool,
}

/// A file, directory or symbolic link of a tmpfs.
pub struct Inode {
    ino: u64,
    account: Arc<Account>,
    /// Bytes charged for it (given back when it goes).
    charged: u64,
    meta: Mutex<Meta>,
    body: Body,
}

impl Drop for Inode {
    fn drop(&mut self) {
        let body = core::mem::replace(&mut self.body, Body::Symlink(String::new()));
        if let Body::File(obj) = body
            && let Some(obj) = Arc::into_inner(obj)
        {
            // No mapping holds the object any more: its pages go now.
            obj.release(&KernelFrames);
        }
        self.account.uncharge(self.charged);
        self.account.inodes.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The time now, for inode times.
fn now() -> Timespec {
    let ns = crate::drivers::rtc::realtime_ns();
    Timespec {
        sec: (ns / 1_000_000_000) as i64,
        nsec: (ns % 1_000_000_000) as u32,
    }
}

impl Inode {
    /// The directory body, or `ENOTDIR`.
    fn dir(&self) -> Result<&Mutex<Dir>, Errno> {
        match &self.body {
            Body::Dir(d) => Ok(d),
            _ => Err(Errno::ENOTDIR),
        }
    }

    /// Whether it is a directory.
    pub fn is_dir(&self) -> bool {
        matches!(self.body, Body::Dir(_))
    }

    /// The memory object of a regular file.
    fn object(&self) -> Option<&Arc<MemObject>> {
        match &self.body {
            Body::File(obj) => Some(obj),
            _ => None,
        }
    }

    /// `d_type` of the inode.
    fn d_type(&self) -> u8 {
        match self.body {
            Body::File(_) => DT_REG,
            Body::Dir(_) => DT_DIR,
            Body::Symlink(_) => DT_LNK,
        }
    }

    /// The inode's size in bytes.
    fn size(&self) -> u64 {
        match &self.body {
            Body::File(obj) => obj.size(),
            // Linux's tmpfs: a directory's size counts its entries.
            Body::Dir(d) => (d.lock().entries.len() as u64 + 2) * 20,
            Body::Symlink(t) => t.len() as u64,
        }
    }

    /// Its metadata as `stat` reports it, on the file system with device number `dev`.
    pub fn stat(&self, dev: u64) -> Stat {
        let m = *self.meta.lock();
        let blocks = self
            .object()
            .map_or(0, |o| o.resident_pages() as u64 * (PAGE_SIZE as u64 / 512));
        Stat {
            ino: self.ino,
            mode: m.mode,
            size: self.size(),
            rdev: 0,
            mtime: m.mtime.sec.max(0) as u64,
            dev,
            nlink: Some(m.nlink),
            uid: m.uid,
            gid: m.gid,
            blocks: Some(blocks),
            times: Some(Times {
                atime: m.atime,
                mtime: m.mtime,
                ctime: m.ctime,
            }),
        }
    }

    /// Marks a change of the inode (`ctime`).
    fn touch_ctime(&self) {
        self.meta.lock().ctime = now();
    }

    /// Marks a change of the contents (`mtime` and `ctime`).
    fn touch_mtime(&self) {
        let t = now();
        let mut m = self.meta.lock();
        m.mtime = t;
        m.ctime = t;
    }

    /// Reads file bytes at `offset` into `buf`; the bytes read (0 at or past the end).
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        let obj = self.object().ok_or(Errno::EISDIR)?;
        let size = obj.size();
        if offset >= size {
            return Ok(0);
        }
        let n = ((size - offset).min(buf.len() as u64)) as usize;
        let mut done = 0;
        while done < n {
            let at = offset + done as u64;
            let in_page = (at % PAGE_SIZE as u64) as usize;
            let len = (PAGE_SIZE - in_page).min(n - done);
            let dst = &mut buf[done..done + len];
            match obj.cached(at >> PAGE_SHIFT, &KernelFrames) {
                Some(pa) => {
                    read_cached(pa, in_page, dst);
                    KernelFrames.put(pa);
                }
                // A hole reads as zeros.
                None => dst.fill(0),
            }
            done += len;
        }
        let mut m = self.meta.lock();
        // relatime: the access time moves when it is older than the last change.
        if m.atime <= m.mtime || m.atime <= m.ctime {
            m.atime = now();
        }
        Ok(n)
    }

    /// Writes `buf` at `offset` (at the end of the file when `append`); the bytes
    /// written and the offset after them. `ENOSPC` when the file system is full before
    /// any byte was written (a short count after), `EFBIG` past the largest size.
    fn write_at(&self, offset: u64, buf: &[u8], append: bool) -> Result<(usize, u64), Errno> {
        let obj = self.object().ok_or(Errno::EISDIR)?;
        // The metadata lock orders writes and truncations of the file.
        let mut meta = self.meta.lock();
        let size = obj.size();
        let offset = if append { size } else { offset };
        if buf.is_empty() {
            return Ok((0, offset));
        }
        if offset >= MAX_FILE_SIZE {
            return Err(Errno::EFBIG);
        }
        let n = (buf.len() as u64).min(MAX_FILE_SIZE - offset) as usize;
        if offset > size {
            // Bytes a mapping stored past the old end in its last page are not data:
            // the gap between the end and the write reads as zeros.
            zero_tail(obj, size, offset);
        }
        let mut done = 0;
        let mut err = None;
        while done < n {
            let at = offset + done as u64;
            let in_page = (at % PAGE_SIZE as u64) as usize;
            let len = (PAGE_SIZE - in_page).min(n - done);
            let pa = match obj.page_for_write(at >> PAGE_SHIFT, &KernelFrames) {
                Ok(pa) => pa,
                Err(e) => {
                    err = Some(match e {
                        PageError::NoSpace => Errno::ENOSPC,
                        PageError::OutOfMemory | PageError::Io => Errno::ENOMEM,
                    });
                    break;
                }
            };
            write_cached(pa, in_page, &buf[done..done + len]);
            KernelFrames.put(pa);
            done += len;
        }
        if done == 0 {
            return Err(err.unwrap_or(Errno::ENOSPC));
        }
        let end = offset + done as u64;
        obj.grow(end);
        let t = now();
        meta.mtime = t;
        meta.ctime = t;
        Ok((done, end))
    }

    /// Sets a regular file's size (`ftruncate`): pages wholly past the new end go (and
    /// every mapping of them, which then faults with `SIGBUS`), the rest of the last
    /// page is zeroed; growing adds a hole.
    fn truncate(&self, len: u64) -> Result<(), Errno> {
        let obj = self.object().ok_or(Errno::EINVAL)?;
        if len > MAX_FILE_SIZE {
            return Err(Errno::EFBIG);
        }
        let mut meta = self.meta.lock();
        let old = obj.size();
        if len < old {
            zero_tail(obj, len, old);
            let from = obj.truncate(len, &KernelFrames);
            unmap_object_tail(obj, from, &mut KernelSpaces::waiting());
        } else if len > old {
            zero_tail(obj, old, len);
            obj.grow(len);
        }
        let t = now();
        meta.mtime = t;
        meta.ctime = t;
        Ok(())
    }
}

/// Zeroes the bytes of the page holding file offset `from` between `from` and `to` (or
/// the page's end): what lies past a file's end in its last page must read as zeros
/// when the file grows over it.
fn zero_tail(obj: &MemObject, from: u64, to: u64) {
    let in_page = (from % PAGE_SIZE as u64) as usize;
    if in_page == 0 {
        return;
    }
    if let Some(pa) = obj.cached(from >> PAGE_SHIFT, &KernelFrames) {
        let len = (to - from).min((PAGE_SIZE - in_page) as u64) as usize;
        zero_cached(pa, in_page, len);
        KernelFrames.put(pa);
    }
}

/// One tmpfs instance (one mount, or the internal one of `memfd_create`).
pub struct Tmpfs {
    account: Arc<Account>,
    root: Arc<Inode>,
    dev: u64,
    next_ino: AtomicU64,
    /// Held by every change of the name space (see the module docs).
    ns: Mutex<()>,
}

/// Options of a new instance (`mount -o size=...,nr_inodes=...,mode=...`).
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Size cap in bytes.
    pub size: u64,
    /// Most inodes.
    pub nr_inodes: u64,
    /// Permission bits of the root directory.
    pub mode: u32,
}

/// RAM frames, as set at boot ([`init`]), for the default caps.
static RAM_FRAMES: AtomicU64 = AtomicU64::new(0);
/// The next instance's device number.
static NEXT_DEV: AtomicU64 = AtomicU64::new(DEV_FIRST);

impl Options {
    /// Linux's defaults: half of RAM, half of RAM's pages as inodes, mode 1777.
    pub fn default_for_ram() -> Options {
        let frames = RAM_FRAMES.load(Ordering::Relaxed);
        Options {
            size: frames / 2 * PAGE_SIZE as u64,
            nr_inodes: (frames / 2).max(1),
            mode: 0o1777,
        }
    }

    /// Parses a `mount` data string (`size=64m,nr_inodes=1k,mode=755`; `size` also as
    /// `N%` of RAM); options of other file systems' kinds are ignored, a bad value is
    /// `EINVAL`.
    pub fn parse(data: &str) -> Result<Options, Errno> {
        let mut o = Options::default_for_ram();
        for opt in data.split(',').filter(|s| !s.is_empty()) {
            let (key, value) = opt.split_once('=').unwrap_or((opt, ""));
            match key {
                "size" => {
                    o.size = if let Some(pct) = value.strip_suffix('%') {
                        let pct: u64 = pct.parse().map_err(|_| Errno::EINVAL)?;
                        RAM_FRAMES.load(Ordering::Relaxed) * PAGE_SIZE as u64 / 100 * pct
                    } else {
                        parse_size(value)?
                    }
                }
                "nr_inodes" => o.nr_inodes = parse_size(value)?,
                "mode" => {
                    o.mode = u32::from_str_radix(value, 8).map_err(|_| Errno::EINVAL)? & MODE_BITS
                }
                _ => {}
            }
        }
        Ok(o)
    }
}

/// A number with an optional `k`, `m`, `g` suffix (powers of 1024).
fn parse_size(s: &str) -> Result<u64, Errno> {
    let (digits, shift) = match s.as_bytes().last() {
        Some(b'k' | b'K') => (&s[..s.len() - 1], 10),
        Some(b'm' | b'M') => (&s[..s.len() - 1], 20),
        Some(b'g' | b'G') => (&s[..s.len() - 1], 30),
        _ => (s, 0),
    };
    let n: u64 = digits.parse().map_err(|_| Errno::EINVAL)?;
    n.checked_mul(1 << shift).ok_or(Errno::EINVAL)
}

/// Linux's `TMPFS_MAGIC` (`statfs`).
pub const TMPFS_MAGIC: u64 = 0x0102_1994;

/// What `statfs` reports of an instance.
pub struct FsStat {
    /// Blocks of 4 KiB in all, and free.
    pub blocks: u64,
    /// Free blocks.
    pub bfree: u64,
    /// Inodes in all.
    pub files: u64,
    /// Free inodes.
    pub ffree: u64,
}

impl Tmpfs {
    /// A new, empty instance; `ENOMEM` without memory for its root.
    pub fn new(options: Options) -> Result<Arc<Tmpfs>, Errno> {
        if !crate::memory::frames::user_may_take(2 * INODE_BYTES as usize) {
            return Err(Errno::ENOMEM);
        }
        let account = Arc::new(Account {
            limit: options.size,
            used: AtomicU64::new(0),
            max_inodes: options.nr_inodes.max(1),
            inodes: AtomicU64::new(1),
        });
        account.used.store(INODE_BYTES, Ordering::Relaxed);
        let t = now();
        let root = Arc::new(Inode {
            ino: 1,
            account: account.clone(),
            charged: INODE_BYTES,
            meta: Mutex::new(Meta {
                mode: S_IFDIR | options.mode,
                nlink: 2,
                uid: 0,
                gid: 0,
                atime: t,
                mtime: t,
                ctime: t,
            }),
            body: Body::Dir(Mutex::new(Dir {
                entries: BTreeMap::new(),
                parent: Weak::new(),
                removed: false,
            })),
        });
        Ok(Arc::new(Tmpfs {
            account,
            root,
            dev: NEXT_DEV.fetch_add(1, Ordering::Relaxed),
            next_ino: AtomicU64::new(2),
            ns: Mutex::new(()),
        }))
    }

    /// Its device number (`st_dev`).
    pub fn dev(&self) -> u64 {
        self.dev
    }

    /// Its size, use and inode counts (`statfs`).
    pub fn fs_stat(&self) -> FsStat {
        let a = &self.account;
        let page = PAGE_SIZE as u64;
        let used = a.used.load(Ordering::Relaxed);
        let inodes = a.inodes.load(Ordering::Relaxed);
        FsStat {
            blocks: a.limit / page,
            bfree: a.limit.saturating_sub(used) / page,
            files: a.max_inodes,
            ffree: a.max_inodes.saturating_sub(inodes),
        }
    }

    /// A new inode with `mode` (type and permission bits) and `body`, charged `extra`
    /// heap bytes besides its own; `ENOSPC` when the instance is full, `ENOMEM` when
    /// kernel memory is down to its reserve.
    fn new_inode(&self, mode: u32, body: Body, extra: u64) -> Result<Arc<Inode>, Errno> {
        let charged = INODE_BYTES + extra;
        if !crate::memory::frames::user_may_take(charged as usize) {
            return Err(Errno::ENOMEM);
        }
        if !self.account.take_inode() {
            return Err(Errno::ENOSPC);
        }
        if !self.account.charge(charged) {
            self.account.inodes.fetch_sub(1, Ordering::AcqRel);
            return Err(Errno::ENOSPC);
        }
        let t = now();
        let (uid, gid) = (0, 0);
        // From here the charges are the inode's: dropping it gives them back.
        Ok(Arc::new(Inode {
            ino: self.next_ino.fetch_add(1, Ordering::Relaxed),
            account: self.account.clone(),
            charged,
            meta: Mutex::new(Meta {
                mode,
                nlink: if mode & S_IFMT == S_IFDIR { 2 } else { 1 },
                uid,
                gid,
                atime: t,
                mtime: t,
                ctime: t,
            }),
            body,
        }))
    }

    /// A new regular file with permission bits `perm`, in no directory (`memfd_create`,
    /// or before [`link_new`](Self::link_new)).
    fn new_file(&self, perm: u32) -> Result<Arc<Inode>, Errno> {
        let obj = MemObject::memory(self.account.clone()).map_err(|_| Errno::ENOMEM)?;
        self.new_inode(S_IFREG | (perm & MODE_BITS), Body::File(obj), 0)
    }

    /// Takes a copy of `name` for a directory entry, charged to the instance.
    fn entry_name(&self, name: &str) -> Result<String, Errno> {
        if name.len() > NAME_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        let bytes = ENTRY_BYTES + name.len() as u64;
        if !crate::memory::frames::user_may_take(bytes as usize) {
            return Err(Errno::ENOMEM);
        }
        if !self.account.charge(bytes) {
            return Err(Errno::ENOSPC);
        }
        let mut s = String::new();
        if s.try_reserve_exact(name.len()).is_err() {
            self.account.uncharge(bytes);
            return Err(Errno::ENOMEM);
        }
        s.push_str(name);
        Ok(s)
    }

    /// Gives back the charge of an entry named `name`.
    fn drop_entry_name(&self, name: &str) {
        self.account.uncharge(ENTRY_BYTES + name.len() as u64);
    }

    /// Enters the new inode `inode` in `dir` as `name` (`EEXIST` if taken, `ENOENT` if
    /// the directory was removed). Called with the name-space lock held.
    fn link_new(&self, dir: &Arc<Inode>, name: &str, inode: &Arc<Inode>) -> Result<(), Errno> {
        let d = dir.dir()?;
        {
            let guard = d.lock();
            if guard.removed {
                return Err(Errno::ENOENT);
            }
            if guard.entries.contains_key(name) {
                return Err(Errno::EEXIST);
            }
        }
        let key = self.entry_name(name)?;
        if let Body::Dir(child) = &inode.body {
            child.lock().parent = Arc::downgrade(dir);
            dir.meta.lock().nlink += 1;
        }
        d.lock().entries.insert(key, inode.clone());
        dir.touch_mtime();
        Ok(())
    }

    /// Creates a regular file `name` in `dir` with permission bits `perm`; `EEXIST` if
    /// the name is taken.
    pub fn create_file(
        &self,
        dir: &Arc<Inode>,
        name: &str,
        perm: u32,
    ) -> Result<Arc<Inode>, Errno> {
        let _ns = self.ns.lock();
        dir.dir()?;
        if dir.dir()?.lock().entries.contains_key(name) {
            return Err(Errno::EEXIST);
        }
        let inode = self.new_file(perm)?;
        self.link_new(dir, name, &inode)?;
        Ok(inode)
    }

    /// `mkdir`: a directory `name` in `dir` with permission bits `perm`.
    pub fn mkdir(&self, dir: &Arc<Inode>, name: &str, perm: u32) -> Result<(), Errno> {
        let _ns = self.ns.lock();
        if dir.dir()?.lock().entries.contains_key(name) {
            return Err(Errno::EEXIST);
        }
        let body = Body::Dir(Mutex::new(Dir {
            entries: BTreeMap::new(),
            parent: Weak::new(),
            removed: false,
        }));
        let inode = self.new_inode(S_IFDIR | (perm & MODE_BITS), body, 0)?;
        self.link_new(dir, name, &inode)
    }

    /// `symlink`: a link `name` in `dir` to `target`.
    pub fn symlink(&self, dir: &Arc<Inode>, name: &str, target: &str) -> Result<(), Errno> {
        if target.is_empty() {
            return Err(Errno::ENOENT);
        }
        if target.len() >= PATH_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        let _ns = self.ns.lock();
        if dir.dir()?.lock().entries.contains_key(name) {
            return Err(Errno::EEXIST);
        }
        let mut body = String::new();
        body.try_reserve_exact(target.len())
            .map_err(|_| Errno::ENOMEM)?;
        body.push_str(target);
        let inode = self.new_inode(S_IFLNK | 0o777, Body::Symlink(body), target.len() as u64)?;
        self.link_new(dir, name, &inode)
    }

    /// `link`: a new name `name` in `dir` for `inode` (not a directory: `EPERM`).
    pub fn link(&self, inode: &Arc<Inode>, dir: &Arc<Inode>, name: &str) -> Result<(), Errno> {
        if inode.is_dir() {
            return Err(Errno::EPERM);
        }
        let _ns = self.ns.lock();
        if inode.meta.lock().nlink == 0 {
            // Linux refuses a link to an unlinked file (except O_TMPFILE).
            return Err(Errno::ENOENT);
        }
        self.link_new(dir, name, inode)?;
        inode.meta.lock().nlink += 1;
        inode.touch_ctime();
        Ok(())
    }

    /// `unlink` (`rmdir` when `want_dir`): removes `name` from `dir`. `EISDIR` /
    /// `ENOTDIR` for the wrong kind, `ENOTEMPTY` for a directory with entries.
    pub fn unlink(&self, dir: &Arc<Inode>, name: &str, want_dir: bool) -> Result<(), Errno> {
        let _ns = self.ns.lock();
        let d = dir.dir()?;
        let victim = d.lock().entries.get(name).cloned().ok_or(Errno::ENOENT)?;
        match (&victim.body, want_dir) {
            (Body::Dir(_), false) => return Err(Errno::EISDIR),
            (Body::Dir(v), true) => {
                let mut v = v.lock();
                if !v.entries.is_empty() {
                    return Err(Errno::ENOTEMPTY);
                }
                v.removed = true;
            }
            (_, true) => return Err(Errno::ENOTDIR),
            (_, false) => {}
        }
        let (key, _) = d.lock().entries.remove_entry(name).ok_or(Errno::ENOENT)?;
        self.drop_entry_name(&key);
        drop(key);
        if want_dir {
            dir.meta.lock().nlink -= 1;
            victim.meta.lock().nlink = 0;
        } else {
            let mut m = victim.meta.lock();
            m.nlink = m.nlink.saturating_sub(1);
        }
        victim.touch_ctime();
        dir.touch_mtime();
        Ok(())
    }

    /// `rename`: moves `from_name` of `from_dir` to `to_name` of `to_dir` (both
    /// directories of this instance), replacing what is there as Linux does; with
    /// `noreplace`, `EEXIST` if the target exists; with `exchange` the two swap.
    pub fn rename(
        &self,
        from_dir: &Arc<Inode>,
        from_name: &str,
        to_dir: &Arc<Inode>,
        to_name: &str,
        noreplace: bool,
        exchange: bool,
    ) -> Result<(), Errno> {
        let _ns = self.ns.lock();
        let fd = from_dir.dir()?;
        let td = to_dir.dir()?;
        let moving = fd
            .lock()
            .entries
            .get(from_name)
            .cloned()
            .ok_or(Errno::ENOENT)?;
        let target = td.lock().entries.get(to_name).cloned();
        if to_dir.dir()?.lock().removed {
            return Err(Errno::ENOENT);
        }
        // A directory may not move into itself or below.
        if moving.is_dir() && is_ancestor(&moving, to_dir) {
            return Err(Errno::EINVAL);
        }
        if exchange
            && let Some(t) = &target
            && t.is_dir()
            && is_ancestor(t, from_dir)
        {
            return Err(Errno::EINVAL);
        }
        if exchange {
            let target = target.ok_or(Errno::ENOENT)?;
            if Arc::ptr_eq(&moving, &target) {
                return Ok(());
            }
            if let Some(slot) = fd.lock().entries.get_mut(from_name) {
                *slot = target.clone();
            }
            if let Some(slot) = td.lock().entries.get_mut(to_name) {
                *slot = moving.clone();
            }
            if !Arc::ptr_eq(from_dir, to_dir) {
                reparent(&moving, to_dir, from_dir);
                reparent(&target, from_dir, to_dir);
            }
            moving.touch_ctime();
            target.touch_ctime();
            from_dir.touch_mtime();
            to_dir.touch_mtime();
            return Ok(());
        }
        if let Some(t) = &target {
            if noreplace {
                return Err(Errno::EEXIST);
            }
            if Arc::ptr_eq(t, &moving) {
                // Two names of one file: nothing to do.
                return Ok(());
            }
            match (&moving.body, &t.body) {
                (Body::Dir(_), Body::Dir(victim)) => {
                    let mut victim = victim.lock();
                    if !victim.entries.is_empty() {
                        return Err(Errno::ENOTEMPTY);
                    }
                    victim.removed = true;
                }
                (Body::Dir(_), _) => return Err(Errno::ENOTDIR),
                (_, Body::Dir(_)) => return Err(Errno::EISDIR),
                _ => {}
            }
        }
        // The new name's charge first: the only step that can fail.
        let key = if target.is_some() {
            None
        } else {
            Some(self.entry_name(to_name)?)
        };
        let (old_key, _) = fd
            .lock()
            .entries
            .remove_entry(from_name)
            .ok_or(Errno::ENOENT)?;
        self.drop_entry_name(&old_key);
        drop(old_key);
        match key {
            Some(key) => {
                td.lock().entries.insert(key, moving.clone());
            }
            None => {
                if let Some(slot) = td.lock().entries.get_mut(to_name) {
                    *slot = moving.clone();
                }
            }
        }
        if let Some(t) = target {
            if t.is_dir() {
                t.meta.lock().nlink = 0;
                to_dir.meta.lock().nlink -= 1;
            } else {
                let mut m = t.meta.lock();
                m.nlink = m.nlink.saturating_sub(1);
            }
            t.touch_ctime();
        }
        if moving.is_dir() && !Arc::ptr_eq(from_dir, to_dir) {
            reparent(&moving, to_dir, from_dir);
        }
        moving.touch_ctime();
        from_dir.touch_mtime();
        to_dir.touch_mtime();
        Ok(())
    }

    /// The entry `name` of directory `dir`.
    pub fn child(dir: &Inode, name: &str) -> Result<Arc<Inode>, Errno> {
        dir.dir()?
            .lock()
            .entries
            .get(name)
            .cloned()
            .ok_or(Errno::ENOENT)
    }
}

/// Moves directory `dir` from `old` to `new` parent: its `..` and the link counts.
fn reparent(dir: &Arc<Inode>, new: &Arc<Inode>, old: &Arc<Inode>) {
    if let Body::Dir(d) = &dir.body {
        d.lock().parent = Arc::downgrade(new);
        new.meta.lock().nlink += 1;
        old.meta.lock().nlink -= 1;
    }
}

/// Whether directory `dir` is `of` or one of its ancestors.
fn is_ancestor(dir: &Arc<Inode>, of: &Arc<Inode>) -> bool {
    let mut cur = of.clone();
    loop {
        if Arc::ptr_eq(&cur, dir) {
            return true;
        }
        let parent = match &cur.body {
            Body::Dir(d) => d.lock().parent.upgrade(),
            _ => None,
        };
        match parent {
            Some(p) => cur = p,
            None => return false,
        }
    }
}

// ---- mounts and path resolution ---------------------------------------------------------

/// One mount: where, and the instance.
struct Mount {
    path: String,
    fs: Arc<Tmpfs>,
}

/// The mounted instances.
static MOUNTS: Mutex<Vec<Mount>> = Mutex::new(Vec::new());

/// The instance of `memfd_create`'s files (mounted nowhere).
static MEMFD: spin::Once<Option<Arc<Tmpfs>>> = spin::Once::new();

/// Mounts an instance at `/tmp` and at `/dev/shm` (Linux's defaults) and makes the
/// `memfd` instance; `ram_frames`: RAM in 4 KiB frames, for the default caps. An
/// instance that cannot be made is logged and left out.
pub fn init(ram_frames: usize) {
    RAM_FRAMES.store(ram_frames as u64, Ordering::Relaxed);
    for at in ["/tmp", "/dev/shm"] {
        if let Err(e) = mount(at, Options::default_for_ram()) {
            crate::println!("pagoda: tmpfs at {at}: {e:?}");
        }
    }
    MEMFD.call_once(|| Tmpfs::new(Options::default_for_ram()).ok());
}

/// Mounts a new instance with `options` at `path` (absolute, normalised, without a
/// trailing `/`; the caller checked it is a directory). `EBUSY` if a tmpfs is mounted
/// there already, `ENOMEM` past [`MAX_MOUNTS`] or without memory.
pub fn mount(path: &str, options: Options) -> Result<(), Errno> {
    let fs = Tmpfs::new(options)?;
    let mut at = String::new();
    at.try_reserve_exact(path.len())
        .map_err(|_| Errno::ENOMEM)?;
    at.push_str(path);
    let mut mounts = MOUNTS.lock();
    if mounts.iter().any(|m| m.path == path) {
        return Err(Errno::EBUSY);
    }
    if mounts.len() >= MAX_MOUNTS {
        return Err(Errno::ENOMEM);
    }
    mounts.try_reserve(1).map_err(|_| Errno::ENOMEM)?;
    mounts.push(Mount { path: at, fs });
    Ok(())
}

/// Unmounts the instance at `path`: `EINVAL` if none is mounted there. Open files and
/// mappings of it keep their inodes (the instance goes with the last).
pub fn umount(path: &str) -> Result<(), Errno> {
    let mut mounts = MOUNTS.lock();
    let i = mounts
        .iter()
        .position(|m| m.path == path)
        .ok_or(Errno::EINVAL)?;
    let m = mounts.remove(i);
    drop(mounts);
    drop(m);
    Ok(())
}

/// Whether a tmpfs is mounted at `path`.
pub fn is_mount_point(path: &str) -> bool {
    MOUNTS.lock().iter().any(|m| m.path == path)
}

/// Calls `f` with each mount point (for `/proc/mounts`), and the instance's options.
pub fn for_each_mount(mut f: impl FnMut(&str, u64)) {
    for m in MOUNTS.lock().iter() {
        f(&m.path, m.fs.account.limit);
    }
}

/// The instance whose device number is `dev` (`fstatfs`).
pub fn by_dev(dev: u64) -> Option<Arc<Tmpfs>> {
    let mounts = MOUNTS.lock();
    if let Some(m) = mounts.iter().find(|m| m.fs.dev == dev) {
        return Some(m.fs.clone());
    }
    MEMFD.get().cloned().flatten().filter(|fs| fs.dev == dev)
}

/// The instance mounted deepest over `path`, and the length of its mount point's path.
fn find_mount(path: &str) -> Option<(Arc<Tmpfs>, usize)> {
    let mounts = MOUNTS.lock();
    mounts
        .iter()
        .filter(|m| {
            m.path == "/"
                || path.starts_with(m.path.as_str())
                    && matches!(path.as_bytes().get(m.path.len()), None | Some(b'/'))
        })
        .max_by_key(|m| m.path.len())
        .map(|m| (m.fs.clone(), if m.path == "/" { 0 } else { m.path.len() }))
}

/// What a path names.
pub enum Found {
    /// A tmpfs inode, on its instance.
    Tmpfs(Arc<Tmpfs>, Arc<Inode>),
    /// A path outside every tmpfs (absolute, normalised): the initramfs's, `/proc`'s or
    /// `/dev`'s. `None`: the path asked; `Some`: where tmpfs links led.
    Elsewhere(Option<String>),
}

/// The result of a walk inside one instance.
enum Walk {
    Found(Arc<Inode>),
    /// A symbolic link led to this path (absolute, normalised): resolve it again.
    Redirect(String),
}

/// Resolves `path` (absolute, normalised) through the tmpfs mounts, following the
/// symbolic links met in a tmpfs (the last component's too if `follow`, or if the path
/// ends in `/`): `ENOENT`, `ENOTDIR`, `ELOOP` past [`MAX_SYMLINKS`] links as Linux's
/// walk.
pub fn resolve(path: &str, follow: bool) -> Result<Found, Errno> {
    let mut owned: Option<String> = None;
    for _ in 0..=MAX_SYMLINKS {
        let p = owned.as_deref().unwrap_or(path);
        let Some((fs, skip)) = find_mount(p) else {
            return Ok(Found::Elsewhere(owned));
        };
        match walk(&fs, p, skip, follow)? {
            Walk::Found(inode) => return Ok(Found::Tmpfs(fs, inode)),
            Walk::Redirect(next) => owned = Some(next),
        }
    }
    Err(Errno::ELOOP)
}

/// Walks `path` inside `fs` from byte `skip` on (past the mount point).
fn walk(fs: &Tmpfs, path: &str, skip: usize, follow: bool) -> Result<Walk, Errno> {
    let mut cur = fs.root.clone();
    let mut at = skip;
    let bytes = path.as_bytes();
    loop {
        while bytes.get(at) == Some(&b'/') {
            at += 1;
        }
        if at >= path.len() {
            break;
        }
        let end = path[at..].find('/').map_or(path.len(), |i| at + i);
        let name = &path[at..end];
        let child = Tmpfs::child(&cur, name)?;
        let last = path[end..].bytes().all(|b| b == b'/');
        let slash = end < path.len();
        if let Body::Symlink(target) = &child.body
            && (!last || follow || slash)
        {
            let base = if target.starts_with('/') {
                ""
            } else {
                &path[..at]
            };
            let joined = super::concat(&[base, target, &path[end..]])?;
            return super::normalize(&joined).map(Walk::Redirect);
        }
        cur = child;
        at = end;
    }
    if path.ends_with('/') && !cur.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    Ok(Walk::Found(cur))
}

/// Where a name goes in a tmpfs: the instance, the directory, the name.
pub type NewEntry<'a> = (Arc<Tmpfs>, Arc<Inode>, &'a str);

/// The directory a new name goes in: the parent of `path` (absolute, normalised)
/// resolved, and the last component. `Ok(None)` when the parent is not in a tmpfs.
/// `EEXIST` for `/` itself and for mount points (they exist).
pub fn parent_of(path: &str) -> Result<Option<NewEntry<'_>>, Errno> {
    let trimmed = path.trim_end_matches('/');
    let Some((dir, name)) = trimmed.rsplit_once('/') else {
        return Err(Errno::EEXIST);
    };
    if name.is_empty() || is_mount_point(trimmed) {
        return Err(Errno::EEXIST);
    }
    let dir = if dir.is_empty() { "/" } else { dir };
    match resolve(dir, true)? {
        Found::Tmpfs(fs, inode) => {
            inode.dir()?;
            Ok(Some((fs, inode, name)))
        }
        Found::Elsewhere(_) => Ok(None),
    }
}

// ---- open files -----------------------------------------------------------------------

/// The access-mode bits of open flags, and their values.
const O_ACCMODE: usize = 3;
const O_WRONLY: usize = 1;
const O_RDWR: usize = 2;
/// `O_TRUNC`, `O_APPEND`, `O_DIRECTORY`, `O_NOFOLLOW`.
pub const O_TRUNC: usize = 0o1000;
/// Writes go to the end of the file.
pub const O_APPEND: usize = 0o2000;
const O_DIRECTORY: usize = 0o200000;

/// Opens `inode` of `fs` with `flags`, named `path` (for `/proc/PID/fd`).
pub fn open(
    fs: &Arc<Tmpfs>,
    inode: Arc<Inode>,
    flags: usize,
    path: &str,
) -> Result<FileRef, Errno> {
    let access = flags & O_ACCMODE;
    let mut name = String::new();
    name.try_reserve_exact(path.len())
        .map_err(|_| Errno::ENOMEM)?;
    name.push_str(path.trim_end_matches('/'));
    if name.is_empty() {
        name.push('/');
    }
    match &inode.body {
        Body::Dir(_) => {
            if access != 0 || flags & O_TRUNC != 0 {
                return Err(Errno::EISDIR);
            }
            super::open(
                TmpDir {
                    fs: fs.clone(),
                    inode,
                    pos: 0,
                    cursor: String::new(),
                    path: name,
                },
                flags,
            )
        }
        Body::Symlink(_) => Err(Errno::ELOOP),
        Body::File(_) => {
            if flags & O_DIRECTORY != 0 {
                return Err(Errno::ENOTDIR);
            }
            if access == O_ACCMODE {
                return Err(Errno::EINVAL);
            }
            let writable = access == O_WRONLY || access == O_RDWR;
            if flags & O_TRUNC != 0 && writable {
                inode.truncate(0)?;
            }
            open_file(fs, inode, flags, name)
        }
    }
}

/// An open description of the regular file `inode`.
fn open_file(
    fs: &Arc<Tmpfs>,
    inode: Arc<Inode>,
    flags: usize,
    path: String,
) -> Result<FileRef, Errno> {
    let access = flags & O_ACCMODE;
    super::open(
        TmpFile {
            dev: fs.dev,
            inode,
            pos: 0,
            readable: access != O_WRONLY,
            writable: access == O_WRONLY || access == O_RDWR,
            path,
        },
        flags,
    )
}

/// `memfd_create`: a new file of the memfd instance, in no directory, open read-write;
/// `/proc/PID/fd` names it `/memfd:NAME (deleted)` as Linux does.
pub fn memfd(name: &str) -> Result<FileRef, Errno> {
    let fs = MEMFD.get().cloned().flatten().ok_or(Errno::ENOMEM)?;
    let inode = fs.new_file(0o777)?;
    inode.meta.lock().nlink = 0;
    let path = super::concat(&["/memfd:", name])?;
    open_file(&fs, inode, O_RDWR, path)
}

/// What the tmpfs-specific system calls need of an open tmpfs file or directory.
pub struct Handle {
    /// The instance.
    pub dev: u64,
    /// The inode.
    pub inode: Arc<Inode>,
}

/// An open tmpfs regular file.
pub struct TmpFile {
    dev: u64,
    inode: Arc<Inode>,
    pos: usize,
    readable: bool,
    writable: bool,
    path: String,
}

impl File for TmpFile {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Errno> {
        let n = self.read_at(self.pos, buf)?;
        self.pos += n;
        Ok(n)
    }

    fn read_at(&mut self, offset: usize, buf: &mut [u8]) -> Result<usize, Errno> {
        if !self.readable {
            return Err(Errno::EBADF);
        }
        self.inode.read_at(offset as u64, buf)
    }

    fn write(&mut self, buf: &[u8]) -> Result<usize, Errno> {
        let (n, end) = self.write_impl(self.pos as u64, buf, false)?;
        self.pos = end as usize;
        Ok(n)
    }

    fn append(&mut self, buf: &[u8]) -> Result<usize, Errno> {
        let (n, end) = self.write_impl(0, buf, true)?;
        self.pos = end as usize;
        Ok(n)
    }

    fn write_at(&mut self, offset: usize, buf: &[u8]) -> Result<usize, Errno> {
        self.write_impl(offset as u64, buf, false).map(|(n, _)| n)
    }

    fn lseek(&mut self, offset: i64, whence: u32) -> Result<usize, Errno> {
        super::seek(&mut self.pos, self.inode.size() as usize, offset, whence)
    }

    fn stat(&self) -> Stat {
        self.inode.stat(self.dev)
    }

    fn describe(&self, out: &mut dyn core::fmt::Write) -> core::fmt::Result {
        out.write_str(&self.path)?;
        if self.inode.meta.lock().nlink == 0 {
            out.write_str(" (deleted)")?;
        }
        Ok(())
    }

    fn mem_object(&self) -> Result<Option<Arc<MemObject>>, Errno> {
        Ok(self.inode.object().cloned())
    }

    fn mmap_access(&self) -> (bool, bool) {
        (self.readable, self.writable)
    }

    fn truncate(&mut self, len: u64) -> Result<(), Errno> {
        if !self.writable {
            return Err(Errno::EINVAL);
        }
        self.inode.truncate(len)
    }

    fn tmpfs(&self) -> Option<Handle> {
        Some(Handle {
            dev: self.dev,
            inode: self.inode.clone(),
        })
    }

    fn heap_bytes(&self) -> usize {
        self.path.capacity()
    }
}

impl TmpFile {
    /// A write of `buf` at `offset` (or at the end): `EBADF` unless open for writing.
    fn write_impl(&mut self, offset: u64, buf: &[u8], append: bool) -> Result<(usize, u64), Errno> {
        if !self.writable {
            return Err(Errno::EBADF);
        }
        self.inode.write_at(offset, buf, append)
    }
}

/// An open tmpfs directory: `getdents64` goes on after the name it returned last (so
/// entries added or removed meanwhile never make it skip or repeat another).
pub struct TmpDir {
    fs: Arc<Tmpfs>,
    inode: Arc<Inode>,
    /// Entries returned so far (`.` and `..` are the first two).
    pos: usize,
    /// The last name returned (past `.` and `..`).
    cursor: String,
    path: String,
}

impl File for TmpDir {
    fn read(&mut self, _buf: &mut [u8]) -> Result<usize, Errno> {
        Err(Errno::EISDIR)
    }

    fn lseek(&mut self, offset: i64, whence: u32) -> Result<usize, Errno> {
        // rewinddir (0, SEEK_SET) and the position (0, SEEK_CUR) only.
        match (offset, whence) {
            (0, 0) => {
                self.pos = 0;
                self.cursor.clear();
                Ok(0)
            }
            (0, 1) => Ok(self.pos),
            _ => Err(Errno::EINVAL),
        }
    }

    fn stat(&self) -> Stat {
        self.inode.stat(self.fs.dev)
    }

    fn read_dir(&mut self, emit: &mut dyn FnMut(&DirEntry<'_>) -> bool) -> Result<(), Errno> {
        let d = self.inode.dir()?;
        while self.pos < 2 {
            let ino = if self.pos == 0 {
                self.inode.ino
            } else {
                d.lock().parent.upgrade().map_or(self.inode.ino, |p| p.ino)
            };
            let name = if self.pos == 0 { "." } else { ".." };
            if !emit(&DirEntry {
                ino,
                kind: DT_DIR,
                name,
            }) {
                return Ok(());
            }
            self.pos += 1;
        }
        let guard = d.lock();
        let range = if self.pos == 2 {
            guard.entries.range::<str, _>(..)
        } else {
            guard.entries.range::<str, _>((
                core::ops::Bound::Excluded(self.cursor.as_str()),
                core::ops::Bound::Unbounded,
            ))
        };
        for (name, child) in range {
            // Room for the cursor first: an entry is taken only if it can be remembered.
            if self.cursor.capacity() < name.len()
                && self
                    .cursor
                    .try_reserve(name.len() - self.cursor.len())
                    .is_err()
            {
                return Err(Errno::ENOMEM);
            }
            if !emit(&DirEntry {
                ino: child.ino,
                kind: child.d_type(),
                name,
            }) {
                return Ok(());
            }
            self.cursor.clear();
            self.cursor.push_str(name);
            self.pos += 1;
        }
        Ok(())
    }

    fn dir_path(&self) -> Result<String, Errno> {
        super::concat(&[&self.path])
    }

    fn describe(&self, out: &mut dyn core::fmt::Write) -> core::fmt::Result {
        out.write_str(&self.path)
    }

    fn tmpfs(&self) -> Option<Handle> {
        Some(Handle {
            dev: self.fs.dev,
            inode: self.inode.clone(),
        })
    }

    fn heap_bytes(&self) -> usize {
        self.path.capacity() + NAME_MAX
    }
}

// ---- metadata changes -----------------------------------------------------------------

/// `chmod`: sets the permission bits of `inode`.
pub fn chmod(inode: &Inode, mode: u32) {
    let mut m = inode.meta.lock();
    m.mode = (m.mode & S_IFMT) | (mode & MODE_BITS);
    m.ctime = now();
}

/// `chown`: sets the owner and group (`None`: unchanged).
pub fn chown(inode: &Inode, uid: Option<u32>, gid: Option<u32>) {
    let mut m = inode.meta.lock();
    if let Some(uid) = uid {
        m.uid = uid;
    }
    if let Some(gid) = gid {
        m.gid = gid;
    }
    m.ctime = now();
}

/// A time `utimensat` sets: now, a given time, or unchanged.
#[derive(Clone, Copy, Debug)]
pub enum SetTime {
    /// `UTIME_NOW`.
    Now,
    /// `UTIME_OMIT`.
    Omit,
    /// This time.
    At(Timespec),
}

/// `utimensat`: sets the access and modification times of `inode`; the change time
/// becomes now unless both are omitted.
pub fn set_times(inode: &Inode, atime: SetTime, mtime: SetTime) {
    if matches!((atime, mtime), (SetTime::Omit, SetTime::Omit)) {
        return;
    }
    let t = now();
    let pick = |set: SetTime, old: Timespec| match set {
        SetTime::Now => t,
        SetTime::At(v) => v,
        SetTime::Omit => old,
    };
    let mut m = inode.meta.lock();
    m.atime = pick(atime, m.atime);
    m.mtime = pick(mtime, m.mtime);
    m.ctime = t;
}

/// A symbolic link's target; `EINVAL` for another kind of inode.
pub fn link_target(inode: &Inode) -> Result<&str, Errno> {
    match &inode.body {
        Body::Symlink(t) => Ok(t),
        _ => Err(Errno::EINVAL),
    }
}

/// `truncate` by path: the file must be a regular file (`EISDIR` for a directory).
pub fn truncate(inode: &Inode, len: u64) -> Result<(), Errno> {
    if inode.is_dir() {
        return Err(Errno::EISDIR);
    }
    inode.truncate(len)
}
