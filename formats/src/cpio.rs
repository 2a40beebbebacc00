//! `newc` cpio archives, as the kernel's initramfs: indexed once and read in place.
//!
//! The kernel's archive stays where the firmware put it (the frame allocator never hands
//! out its frames), so file contents are slices into it (`Node<'static>` there). At boot one pass over
//! the headers ([`parse`]) builds the index: every node sorted by path, and each
//! directory's children in archive order. A lookup is then a binary search (O(path
//! length x log entries)) and listing a directory O(its entries), whatever the size of
//! the archive. Directories are whatever the archive lists as directories plus every
//! parent of a listed path.
//!
//! The archive is untrusted input: the parser checks every header field and offset and
//! stops at the first entry that is malformed or runs past the end; the entries before
//! it stay usable.
//!
//! Symbolic links are nodes whose data is the target. [`Initramfs::resolve`] walks a
//! path component by component as Linux does: it follows every link before the last
//! component (and the last one too when asked), at most [`MAX_SYMLINKS`] times
//! ([`LookupError::Loop`] then), with `.` and `..` taken on the resolved directory.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

/// The kind of a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link; its data is the target.
    Symlink,
}

/// Why [`Initramfs::resolve`] found nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LookupError {
    /// A component does not exist (`ENOENT`).
    NotFound,
    /// A component before the last is not a directory, or the path ends in `/` after
    /// something that is not one (`ENOTDIR`).
    NotDir,
    /// More than [`MAX_SYMLINKS`] links were followed (`ELOOP`).
    Loop,
    /// A link's target with what follows it is longer than [`PATH_MAX`] (`ENAMETOOLONG`).
    TooLong,
    /// No memory for the path being walked (`ENOMEM`).
    NoMemory,
}

/// Most symbolic links one path walk follows (Linux's `MAXSYMLINKS`).
pub const MAX_SYMLINKS: usize = 40;
/// Longest path a walk holds, a link's target with the rest of the path included
/// (Linux's `PATH_MAX`, the NUL included).
pub const PATH_MAX: usize = 4096;

/// One file or directory of the archive.
#[derive(Clone, Copy, Debug)]
pub struct Node<'a> {
    /// Path without the leading `/` (the root is `""`).
    pub path: &'a str,
    /// File or directory.
    pub kind: Kind,
    /// File contents (empty for directories).
    pub data: &'a [u8],
    /// Permission bits (low 12 bits of the mode).
    pub perm: u32,
    /// Inode number (the archive's, or a synthetic one for implied directories).
    pub ino: u64,
    /// Modification time, seconds since the epoch (the archive's `c_mtime`; 0 for
    /// implied directories).
    pub mtime: u32,
}

/// The root directory.
const ROOT: Node<'static> = Node {
    path: "",
    kind: Kind::Dir,
    data: &[],
    perm: 0o755,
    ino: 1,
    mtime: 0,
};

/// A node of the index with its place in the tree.
struct Entry<'a> {
    node: Node<'a>,
    /// Its children: `kids[first_kid..first_kid + kid_count]`.
    first_kid: usize,
    kid_count: usize,
}

/// The indexed archive.
pub struct Initramfs<'a> {
    /// Every node, sorted by path (the root first: its path is empty).
    entries: Vec<Entry<'a>>,
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
/// `c_mode` (and `st_mode`) file-type bits.
pub const S_IFMT: u32 = 0o170000;
/// File type of a directory.
pub const S_IFDIR: u32 = 0o040000;
/// File type of a symbolic link.
pub const S_IFLNK: u32 = 0o120000;
/// Synthetic inode numbers of implied directories start here (above any 32-bit one).
const IMPLIED_INO: u64 = 0x1_0000_0000;

/// One field of a header: exactly eight hex digits (`from_str_radix` alone would also
/// take a leading `+`).
fn hex_field(h: &[u8], index: usize) -> Option<u32> {
    let digits = h.get(6 + index * 8..6 + index * 8 + 8)?;
    digits.iter().try_fold(0u32, |acc, &d| {
        let digit = char::from(d).to_digit(16)?;
        Some(acc << 4 | digit)
    })
}

/// One entry of a `newc` archive as the header gives it.
#[derive(Clone, Copy, Debug)]
pub struct RawEntry<'a> {
    /// The name as stored (not normalised).
    pub name: &'a str,
    /// `c_mode`: type and permission bits.
    pub mode: u32,
    /// `c_ino`.
    pub ino: u32,
    /// `c_mtime`.
    pub mtime: u32,
    /// The contents (a link's target).
    pub data: &'a [u8],
}

/// The entries of a `newc` archive in order. Stops at the trailer or at the first
/// malformed entry.
pub fn parse(archive: &[u8]) -> impl Iterator<Item = RawEntry<'_>> {
    let mut at = 0usize;
    core::iter::from_fn(move || {
        let h = archive.get(at..at.checked_add(HEADER)?)?;
        if &h[..6] != b"070701" && &h[..6] != b"070702" {
            return None;
        }
        let (ino, mode, mtime) = (hex_field(h, 0)?, hex_field(h, 1)?, hex_field(h, 5)?);
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
        Some(RawEntry {
            name,
            mode,
            ino,
            mtime,
            data,
        })
    })
}

