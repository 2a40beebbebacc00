//! Memory areas: a page-aligned range with one protection and one backing.
//!
//! An [`Area`] is the policy record for `[start, end)`: what may be done with its pages
//! ([`Prot`]) and where a page comes from on first touch ([`Backing`]). Areas are split
//! when an operation covers part of one and merged again when two neighbours become
//! indistinguishable, so the area set is always the coarsest description of the space.

use alloc::sync::Arc;

use super::hal::{PagePerms, VmFile};
use super::object::MemObject;
use crate::addr::{PAGE_SHIFT, PAGE_SIZE, VirtAddr, VirtRange};

bitflags::bitflags! {
    /// Protection of an area, with Linux's `PROT_*` bit values.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
    pub struct Prot: u8 {
        /// `PROT_READ`.
        const READ = 1;
        /// `PROT_WRITE`.
        const WRITE = 2;
        /// `PROT_EXEC`.
        const EXEC = 4;
    }
}

impl Prot {
    /// No access (`PROT_NONE`).
    pub const NONE: Prot = Prot::empty();

    /// The PTE flags for a page of an area with this protection. `read_only` withholds
    /// write permission (copy-on-write pages and the zero page); write implies read, as
    /// Sv39 requires and as Linux maps write-only areas on RISC-V. No R/W/X yields the
    /// retained, inaccessible PTE of a `PROT_NONE` page.
    pub(crate) fn pte_flags(self, read_only: bool) -> PagePerms {
        let mut flags = PagePerms::USER;
        if self.intersects(Prot::READ | Prot::WRITE) {
            flags |= PagePerms::READ;
        }
        if self.contains(Prot::WRITE) && !read_only {
            flags |= PagePerms::WRITE;
        }
        if self.contains(Prot::EXEC) {
            flags |= PagePerms::EXEC;
        }
        flags
    }
}

/// Whether an area is locked in memory (`mlock`, `mlock2`, `mlockall`, `MAP_LOCKED`):
/// Linux's `VM_LOCKED` and `VM_LOCKONFAULT`. Reclaim never takes a page a locked area
/// maps; the two locked modes differ only in when the pages come in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Lock {
    /// Not locked: its pages may be swapped out.
    #[default]
    Unlocked,
    /// Locked, every page faulted in when the lock is taken (`VM_LOCKED`).
    Locked,
    /// Locked, pages kept once touched but not faulted in ahead (`VM_LOCKED |
    /// VM_LOCKONFAULT`: `MLOCK_ONFAULT`, `MCL_ONFAULT`).
    OnFault,
}

impl Lock {
    /// Whether the area's pages are kept in memory (either locked mode).
    pub fn is_locked(self) -> bool {
        self != Lock::Unlocked
    }
}

/// What `madvise` said about huge pages for an area.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) enum HugeAdvice {
    /// Nothing: the system's mode decides ([`Thp`](super::Thp)).
    #[default]
    Default,
    /// `MADV_HUGEPAGE`: huge pages also in `madvise` mode.
    Huge,
    /// `MADV_NOHUGEPAGE`: never (Linux's `VM_NOHUGEPAGE`).
    Never,
}

/// Where the pages of an area come from.
#[derive(Clone)]
pub(crate) enum Backing {
    /// Private anonymous memory: zero page on read, zeroed frame on write.
    Anon,
    /// Shared memory: the pages of `obj` (shared anonymous memory, or a file mapped
    /// `MAP_SHARED`); `pgoff` is the object page at the area's start.
    Shared { obj: Arc<MemObject>, pgoff: u64 },
    /// Private file mapping of the file of `obj`: `offset` is the file offset of the
    /// area's start; file bytes stop at file offset `file_end` (an ELF segment's
    /// `p_offset + p_filesz`), beyond which pages behave like private anonymous memory
    /// (the bss). Its pages are private copies (anonymous pages of the space).
    File {
        obj: Arc<MemObject>,
        offset: u64,
        file_end: u64,
    },
}

