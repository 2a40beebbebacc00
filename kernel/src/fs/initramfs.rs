//! The initramfs: a `newc` cpio archive the firmware placed in RAM (its range comes
//! from `/chosen/linux,initrd-*`), read in place with the `cpio_reader` crate.
//!
//! The archive stays where the firmware put it (the frame allocator never hands out its
//! frames), so file contents are `&'static [u8]` slices into it. Directories are whatever
//! the archive lists as directories plus every parent of a listed path.

use cpio_reader::Mode;

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

/// A parsed archive.
#[derive(Clone, Copy)]
pub struct Initramfs {
    archive: &'static [u8],
}

/// Strips `./` and `/` prefixes and trailing slashes: the archive's and the callers'
/// spellings of a path compare equal afterwards.
fn normalize(path: &str) -> &str {
    let p = path.trim_start_matches("./").trim_start_matches('/');
    p.trim_end_matches('/')
}

impl Initramfs {
    /// Wraps the archive bytes; an empty or malformed archive simply has no files (the
    /// cpio reader stops at the first bad header).
    pub const fn new(archive: &'static [u8]) -> Initramfs {
        Initramfs { archive }
    }

    fn entries(&self) -> impl Iterator<Item = cpio_reader::Entry<'static>> {
        cpio_reader::iter_files(self.archive)
    }

    /// Looks up an absolute or relative (to `/`) path.
    pub fn lookup(&self, path: &str) -> Option<Node> {
        let want = normalize(path);
        if want.is_empty() {
            return Some(Node {
                path: "",
                kind: Kind::Dir,
                data: &[],
                perm: 0o755,
                ino: 1,
            });
        }
        let mut implied = None;
        for (i, e) in self.entries().enumerate() {
            let name = normalize(e.name());
            if name == want {
                let kind = if e.mode().contains(Mode::DIRECTORY) {
                    Kind::Dir
                } else {
                    Kind::File
                };
                let data = if kind == Kind::File { e.file() } else { &[] };
                return Some(Node {
                    path: name,
                    kind,
                    data,
                    perm: e.mode().bits() & 0o7777,
                    ino: u64::from(e.ino()).max(i as u64 + 2),
                });
            }
            if implied.is_none()
                && name.len() > want.len()
                && name.starts_with(want)
                && name.as_bytes()[want.len()] == b'/'
            {
                implied = Some((&name[..want.len()], i));
            }
        }
        implied.map(|(path, i)| Node {
            path,
            kind: Kind::Dir,
            data: &[],
            perm: 0o755,
            ino: 0x1_0000_0000 + i as u64,
        })
    }

    /// The `index`-th distinct direct child name of directory `dir` (in archive order),
    /// with its node; `None` past the end.
    pub fn child(&self, dir: &str, index: usize) -> Option<Node> {
        let dir = normalize(dir);
        let mut seen = 0;
        for (i, e) in self.entries().enumerate() {
            let name = normalize(e.name());
            let Some(rest) = child_part(dir, name) else {
                continue;
            };
            // Report each child once: at its first appearance in the archive.
            let first = self
                .entries()
                .take(i)
                .all(|prev| child_part(dir, normalize(prev.name())) != Some(rest));
            if !first {
                continue;
            }
            if seen == index {
                let full = &name[..rest_end(dir, rest)];
                return self.lookup(full);
            }
            seen += 1;
        }
        None
    }
}

/// The first path component of `name` below `dir`, if `name` is inside `dir`.
fn child_part<'a>(dir: &str, name: &'a str) -> Option<&'a str> {
    let rest = if dir.is_empty() {
        name
    } else {
        name.strip_prefix(dir)?.strip_prefix('/')?
    };
    let first = rest.split('/').next()?;
    (!first.is_empty()).then_some(first)
}

/// Length of `dir/rest` (the child's full path).
fn rest_end(dir: &str, rest: &str) -> usize {
    if dir.is_empty() {
        rest.len()
    } else {
        dir.len() + 1 + rest.len()
    }
}
