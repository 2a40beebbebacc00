//! `/dev`: the character devices every Linux program expects, with Linux's device
//! numbers, and the directory that lists them.
//!
//! | name | major:minor | read | write |
//! |---|---|---|---|
//! | `null` | 1:3 | end of file | discarded |
//! | `zero` | 1:5 | zero bytes | discarded |
//! | `full` | 1:7 | zero bytes | `ENOSPC` |
//! | `random`, `urandom` | 1:8, 1:9 | the kernel's generator ([`crate::random`]: not cryptographic) | discarded |
//! | `tty` | 5:0 | the console ([`super::tty`]) | the console |
//! | `console` | 5:1 | the console | the console |
//! | `vda` (block) | 254:0 | the virtio disk, if there is one ([`crate::drivers::virtio_blk`]) | the disk; `EBUSY` while it is the swap area |
//!
//! The nodes are not files of the initramfs: [`open`] and [`stat`] answer for their
//! paths before the initramfs is looked at (the archive holds only the empty `/dev`
//! directory, so that `chdir("/dev")` works). The directory also lists `shm`, where a
//! tmpfs is mounted at boot ([`super::tmpfs`], resolved before this module).

use alloc::string::String;

use super::{DT_BLK, DT_CHR, DT_DIR, DirEntry, File, FileRef, S_IFBLK, S_IFCHR, Stat, poll};
use crate::drivers::virtio_blk;
use crate::errno::Errno;

/// The path of the disk's block device (what `swapon` takes).
pub const DISK: &str = "/dev/vda";

/// What a device does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Null,
    Zero,
    Full,
    Random,
    Tty,
    Console,
    Disk,
}

/// One device node: name, kind, device number (`major << 8 | minor` as in Linux's old
/// encoding, which `makedev` gives for numbers this small), permission bits.
struct Device {
    name: &'static str,
    kind: Kind,
    rdev: u64,
    perm: u32,
}

/// The nodes of `/dev`, in the order `ls -f` lists them.
const DEVICES: [Device; 8] = [
    Device {
        name: "null",
        kind: Kind::Null,
        rdev: 0x103,
        perm: 0o666,
    },
    Device {
        name: "zero",
        kind: Kind::Zero,
        rdev: 0x105,
        perm: 0o666,
    },
    Device {
        name: "full",
        kind: Kind::Full,
        rdev: 0x107,
        perm: 0o666,
    },
    Device {
        name: "random",
        kind: Kind::Random,
        rdev: 0x108,
        perm: 0o666,
    },
    Device {
        name: "urandom",
        kind: Kind::Random,
        rdev: 0x109,
        perm: 0o666,
    },
    Device {
        name: "tty",
        kind: Kind::Tty,
        rdev: 0x500,
        perm: 0o666,
    },
    Device {
        name: "console",
        kind: Kind::Console,
        rdev: 0x501,
        perm: 0o600,
    },
    Device {
        name: "vda",
        kind: Kind::Disk,
        rdev: 0xfe00,
        perm: 0o660,
    },
];

impl Device {
    /// Whether the node exists on this machine (the disk's only with a disk).
    fn present(&self) -> bool {
        self.kind != Kind::Disk || virtio_blk::pages() != 0
    }

    /// The node's file type bits.
    fn file_type(&self) -> (u32, u8) {
        if self.kind == Kind::Disk {
            (S_IFBLK, DT_BLK)
        } else {
            (S_IFCHR, DT_CHR)
        }
    }
}

/// Inode numbers of `/dev` and its nodes (the node's index added), far above the
/// archive's.
const DEV_INO: u64 = 0x2_0000_0000;

/// The directory itself.
const DIR: &str = "/dev";
/// The directory of POSIX shared memory (a tmpfs mount point).
const SHM: &str = "shm";

/// The device at `path` (absolute, normalised) with its index.
fn find(path: &str) -> Option<(usize, &'static Device)> {
    let name = path.strip_prefix("/dev/")?;
    DEVICES
        .iter()
        .enumerate()
        .find(|(_, d)| d.name == name && d.present())
}

/// The metadata of the `/dev` node or directory at `path`; `None` for any other path.
pub fn stat(path: &str) -> Option<Stat> {
    if path == DIR || path == "/dev/" {
        return Some(dir_stat());
    }
    find(path).map(|(i, d)| node_stat(i, d))
}

/// The directory's metadata.
fn dir_stat() -> Stat {
    Stat {
        ino: DEV_INO,
        mode: super::S_IFDIR | 0o755,
        dev: super::DEV_DEV,
        ..Stat::default()
    }
}

/// A node's metadata.
fn node_stat(index: usize, d: &Device) -> Stat {
    Stat {
        ino: DEV_INO + 1 + index as u64,
        mode: d.file_type().0 | d.perm,
        size: if d.kind == Kind::Disk {
            virtio_blk::pages() * virtio_blk::PAGE_BYTES
        } else {
            0
        },
        rdev: d.rdev,
        mtime: 0,
        dev: super::DEV_DEV,
        ..Stat::default()
    }
}