/// One memory area `[start, end)`.
#[derive(Clone)]
pub(crate) struct Area {
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) prot: Prot,
    /// Whether `PROT_WRITE` may ever be granted (false for `MAP_SHARED` mappings of files
    /// opened read-only, as Linux's missing `VM_MAYWRITE`).
    pub(crate) may_write: bool,
    /// A stack: a fault just below it extends it downwards (`VM_GROWSDOWN`).
    pub(crate) grows_down: bool,
    /// Locked in memory (`VM_LOCKED`, `VM_LOCKONFAULT`).
    pub(crate) lock: Lock,
    /// `madvise(MADV_HUGEPAGE / MADV_NOHUGEPAGE)`.
    pub(crate) huge: HugeAdvice,
    pub(crate) backing: Backing,
    /// The index, in the family's anonymous object, of the private page at `start`
    /// (Linux's `vm_pgoff` of an anonymous area): `start >> PAGE_SHIFT` when the area is
    /// made, kept when `mremap` moves it, so a private frame keeps its owner word and
    /// the reverse map finds it at the new address. Shared areas never hold private
    /// frames and ignore it.
    pub(crate) anon_pgoff: u64,
}

/// Where a faulting page of an area comes from.
pub(crate) enum PageOrigin<'a> {
    /// Private anonymous memory (including the bss tail of a file mapping).
    Anon,
    /// A page with contents from somewhere.
    Backed(BackedPage<'a>),
}

