//! The initramfs: a `newc` cpio archive the firmware placed in RAM (its range comes
//! from `/chosen/linux,initrd-*`), indexed once at boot and read in place.
//!
//! The archive stays where the firmware put it (the frame allocator never hands out its
//! frames), so file contents are `&'static [u8]` slices into it. At boot one pass over
//! the headers ([`parse`]) builds the index: every node sorted by path, and each
//! directory's children in archive order. A lookup is then a binary search (O(path
//! length x log entries)) and listing a directory O(its entries), whatever the size of
//! the archive. Directories are whatever the archive lists as directories plus every
//! parent of a listed path.
//!
//! The archive is untrusted input: the parser checks every header field and offset and
//! stops at the first entry that is malformed or runs past the end; the entries before
//! it stay usable.

use alloc::collections::BTreeMap;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;

use pagoda_mm::addr::{PAGE_SIZE, PhysAddr};
use pagoda_mm::vm::{IoError, MemObject, VmFile};
use spin::Mutex;

use crate::memory::uspace::fill_frame;
use crate::syscall::errno::Errno;

/// The bytes of a file in the initramfs (or of a kernel-provided page: the signal
/// trampoline) as the backing of mappings.
#[derive(Debug)]
pub struct InitramfsFile {
    data: &'static [u8],
}

impl VmFile for InitramfsFile {
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
        if self.node.kind == Kind::Dir {
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

    fn node(&mut self) -> Option<(&Node, &mut usize)> {
        Some((&self.node, &mut self.pos))
    }

    fn mem_object(&self) -> Result<Option<Arc<MemObject>>, Errno> {
        match self.node.kind {
            Kind::File => mem_object(&self.node).map(Some),
            Kind::Dir => Ok(None),
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
    let obj = static_object(node.data)?;
    objects.insert(node.ino, Arc::downgrade(&obj));
    Ok(obj)
}

/// A memory object of its own for the bytes `data` (the signal trampoline's page).
pub fn static_object(data: &'static [u8]) -> Result<Arc<MemObject>, Errno> {
    MemObject::file(Arc::new(InitramfsFile { data })).map_err(|_| Errno::ENOMEM)
}

/// The kind of a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
}

/// One file or directory of the archive.
#[derive(Clone, Copy, Debug)]
pub struct Node {
    /// Path without the leading `/` (the root is `""`).
    pub path: &'static str,
    /// File or directory.
    pub kind: Kind,
    /// File contents (empty for directories).
    pub data: &'static [u8],
    /// Permission bits (low 12 bits of the mode).
    pub perm: u32,
    /// Inode number (the archive's, or a synthetic one for implied directories).
    pub ino: u64,
}

/// The root directory.
const ROOT: Node = Node {
    path: "",
    kind: Kind::Dir,
    data: &[],
    perm: 0o755,
    ino: 1,
};

/// A node of the index with its place in the tree.
struct Entry {
    node: Node,
    /// Its children: `kids[first_kid..first_kid + kid_count]`.
    first_kid: usize,
    kid_count: usize,
}

/// The indexed archive.
pub struct Initramfs {
    /// Every node, sorted by path (the root first: its path is empty).
    entries: Vec<Entry>,
    /// Indices into `entries`, grouped by parent, each group in archive order.
    kids: Vec<usize>,
}

/// Strips `./` and `/` prefixes and trailing slashes: the archive's and the callers'
/// spellings of a path compare equal afterwards.
fn normalize(path: &str) -> &str {
    let p = path.trim_start_matches("./").trim_start_matches('/');
    p.trim_end_matches('/')
}

/// The directory part of `path` (`""` for a top-level name).
fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(dir, _)| dir)
}

/// Bytes of a `newc` header: the magic and 13 eight-digit hex fields.
const HEADER: usize = 110;
/// `c_mode` type bits of a directory.
const S_IFMT: u32 = 0o170000;
const S_IFDIR: u32 = 0o040000;
/// Synthetic inode numbers of implied directories start here (above any 32-bit one).
const IMPLIED_INO: u64 = 0x1_0000_0000;

/// One field of a header: eight hex digits.
fn hex_field(h: &[u8], index: usize) -> Option<u32> {
    let digits = h.get(6 + index * 8..6 + index * 8 + 8)?;
    let text = core::str::from_utf8(digits).ok()?;
    u32::from_str_radix(text, 16).ok()
}