/// Opens the `/dev` node or directory at `path` (absolute, normalised) with `flags`;
/// `None` for any other path. The terminals open the console ([`super::tty::Console`]).
pub fn open(path: &str, flags: usize) -> Result<Option<FileRef>, Errno> {
    if path == DIR || path == "/dev/" {
        super::check_open_mode(true, flags)?;
        return super::open(DevDir { pos: 0 }, flags).map(Some);
    }
    let Some((index, d)) = find(path) else {
        return Ok(None);
    };
    super::check_open_mode_device(flags)?;
    match d.kind {
        Kind::Tty | Kind::Console => super::tty::open(flags).map(Some),
        kind => super::open(
            DevFile {
                kind,
                index,
                pos: 0,
            },
            flags,
        )
        .map(Some),
    }
}

/// An open `/dev` node other than the terminals.
struct DevFile {
    kind: Kind,
    index: usize,
    /// The file position (the disk's only: the memory devices stay at 0).
    pos: u64,
}

impl File for DevFile {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Errno> {
        if self.kind == Kind::Disk {
            let n = self.read_at(self.pos as usize, buf)?;
            self.pos += n as u64;
            return Ok(n);
        }
        match self.kind {
            Kind::Null => Ok(0),
            Kind::Random => {
                crate::random::fill(buf);
                Ok(buf.len())
            }
            _ => {
                buf.fill(0);
                Ok(buf.len())
            }
        }
    }

    fn read_at(&mut self, offset: usize, buf: &mut [u8]) -> Result<usize, Errno> {
        if self.kind == Kind::Disk {
            return virtio_blk::read_bytes(offset as u64, buf).map_err(|_| Errno::EIO);
        }
        self.read(buf)
    }

    fn write(&mut self, buf: &[u8]) -> Result<usize, Errno> {
        match self.kind {
            Kind::Full => Err(Errno::ENOSPC),
            Kind::Disk => {
                if crate::memory::swap::enabled() {
                    // Linux refuses writes to an active swap device the same way.
                    return Err(Errno::EBUSY);
                }
                let n = virtio_blk::write_bytes(self.pos, buf).map_err(|_| Errno::EIO)?;
                if n == 0 && !buf.is_empty() {
                    return Err(Errno::ENOSPC);
                }
                self.pos += n as u64;
                Ok(n)
            }
            _ => Ok(buf.len()),
        }
    }

    fn lseek(&mut self, offset: i64, whence: u32) -> Result<usize, Errno> {
        if self.kind == Kind::Disk {
            let size = (virtio_blk::pages() * virtio_blk::PAGE_BYTES) as usize;
            let mut pos = self.pos as usize;
            let r = super::seek(&mut pos, size, offset, whence);
            self.pos = pos as u64;
            return r;
        }
        // Linux's memory devices accept any seek and stay at 0.
        Ok(0)
    }

    fn poll(&self) -> u16 {
        poll::POLLIN | poll::POLLOUT
    }

    fn stat(&self) -> Stat {
        node_stat(self.index, &DEVICES[self.index])
    }

    fn describe(&self, out: &mut dyn core::fmt::Write) -> core::fmt::Result {
        write!(out, "{DIR}/{}", DEVICES[self.index].name)
    }
}

/// `/dev` open as a directory.
struct DevDir {
    pos: usize,
}

impl File for DevDir {
    fn read(&mut self, _buf: &mut [u8]) -> Result<usize, Errno> {
        Err(Errno::EISDIR)
    }

    fn lseek(&mut self, offset: i64, whence: u32) -> Result<usize, Errno> {
        // The position is the index of the next entry (rewinddir seeks to 0).
        super::seek(&mut self.pos, 0, offset, whence)
    }

    fn stat(&self) -> Stat {
        dir_stat()
    }

    fn read_dir(&mut self, emit: &mut dyn FnMut(&DirEntry<'_>) -> bool) -> Result<(), Errno> {
        loop {
            let entry = match self.pos {
                0 => DirEntry {
                    ino: DEV_INO,
                    kind: DT_DIR,
                    name: ".",
                },
                1 => DirEntry {
                    ino: 1,
                    kind: DT_DIR,
                    name: "..",
                },
                i => match DEVICES.get(i - 2) {
                    Some(d) if !d.present() => {
                        self.pos += 1;
                        continue;
                    }
                    Some(d) => DirEntry {
                        ino: DEV_INO + i as u64 - 1,
                        kind: d.file_type().1,
                        name: d.name,
                    },
                    // The tmpfs mount point (its root's inode number, as `stat` gives).
                    None if i - 2 == DEVICES.len() => DirEntry {
                        ino: 1,
                        kind: DT_DIR,
                        name: SHM,
                    },
                    None => return Ok(()),
                },
            };
            if !emit(&entry) {
                return Ok(());
            }
            self.pos += 1;
        }
    }

    fn dir_path(&self) -> Result<String, Errno> {
        super::concat(&[DIR])
    }

    fn describe(&self, out: &mut dyn core::fmt::Write) -> core::fmt::Result {
        out.write_str(DIR)
    }
}