/// Where a page that is not anonymous comes from ([`PageOrigin::Backed`]).
pub(crate) enum BackedPage<'a> {
    /// Page `index` of a shared object.
    Shared(&'a MemObject, u64),
    /// `len` bytes of `file` at `offset` (page aligned), zeros after.
    File(&'a dyn VmFile, u64, usize),
    /// A private copy of page `index` of an in-memory file (zeros for a hole; a bus
    /// error past its end).
    Cache(&'a MemObject, u64),
}

impl Area {
    pub(crate) fn new(
        start: usize,
        end: usize,
        prot: Prot,
        backing: Backing,
        may_write: bool,
        grows_down: bool,
    ) -> Self {
        Area {
            start,
            end,
            prot,
            may_write,
            grows_down,
            lock: Lock::Unlocked,
            huge: HugeAdvice::Default,
            backing,
            anon_pgoff: (start >> PAGE_SHIFT) as u64,
        }
    }

    /// The index in the family's anonymous object of a private frame at `va` (inside
    /// the area): its owner word's page index.
    pub(crate) fn anon_index(&self, va: usize) -> u64 {
        self.anon_pgoff + ((va - self.start) >> PAGE_SHIFT) as u64
    }

    /// The address at which this area maps private page `index` of the family's
    /// anonymous object, if its range of indices holds it (shared areas: never).
    pub(crate) fn anon_va(&self, index: u64) -> Option<usize> {
        let pages = ((self.end - self.start) >> PAGE_SHIFT) as u64;
        let delta = index.checked_sub(self.anon_pgoff).filter(|&d| d < pages)?;
        (!self.is_shared()).then(|| self.start + ((delta as usize) << PAGE_SHIFT))
    }

    /// Whether a private area's anonymous indices no longer follow its address (it was
    /// moved by `mremap`).
    pub(crate) fn anon_moved(&self) -> bool {
        !self.is_shared() && self.anon_pgoff != (self.start >> PAGE_SHIFT) as u64
    }

    /// The same area, locked as `lock` says (a new mapping under `MAP_LOCKED` or
    /// `mlockall(MCL_FUTURE)`).
    pub(crate) fn locked(mut self, lock: Lock) -> Self {
        self.lock = lock;
        self
    }

    pub(crate) fn is_shared(&self) -> bool {
        matches!(self.backing, Backing::Shared { .. })
    }

    /// The lowest address another mapping may end at below this area: a stack keeps a
    /// guard gap free below it (Linux's `vm_start_gap`).
    pub(crate) fn start_gap(&self, guard: usize) -> usize {
        if self.grows_down {
            self.start.saturating_sub(guard)
        } else {
            self.start
        }
    }

    /// Whether an access by hardware is allowed by the area: loads need read or write
    /// (a write-only area is readable on RISC-V), stores need write, fetches need exec.
    pub(crate) fn allows(&self, access: super::Access) -> bool {
        match access {
            super::Access::Read => self.prot.intersects(Prot::READ | Prot::WRITE),
            super::Access::Write => self.prot.contains(Prot::WRITE),
            super::Access::Exec => self.prot.contains(Prot::EXEC),
        }
    }

    /// Where the page at `va` (inside the area) comes from.
    pub(crate) fn source(&self, va: usize) -> PageOrigin<'_> {
        let delta = va - self.start;
        match &self.backing {
            Backing::Anon => PageOrigin::Anon,
            Backing::Shared { obj, pgoff } => PageOrigin::Backed(BackedPage::Shared(
                obj,
                pgoff + (delta >> PAGE_SHIFT) as u64,
            )),
            Backing::File {
                obj,
                offset,
                file_end,
            } => {
                let off = offset + delta as u64;
                if obj.is_memory() && off < *file_end {
                    return PageOrigin::Backed(BackedPage::Cache(obj, off >> PAGE_SHIFT));
                }
                match obj.vm_file() {
                    Some(file) if off < *file_end => {
                        let len = (*file_end - off).min(PAGE_SIZE as u64) as usize;
                        PageOrigin::Backed(BackedPage::File(file, off, len))
                    }
                    _ => PageOrigin::Anon,
                }
            }
        }
    }

    /// Cuts the area at `at` (strictly inside): `self` keeps `[start, at)`, the returned
    /// area is `[at, end)` with its backing offset advanced.
    pub(crate) fn split_off(&mut self, at: usize) -> Area {
        debug_assert!(self.start < at && at < self.end);
        let delta = at - self.start;
        let mut tail = self.clone();
        tail.start = at;
        tail.anon_pgoff += (delta >> PAGE_SHIFT) as u64;
        match &mut tail.backing {
            Backing::Anon => {}
            Backing::Shared { pgoff, .. } => *pgoff += (delta >> PAGE_SHIFT) as u64,
            Backing::File { offset, .. } => *offset += delta as u64,
        }
        self.end = at;
        tail
    }

    /// Whether `next` (starting exactly at `self.end`) continues this area so seamlessly
    /// that the two can be one area.
    pub(crate) fn can_merge(&self, next: &Area) -> bool {
        if self.end != next.start
            || self.prot != next.prot
            || self.may_write != next.may_write
            || self.grows_down != next.grows_down
            || self.lock != next.lock
            || self.huge != next.huge
        {
            return false;
        }
        let len = (self.end - self.start) as u64;
        if !self.is_shared() && self.anon_pgoff + (len >> PAGE_SHIFT) != next.anon_pgoff {
            // Private pages on both sides must keep their indices (after `mremap`).
            return false;
        }
        match (&self.backing, &next.backing) {
            (Backing::Anon, Backing::Anon) => true,
            (Backing::Shared { obj: a, pgoff: pa }, Backing::Shared { obj: b, pgoff: pb }) => {
                Arc::ptr_eq(a, b) && pa + (len >> PAGE_SHIFT) == *pb
            }
            (
                Backing::File {
                    obj: a,
                    offset: oa,
                    file_end: ea,
                },
                Backing::File {
                    obj: b,
                    offset: ob,
                    file_end: eb,
                },
            ) => Arc::ptr_eq(a, b) && oa + len == *ob && ea == eb,
            _ => false,
        }
    }

    /// The public description of this area.
    pub(crate) fn info(&self) -> AreaInfo {
        AreaInfo {
            range: VirtAddr(self.start)..VirtAddr(self.end),
            prot: self.prot,
            kind: match &self.backing {
                Backing::Anon => AreaKind::Anon,
                Backing::Shared { obj, pgoff } if obj.vm_file().is_some() || obj.is_memory() => {
                    AreaKind::SharedFile {
                        offset: pgoff << PAGE_SHIFT,
                    }
                }
                Backing::Shared { .. } => AreaKind::SharedAnon,
                Backing::File {
                    offset, file_end, ..
                } => AreaKind::File {
                    offset: *offset,
                    file_end: *file_end,
                },
            },
            grows_down: self.grows_down,
            lock: self.lock,
            anon_pgoff: self.anon_pgoff,
            huge_advice: match self.huge {
                HugeAdvice::Default => None,
                HugeAdvice::Huge => Some(true),
                HugeAdvice::Never => Some(false),
            },
        }
    }
}

/// What backs an area (the public view).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AreaKind {
    /// Private anonymous memory.
    Anon,
    /// Shared anonymous memory (`MAP_SHARED | MAP_ANONYMOUS`).
    SharedAnon,
    /// A file mapped `MAP_SHARED`: the file's pages themselves.
    SharedFile {
        /// File offset of the area's first byte.
        offset: u64,
    },
    /// A private file mapping: `offset` is the file offset of the area's first byte, and
    /// file contents stop at file offset `file_end` (zeros after; `u64::MAX` for `mmap`).
    File {
        /// File offset of the area's first byte.
        offset: u64,
        /// File offset where file contents stop and zero-filled memory begins.
        file_end: u64,
    },
}