/// The entries of a `newc` archive in order: (name, mode, ino, contents). Stops at the
/// trailer or at the first malformed entry.
pub fn parse(
    archive: &'static [u8],
) -> impl Iterator<Item = (&'static str, u32, u32, &'static [u8])> {
    let mut at = 0usize;
    core::iter::from_fn(move || {
        let h = archive.get(at..at.checked_add(HEADER)?)?;
        if &h[..6] != b"070701" && &h[..6] != b"070702" {
            return None;
        }
        let (ino, mode) = (hex_field(h, 0)?, hex_field(h, 1)?);
        let size = hex_field(h, 6)? as usize;
        let namesize = hex_field(h, 11)? as usize;
        let name_start = at + HEADER;
        let name_end = name_start.checked_add(namesize)?;
        // The name includes its NUL.
        let name = archive.get(name_start..name_end.checked_sub(1)?)?;
        if archive.get(name_end - 1) != Some(&0) {
            return None;
        }
        let name = core::str::from_utf8(name).ok()?;
        if name == "TRAILER!!!" {
            return None;
        }
        let data_start = name_end.checked_next_multiple_of(4)?;
        let data_end = data_start.checked_add(size)?;
        let data = archive.get(data_start..data_end)?;
        at = data_end.checked_next_multiple_of(4)?;
        Some((name, mode, ino, data))
    })
}

impl Initramfs {
    /// An archive with no files.
    pub const fn empty() -> Initramfs {
        Initramfs {
            entries: Vec::new(),
            kids: Vec::new(),
        }
    }

    /// Indexes the archive bytes; an empty or malformed archive simply has no files (or
    /// the files before the first bad header).
    pub fn new(archive: &'static [u8]) -> Initramfs {
        // Path -> (node, order of first appearance). The root is always there.
        let mut nodes: BTreeMap<&'static str, (Node, usize)> = BTreeMap::new();
        nodes.insert("", (ROOT, 0));
        for (i, (name, mode, ino, data)) in parse(archive).enumerate() {
            let path = normalize(name);
            if path.is_empty() || path.split('/').any(|c| c == "." || c == "..") {
                continue;
            }
            let order = i + 1;
            // Parents first, so that a directory is ordered before what it holds.
            let mut dir = parent(path);
            while !nodes.contains_key(dir) {
                let implied = Node {
                    path: dir,
                    kind: Kind::Dir,
                    data: &[],
                    perm: 0o755,
                    ino: IMPLIED_INO + order as u64,
                };
                nodes.insert(dir, (implied, order));
                dir = parent(dir);
            }
            let dir = mode & S_IFMT == S_IFDIR;
            let node = Node {
                path,
                kind: if dir { Kind::Dir } else { Kind::File },
                data: if dir { &[] } else { data },
                perm: mode & 0o7777,
                ino: u64::from(ino).max(order as u64 + 1),
            };
            // The first entry of a path wins; a listed directory replaces an implied one.
            match nodes.get_mut(path) {
                None => {
                    nodes.insert(path, (node, order));
                }
                Some((old, _)) if old.ino >= IMPLIED_INO && dir => {
                    *old = Node {
                        ino: old.ino,
                        ..node
                    }
                }
                Some(_) => {}
            }
        }
        Self::from_nodes(nodes)
    }

    /// The index of `nodes` (sorted by path, each with its order of appearance).
    fn from_nodes(nodes: BTreeMap<&'static str, (Node, usize)>) -> Initramfs {
        let entries: Vec<Entry> = nodes
            .values()
            .map(|&(node, _)| Entry {
                node,
                first_kid: 0,
                kid_count: 0,
            })
            .collect();
        let mut index = Initramfs {
            entries,
            kids: Vec::new(),
        };
        // (parent, order, child) for every node but the root, grouped by parent.
        let mut links: Vec<(usize, usize, usize)> = nodes
            .values()
            .enumerate()
            .skip(1)
            .filter_map(|(i, (node, order))| Some((index.find(parent(node.path))?, *order, i)))
            .collect();
        links.sort_unstable();
        for (k, &(p, _, child)) in links.iter().enumerate() {
            let e = &mut index.entries[p];
            if e.kid_count == 0 {
                e.first_kid = k;
            }
            e.kid_count += 1;
            index.kids.push(child);
        }
        index
    }

    /// The index of the entry for `path` (normalised).
    fn find(&self, path: &str) -> Option<usize> {
        self.entries
            .binary_search_by(|e| e.node.path.cmp(path))
            .ok()
    }

    /// Looks up an absolute or relative (to `/`) path.
    pub fn lookup(&self, path: &str) -> Option<Node> {
        let want = normalize(path);
        if want.is_empty() {
            return Some(ROOT);
        }
        self.find(want).map(|i| self.entries[i].node)
    }

    /// The `index`-th direct child of directory `dir` (in archive order); `None` past
    /// the end.
    pub fn child(&self, dir: &str, index: usize) -> Option<Node> {
        let e = &self.entries[self.find(normalize(dir))?];
        if index >= e.kid_count {
            return None;
        }
        Some(self.entries[self.kids[e.first_kid + index]].node)
    }
}