impl<'a> Initramfs<'a> {
    /// An archive with no files.
    pub const fn empty() -> Initramfs<'a> {
        Initramfs {
            entries: Vec::new(),
            kids: Vec::new(),
        }
    }

    /// Indexes the archive bytes; an empty or malformed archive simply has no files (or
    /// the files before the first bad header).
    pub fn new(archive: &'a [u8]) -> Initramfs<'a> {
        // Path -> (node, order of first appearance). The root is always there.
        let mut nodes: BTreeMap<&'a str, (Node<'a>, usize)> = BTreeMap::new();
        nodes.insert("", (ROOT, 0));
        for (i, raw) in parse(archive).enumerate() {
            let path = normalize(raw.name);
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
                    mtime: 0,
                };
                nodes.insert(dir, (implied, order));
                dir = parent(dir);
            }
            let kind = match raw.mode & S_IFMT {
                S_IFDIR => Kind::Dir,
                S_IFLNK => Kind::Symlink,
                _ => Kind::File,
            };
            let dir = kind == Kind::Dir;
            let node = Node {
                path,
                kind,
                data: if dir { &[] } else { raw.data },
                perm: raw.mode & 0o7777,
                ino: u64::from(raw.ino).max(order as u64 + 1),
                mtime: raw.mtime,
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
    fn from_nodes(nodes: BTreeMap<&'a str, (Node<'a>, usize)>) -> Initramfs<'a> {
        let entries: Vec<Entry<'a>> = nodes
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
    pub fn lookup(&self, path: &str) -> Option<Node<'a>> {
        let want = normalize(path);
        if want.is_empty() {
            return Some(ROOT);
        }
        self.find(want).map(|i| self.entries[i].node)
    }

    /// Bytes of file contents and number of nodes in the index (`statfs`).
    pub fn size(&self) -> (usize, usize) {
        let bytes = self.entries.iter().map(|e| e.node.data.len()).sum();
        (bytes, self.entries.len())
    }

    /// The node `name` in directory `dir` (both as stored: no leading `/`), found by a
    /// binary search that compares `dir/name` in place (no allocation).
    fn find_in(&self, dir: &str, name: &str) -> Option<Node<'a>> {
        let sep: &[u8] = if dir.is_empty() { b"" } else { b"/" };
        let key = || dir.bytes().chain(sep.iter().copied()).chain(name.bytes());
        self.entries
            .binary_search_by(|e| e.node.path.bytes().cmp(key()))
            .ok()
            .map(|i| self.entries[i].node)
    }

    /// Walks `path` (absolute, or relative to `/`) from the root as Linux does: `.` and
    /// `..` on the directory reached so far (`..` of the root is the root), every
    /// symbolic link before the last component followed, the last one too if
    /// `follow_last` or if the path ends in `/`. A walk costs O(components x log
    /// entries) string comparisons plus the links it follows, whatever the size of the
    /// archive. A link's target is read as the archive stores it: relative to the
    /// link's directory unless it starts with `/`.
    pub fn resolve(&self, path: &str, follow_last: bool) -> Result<Node<'a>, LookupError> {
        let mut rest = String::new();
        rest.try_reserve(path.len())
            .map_err(|_| LookupError::NoMemory)?;
        rest.push_str(path);
        let mut at = 0;
        let mut dir: Node<'a> = ROOT;
        let mut links = 0;
        loop {
            let tail = rest[at..].trim_start_matches('/');
            at = rest.len() - tail.len();
            let (name, after) = tail.split_once('/').unwrap_or((tail, ""));
            if name.is_empty() {
                return Ok(dir);
            }
            at += name.len();
            let last = after.trim_start_matches('/').is_empty();
            let dir_only = last && rest.len() > at;
            let node = match name {
                "." => dir,
                ".." => self.lookup(parent(dir.path)).unwrap_or(ROOT),
                _ => self.find_in(dir.path, name).ok_or(LookupError::NotFound)?,
            };
            match node.kind {
                Kind::Dir => dir = node,
                Kind::Symlink if !last || follow_last || dir_only => {
                    links += 1;
                    if links > MAX_SYMLINKS {
                        return Err(LookupError::Loop);
                    }
                    let target =
                        core::str::from_utf8(node.data).map_err(|_| LookupError::NotFound)?;
                    if target.is_empty() {
                        return Err(LookupError::NotFound);
                    }
                    // What follows the link starts with `/` (or is empty).
                    let len = target.len() + rest.len() - at;
                    if len >= PATH_MAX {
                        return Err(LookupError::TooLong);
                    }
                    let mut next = String::new();
                    next.try_reserve(len).map_err(|_| LookupError::NoMemory)?;
                    next.push_str(target);
                    next.push_str(&rest[at..]);
                    if target.starts_with('/') {
                        dir = ROOT;
                    }
                    rest = next;
                    at = 0;
                }
                _ if dir_only => return Err(LookupError::NotDir),
                _ if last => return Ok(node),
                _ => return Err(LookupError::NotDir),
            }
            if last && node.kind == Kind::Dir {
                return Ok(node);
            }
        }
    }

    /// The `index`-th direct child of directory `dir` (in archive order); `None` past
    /// the end.
    pub fn child(&self, dir: &str, index: usize) -> Option<Node<'a>> {
        let e = &self.entries[self.find(normalize(dir))?];
        if index >= e.kid_count {
            return None;
        }
        Some(self.entries[self.kids[e.first_kid + index]].node)
    }
}