/// A read-only description of one area (for `/proc/<pid>/maps`-style listings and tests).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AreaInfo {
    /// The page-aligned range covered.
    pub range: VirtRange,
    /// Its protection.
    pub prot: Prot,
    /// Its backing.
    pub kind: AreaKind,
    /// Whether it is a stack that grows down on faults below it.
    pub grows_down: bool,
    /// Whether it is locked in memory (`mlock` and friends).
    pub lock: Lock,
    /// The index of its first page in the family's anonymous object (the page number of
    /// its start unless `mremap` moved it; two private neighbours whose indices do not
    /// continue stay apart).
    pub anon_pgoff: u64,
    /// What `madvise` said about huge pages: `Some(true)` after `MADV_HUGEPAGE`,
    /// `Some(false)` after `MADV_NOHUGEPAGE` (`nh` in smaps' `VmFlags`), `None` if
    /// nothing.
    pub huge_advice: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn anon(start: usize, end: usize, prot: Prot) -> Area {
        Area::new(start, end, prot, Backing::Anon, true, false)
    }

    #[test]
    fn pte_flags_follow_linux_riscv() {
        assert_eq!(Prot::NONE.pte_flags(false), PagePerms::USER);
        assert!(!Prot::NONE.pte_flags(false).is_accessible());
        assert_eq!(
            Prot::WRITE.pte_flags(false),
            PagePerms::USER | PagePerms::READ | PagePerms::WRITE
        );
        assert_eq!(
            Prot::WRITE.pte_flags(true),
            PagePerms::USER | PagePerms::READ
        );
        assert_eq!(
            Prot::EXEC.pte_flags(false),
            PagePerms::USER | PagePerms::EXEC
        );
        assert_eq!(
            (Prot::READ | Prot::WRITE | Prot::EXEC).pte_flags(true),
            PagePerms::USER | PagePerms::READ | PagePerms::EXEC
        );
    }

    #[test]
    fn split_then_merge_restores_shared_offsets() {
        let obj = MemObject::shared().unwrap();
        let mut a = Area::new(
            0x10000,
            0x20000,
            Prot::READ,
            Backing::Shared {
                obj: obj.clone(),
                pgoff: 3,
            },
            true,
            false,
        );
        let b = a.split_off(0x14000);
        assert_eq!(
            (a.start, a.end, b.start, b.end),
            (0x10000, 0x14000, 0x14000, 0x20000)
        );
        match &b.backing {
            Backing::Shared { pgoff, .. } => assert_eq!(*pgoff, 7),
            _ => unreachable!(),
        }
        assert!(a.can_merge(&b));
        // A different object or a gap in offsets never merges.
        let other = Area::new(
            0x14000,
            0x15000,
            Prot::READ,
            Backing::Shared {
                obj: MemObject::shared().unwrap(),
                pgoff: 7,
            },
            true,
            false,
        );
        assert!(!a.can_merge(&other));
    }

    #[test]
    fn merge_requires_same_prot_flags_and_adjacency() {
        let a = anon(0x1000, 0x2000, Prot::READ);
        assert!(a.can_merge(&anon(0x2000, 0x3000, Prot::READ)));
        assert!(!a.can_merge(&anon(0x3000, 0x4000, Prot::READ)));
        assert!(!a.can_merge(&anon(0x2000, 0x3000, Prot::WRITE)));
        let mut stack = anon(0x2000, 0x3000, Prot::READ);
        stack.grows_down = true;
        assert!(!a.can_merge(&stack));
        // The lock is part of the area: locked and unlocked neighbours stay apart, and
        // so do the two locked modes; a split keeps it on both sides.
        let mut locked = anon(0x2000, 0x3000, Prot::READ).locked(Lock::Locked);
        assert!(!a.can_merge(&locked));
        assert!(!locked.can_merge(&anon(0x3000, 0x4000, Prot::READ).locked(Lock::OnFault)));
        assert!(locked.can_merge(&anon(0x3000, 0x4000, Prot::READ).locked(Lock::Locked)));
        let mut whole = anon(0x1000, 0x3000, Prot::READ).locked(Lock::OnFault);
        let tail = whole.split_off(0x2000);
        assert_eq!((whole.lock, tail.lock), (Lock::OnFault, Lock::OnFault));
        locked.lock = Lock::Unlocked;
        assert!(a.can_merge(&locked));
        assert_eq!(stack.start_gap(0x1000), 0x1000);
        assert_eq!(stack.start_gap(0x10_0000), 0);
    }
}
