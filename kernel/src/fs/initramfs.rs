//! The initramfs: a `newc` cpio archive the firmware placed in RAM (its range comes
//! from `/chosen/linux,initrd-*`), indexed once at boot by [`pagoda_formats::cpio`]
//! (host-tested there with hostile archives) and read in place: the frame allocator
//! never hands out its frames, so file contents are `'static` slices into it.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::{Arc, Weak};

use pagoda_mm::addr::{PAGE_SIZE, PhysAddr};
use pagoda_mm::vm::{FileIdentity, IoError, MemObject, VmFile};
use spin::Mutex;

use super::{DT_DIR, DT_LNK, DT_REG, DirEntry};
use crate::errno::Errno;
use crate::memory::uspace::fill_frame;

pub use pagoda_formats::cpio::{Kind, LookupError, S_IFDIR, S_IFLNK, S_IFMT};

/// A file or directory of the initramfs.
pub type Node = pagoda_formats::cpio::Node<'static>;

/// The indexed initramfs.
pub type Initramfs = pagoda_formats::cpio::Initramfs<'static>;

/// The bytes of a file in the initramfs (or of a kernel-provided page: the signal
/// trampoline) as the backing of mappings.
#[derive(Debug)]
pub struct InitramfsFile {
    data: &'static [u8],
    /// Its inode number and absolute path (`/proc/PID/maps` shows them); none for the
    /// kernel's own pages served as a file (the signal trampoline).
    name: Option<(u64, String)>,
}

impl VmFile for InitramfsFile {
    fn identity(&self) -> Option<FileIdentity<'_>> {
        self.name.as_ref().map(|(ino, path)| FileIdentity {
            dev: super::DEV_ROOT,
            ino: *ino,
            path,
        })
    }

    fn size(&self) -> u64 {
        self.data.len() as u64
    }

    fn read_page(&self, offset: u64, len: usize, dst: PhysAddr) -> Result<(), IoError> {
        let start = usize::try_from(offset)
            .map_err(|_| IoError)?
            .min(self.data.len());
        let end = start
            .saturating_add(len.min(PAGE_SIZE))
            .min(self.data.len());
        fill_frame(dst, &self.data[start..end]);
        Ok(())
    }
}

/// A file or directory of the initramfs, open, with its position (for directories: the
/// index of the next entry `getdents64` returns).
pub struct NodeFile {
    node: Node,
    pos: usize,
}

impl NodeFile {
    /// `node` opened at position 0.
    pub fn new(node: Node) -> NodeFile {
        NodeFile { node, pos: 0 }
    }
}

impl super::File for NodeFile {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Errno> {
        let n = self.read_at(self.pos, buf)?;
        self.pos += n;
        Ok(n)
    }

    fn read_at(&mut self, offset: usize, buf: &mut [u8]) -> Result<usize, Errno> {
        if self.node.kind != Kind::File {
            return Err(Errno::EISDIR);
        }
        Ok(super::copy_at(self.node.data, offset, buf))
    }

    fn lseek(&mut self, offset: i64, whence: u32) -> Result<usize, Errno> {
        super::seek(&mut self.pos, self.node.data.len(), offset, whence)
    }

    fn stat(&self) -> super::Stat {
        super::node_stat(&self.node)
    }

    fn read_dir(&mut self, emit: &mut dyn FnMut(&DirEntry<'_>) -> bool) -> Result<(), Errno> {
        if self.node.kind != Kind::Dir {
            return Err(Errno::ENOTDIR);
        }
        let fs = super::root();
        loop {
            // Entries 0 and 1 are "." and ".."; then the directory's children.
            let (name, node) = match self.pos {
                0 => (".", self.node),
                1 => {
                    let parent = self.node.path.rsplit_once('/').map_or("", |(p, _)| p);
                    ("..", fs.lookup(parent).unwrap_or(self.node))
                }
                i => {
                    let Some(child) = fs.child(self.node.path, i - 2) else {
                        return Ok(());
                    };
                    (child.path.rsplit('/').next().unwrap_or(child.path), child)
                }
            };
            let kind = match node.kind {
                Kind::Dir => DT_DIR,
                Kind::File => DT_REG,
                Kind::Symlink => DT_LNK,
            };
            if !emit(&DirEntry {
                ino: node.ino,
                kind,
                name,
            }) {
                return Ok(());
            }
            self.pos += 1;
        }
    }

    fn describe(&self, out: &mut dyn core::fmt::Write) -> core::fmt::Result {
        write!(out, "/{}", self.node.path)
    }

    fn dir_path(&self) -> Result<String, Errno> {
        if self.node.kind != Kind::Dir {
            return Err(Errno::ENOTDIR);
        }
        super::concat(&["/", self.node.path])
    }

    fn mem_object(&self) -> Result<Option<Arc<MemObject>>, Errno> {
        match self.node.kind {
            Kind::File => mem_object(&self.node).map(Some),
            Kind::Dir | Kind::Symlink => Ok(None),
        }
    }
}

/// The memory object of each initramfs file some mapping holds, by inode number: weak,
/// so that a file's pages go with its last mapping (as today; reclaim of an unmapped
/// file's cache is swap's business, issue 16).
static OBJECTS: Mutex<BTreeMap<u64, Weak<MemObject>>> = Mutex::new(BTreeMap::new());

/// The memory object of the initramfs file `node`: one per file while any mapping holds
/// it, so that every `MAP_SHARED` mapping of the file, in every process, maps the same
/// frames, and adjacent mappings of the file merge. `ENOMEM` without memory for it.
pub fn mem_object(node: &Node) -> Result<Arc<MemObject>, Errno> {
    let mut objects = OBJECTS.lock();
    if let Some(obj) = objects.get(&node.ino).and_then(Weak::upgrade) {
        return Ok(obj);
    }
    objects.retain(|_, w| w.strong_count() > 0);
    let mut path = String::new();
    path.try_reserve_exact(node.path.len() + 1)
        .map_err(|_| Errno::ENOMEM)?;
    path.push('/');
    path.push_str(node.path);
    let obj = object_of(node.data, Some((node.ino, path)))?;
    objects.insert(node.ino, Arc::downgrade(&obj));
    Ok(obj)
}

/// A memory object of its own for the bytes `data` (the signal trampoline's page).
pub fn static_object(data: &'static [u8]) -> Result<Arc<MemObject>, Errno> {
    object_of(data, None)
}

fn object_of(data: &'static [u8], name: Option<(u64, String)>) -> Result<Arc<MemObject>, Errno> {
    let file = crate::proc::new_arc(InitramfsFile { data, name })?;
    MemObject::file(file).map_err(|_| Errno::ENOMEM)
}
