//! Memory objects: what a frame of user memory belongs to, for the reverse map.
//!
//! Every frame mapped in user space (except the shared zero page) belongs to exactly one
//! [`MemObject`] and has a page index in it; the pair is the frame's *owner word*
//! ([`FrameSource::owner`]), given when the frame is allocated:
//!
//! | object | created | pages | page index of a frame |
//! |---|---|---|---|
//! | anonymous | lazily, at the first private frame of a space that has none (after `execve`); shared with the spaces forked from it afterwards | private: anonymous, copy-on-write copies, private file copies | `va >> PAGE_SHIFT` |
//! | shared | `mmap(MAP_SHARED \| MAP_ANONYMOUS)` | the object's own, zeroed on first touch | page offset in the object |
//! | file | once per file ([`MemObject::file`]; the kernel keeps one per file while mapped) | `MAP_SHARED` pages, read from the file on first touch | page offset in the file |
//! | memory file | once per in-memory file ([`MemObject::memory`]: a tmpfs file, for its whole life) | the file's data itself (its page cache, the only copy): written by `write`, by `MAP_SHARED` mappings, zeroed on first touch and charged to a [`PageAccount`] | page offset in the file |
//!
//! An object lists the address spaces that may map its pages (its *members*); the
//! reverse map ([`super::rmap`]) goes frame → owner word → object → members → the PTE
//! in each. A space joins an object when it maps it (`mmap`, `fork`) and leaves every
//! object it joined when it is torn down; a member that unmapped the object meanwhile is
//! only visited for nothing. One anonymous object serves a whole *fork family* (as
//! Linux's `anon_vma` did before 2.6.34): a child shares its parent's and joins it, and
//! the frames the child allocates afterwards belong to it too, so `fork` makes no
//! object; a walk for an anonymous frame visits the family's members. (Per-space objects
//! chained down the fork tree, as Linux's later `anon_vma` chains, keep walks to the
//! spaces that can map the frame, but cost every `fork` an object and a chain: measured,
//! `fork`+`exit` of an empty process 2.4 % dearer; see `docs/virtual-memory.md`.)
//!
//! The owner word names the object by a slot number in a global table (`OBJECTS`),
//! which stays valid as long as a frame can carry it: a frame's owner object lives at
//! least as long as any PTE mapping the frame (every space with a private frame holds
//! its family's object, every shared area holds its object).

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use spin::Mutex;

use super::hal::{FrameSource, OutOfMemory, PageAccount, VmFile};
use crate::addr::{PAGE_SHIFT, PAGE_SIZE, PhysAddr};

/// Bits of the page index in an owner word; the object's slot is above them.
const INDEX_BITS: u32 = 32;
/// The owner-word bit of a private anonymous object's pages (the ones reclaim may swap
/// out), so that the question needs no lookup. Page indices stay below it (anonymous
/// pages below 2^26, file pages inside an in-memory file).
const PRIVATE_BIT: u64 = 1 << (INDEX_BITS - 1);

/// The identity of an address space among the members of objects (unique for the
/// lifetime of the system: a counter).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SpaceId(pub u64);

/// What an object's pages are.
enum Kind {
    /// Private pages of a fork tree of spaces; no page map.
    Anon,
    /// Shared anonymous memory: zeroed on first touch.
    Shared,
    /// A file's pages: read from the file on first touch.
    File(Arc<dyn VmFile>),
    /// An in-memory file: the pages are the file's data. `size` (bytes) changes only
    /// under the page map's lock, so a fault's check against it and a truncation's
    /// removal of pages are ordered.
    Memory {
        size: AtomicU64,
        account: Arc<dyn PageAccount>,
    },
}

/// A memory object: anonymous (the private pages of a space and its fork descendants),
/// shared anonymous memory, or the pages of one file. See the module docs.
///
/// # Invariants
/// - `slot` names this object in [`OBJECTS`] from creation to drop.
/// - Each frame in `pages` carries one reference held by the object and the owner word
///   (`slot`, its index).
pub struct MemObject {
    slot: u32,
    kind: Kind,
    pages: Mutex<BTreeMap<u64, PhysAddr>>,
    /// A B-tree rather than a vector: a set that grows to thousands of members (a fork
    /// bomb's) and shrinks again gives its memory back node by node instead of leaving a
    /// large buffer behind.
    members: Mutex<BTreeSet<SpaceId>>,
}

/// The global table from slot to object (slot 0 is never used: owner word 0 means "no
/// owner"), with the free slots.
struct Registry {
    slots: Vec<Weak<MemObject>>,
    free: Vec<u32>,
}

/// Every live object by slot.
static OBJECTS: Mutex<Registry> = Mutex::new(Registry {
    slots: Vec::new(),
    free: Vec::new(),
});

impl Registry {
    /// A free slot (growing the table if none), or `None` when no memory is left.
    fn take(&mut self) -> Option<u32> {
        while let Some(slot) = self.free.pop() {
            // Slots at or past the end were cut off by `release`.
            if (slot as usize) < self.slots.len() {
                return Some(slot);
            }
        }
        if self.slots.is_empty() {
            self.slots.try_reserve(2).ok()?;
            self.slots.push(Weak::new());
        }
        let slot = u32::try_from(self.slots.len()).ok()?;
        self.slots.try_reserve(1).ok()?;
        // The free list must be able to take the slot back without allocating.
        self.free.try_reserve(self.slots.len() + 1).ok()?;
        self.slots.push(Weak::new());
        Some(slot)
    }

    /// Gives `slot` back; free slots at the end of the table are cut off, and the
    /// table's memory shrinks when it is mostly unused.
    fn release(&mut self, slot: u32) {
        let Some(w) = self.slots.get_mut(slot as usize) else {
            return;
        };
        *w = Weak::new();
        // Room was reserved when the slot was taken.
        self.free.push(slot);
        let unused = Weak::new();
        let before = self.slots.len();
        while self.slots.len() > 1 && self.slots.last().is_some_and(|w| w.ptr_eq(&unused)) {
            self.slots.pop();
        }
        if self.slots.len() < before {
            let len = self.slots.len();
            self.free.retain(|&s| (s as usize) < len);
            if len * 4 < self.slots.capacity() {
                self.slots.shrink_to(len * 2);
                self.free.shrink_to(len * 2);
            }
        }
    }
}

impl MemObject {
    fn new(kind: Kind) -> Result<Arc<MemObject>, OutOfMemory> {
        let mut reg = OBJECTS.lock();
        let slot = reg.take().ok_or(OutOfMemory)?;
        let obj = Arc::new(MemObject {
            slot,
            kind,
            pages: Mutex::new(BTreeMap::new()),
            members: Mutex::new(BTreeSet::new()),
        });
        reg.slots[slot as usize] = Arc::downgrade(&obj);
        Ok(obj)
    }

    /// A new anonymous object (the private pages of a space).
    pub(crate) fn anon() -> Result<Arc<MemObject>, OutOfMemory> {
        MemObject::new(Kind::Anon)
    }

    /// A new shared anonymous object (`MAP_SHARED | MAP_ANONYMOUS`).
    pub(crate) fn shared() -> Result<Arc<MemObject>, OutOfMemory> {
        MemObject::new(Kind::Shared)
    }

    /// A new object for the pages of `file`. The kernel keeps one per file (a weak
    /// reference beside the file, upgraded at each `mmap`), so that every mapping of the
    /// file shares its pages and adjacent mappings of it merge.
    pub fn file(file: Arc<dyn VmFile>) -> Result<Arc<MemObject>, OutOfMemory> {
        MemObject::new(Kind::File(file))
    }

    /// A new, empty in-memory file (size 0) whose pages are charged to `account`: the
    /// storage of a tmpfs file. Its pages are zeroed on first touch, by a write
    /// ([`page_for_write`](Self::page_for_write)) or by a fault of a shared mapping
    /// inside the file's size; a fault past the size is a bus error.
    pub fn memory(account: Arc<dyn PageAccount>) -> Result<Arc<MemObject>, OutOfMemory> {
        MemObject::new(Kind::Memory {
            size: AtomicU64::new(0),
            account,
        })
    }

    /// Whether it is an in-memory file ([`MemObject::memory`]), whose shared mappings may
    /// be writable.
    pub fn is_memory(&self) -> bool {
        matches!(self.kind, Kind::Memory { .. })
    }

    /// The size in bytes of an in-memory file or a file; 0 for anonymous objects.
    pub fn size(&self) -> u64 {
        match &self.kind {
            Kind::Memory { size, .. } => size.load(Ordering::Acquire),
            Kind::File(f) => f.size(),
            Kind::Anon | Kind::Shared => 0,
        }
    }

    /// The frame of page `index` if the object holds it, with a reference added for the
    /// caller (who drops it with [`FrameSource::put`]); `None` for a hole.
    pub fn cached<F: FrameSource>(&self, index: u64, frames: &F) -> Option<PhysAddr> {
        let pages = self.pages.lock();
        let pa = *pages.get(&index)?;
        frames.get(pa);
        Some(pa)
    }

    /// The frame of page `index` of an in-memory file, allocated (zeroed, charged) if
    /// absent whatever the size (a write past the end allocates before the size grows),
    /// with a reference added for the caller. [`PageError::NoSpace`] when the account is
    /// spent, [`PageError::OutOfMemory`] without a frame.
    pub fn page_for_write<F: FrameSource>(
        &self,
        index: u64,
        frames: &F,
    ) -> Result<PhysAddr, PageError> {
        let mut pages = self.pages.lock();
        let pa = match pages.get(&index) {
            Some(&pa) => pa,
            None => {
                let pa = self.new_memory_page(index, frames)?;
                pages.insert(index, pa);
                pa
            }
        };
        frames.get(pa);
        Ok(pa)
    }

    /// A charged, zeroed frame for page `index` of an in-memory file.
    fn new_memory_page<F: FrameSource>(
        &self,
        index: u64,
        frames: &F,
    ) -> Result<PhysAddr, PageError> {
        let Kind::Memory { account, .. } = &self.kind else {
            return Ok(frames.alloc_zeroed(self.owner_word(index))?);
        };
        if index >= PRIVATE_BIT {
            return Err(PageError::NoSpace);
        }
        if !account.charge_page() {
            return Err(PageError::NoSpace);
        }
        frames.alloc_zeroed(self.owner_word(index)).map_err(|e| {
            account.uncharge_pages(1);
            PageError::from(e)
        })
    }

    /// Sets the size of an in-memory file to at least `end` bytes (a write that reached
    /// it); no effect on other objects.
    pub fn grow(&self, end: u64) {
        let _pages = self.pages.lock();
        if let Kind::Memory { size, .. } = &self.kind {
            size.fetch_max(end, Ordering::AcqRel);
        }
    }

    /// Sets the size of an in-memory file to `new` bytes: pages wholly past it are let
    /// go (their charge given back; a page still mapped somewhere lives on in its PTEs
    /// until the caller unmaps them with [`unmap_object_tail`](super::unmap_object_tail)).
    /// The bytes past `new` in its last page are the caller's to zero. Returns the page
    /// index from which pages were dropped. No effect on other objects.
    pub fn truncate<F: FrameSource>(&self, new: u64, frames: &F) -> u64 {
        let keep = new.div_ceil(PAGE_SIZE as u64);
        let Kind::Memory { size, account } = &self.kind else {
            return keep;
        };
        let mut pages = self.pages.lock();
        size.store(new, Ordering::Release);
        let mut dropped = 0;
        while let Some(entry) = pages.last_entry() {
            if *entry.key() < keep {
                break;
            }
            frames.put(entry.remove());
            dropped += 1;
        }
        account.uncharge_pages(dropped);
        keep
    }

    /// How many pages the object holds (an in-memory file's blocks).
    pub fn resident_pages(&self) -> usize {
        self.pages.lock().len()
    }

    /// The object named by the slot of an owner word, if it is alive.
    pub(crate) fn by_owner(word: u64) -> Option<Arc<MemObject>> {
        let slot = (word >> INDEX_BITS) as usize;
        OBJECTS.lock().slots.get(slot)?.upgrade()
    }

    /// The owner word of this object's page `index`.
    #[inline]
    pub(crate) fn owner_word(&self, index: u64) -> u64 {
        // Every page that can exist has a smaller index: anonymous pages are below
        // 2^26 (the user half), file pages lie inside their (in-memory) file.
        debug_assert!(index < PRIVATE_BIT);
        let private = if self.is_anon() { PRIVATE_BIT } else { 0 };
        (self.slot as u64) << INDEX_BITS | private | index
    }

    /// Whether an owner word names a page of a private anonymous object.
    #[inline]
    pub(crate) const fn is_private_word(word: u64) -> bool {
        word & PRIVATE_BIT != 0
    }

    /// The page index of an owner word.
    #[inline]
    pub(crate) fn index_of(word: u64) -> u64 {
        word & (PRIVATE_BIT - 1)
    }

    /// Whether its pages are private anonymous pages (located by address).
    pub(crate) fn is_anon(&self) -> bool {
        matches!(self.kind, Kind::Anon)
    }

    /// The file, for an object of a file (to name it, for example).
    pub fn backing_file(&self) -> Option<Arc<dyn VmFile>> {
        match &self.kind {
            Kind::File(f) => Some(f.clone()),
            _ => None,
        }
    }

    /// The file, for an object of a file.
    pub(crate) fn vm_file(&self) -> Option<&dyn VmFile> {
        match &self.kind {
            Kind::File(f) => Some(&**f),
            _ => None,
        }
    }

    /// Adds `space` to the members (no effect if it is one).
    pub(crate) fn join(&self, space: SpaceId) {
        self.members.lock().insert(space);
    }

    /// Removes `space` from the members (no effect if it is none).
    pub(crate) fn leave(&self, space: SpaceId) {
        self.members.lock().remove(&space);
    }

    /// The spaces that may map this object's pages (a copy, taken under the lock).
    pub(crate) fn members(&self) -> Vec<SpaceId> {
        self.members.lock().iter().copied().collect()
    }

    /// The frame of page `index`, allocated on first use (zeroed, or filled from the file
    /// with zeros past its end), with a reference for the caller's PTE already added.
    /// `Ok(None)` for a file page wholly past the end of the file (a bus error).
    pub(crate) fn page<F: FrameSource>(
        &self,
        index: u64,
        frames: &F,
    ) -> Result<Option<PhysAddr>, PageError> {
        let mut pages = self.pages.lock();
        if let Kind::Memory { size, .. } = &self.kind
            && index >= size.load(Ordering::Acquire).div_ceil(PAGE_SIZE as u64)
        {
            return Ok(None);
        }
        let pa = match pages.get(&index) {
            Some(&pa) => pa,
            None => {
                let Some(pa) = self.fill(index, frames)? else {
                    return Ok(None);
                };
                pages.insert(index, pa);
                pa
            }
        };
        frames.get(pa);
        Ok(Some(pa))
    }

    /// A new frame with the contents of page `index`.
    fn fill<F: FrameSource>(&self, index: u64, frames: &F) -> Result<Option<PhysAddr>, PageError> {
        let Kind::File(file) = &self.kind else {
            return self.new_memory_page(index, frames).map(Some);
        };
        let offset = index << PAGE_SHIFT;
        if offset >= file.size() {
            return Ok(None);
        }
        let pa = frames.alloc_uninit(self.owner_word(index))?;
        let len = (file.size() - offset).min(PAGE_SIZE as u64) as usize;
        if file.read_page(offset, len, pa).is_err() {
            frames.put(pa);
            return Err(PageError::Io);
        }
        Ok(Some(pa))
    }

    /// The frame of page `index` if the object holds it (for the tests and the reverse
    /// map's users).
    pub fn resident(&self, index: u64) -> Option<PhysAddr> {
        self.pages.lock().get(&index).copied()
    }

    /// Drops the object's references on all its pages (called by whoever let go of the
    /// last reference to the object: the last area, or the kernel's file), and gives an
    /// in-memory file's charge back.
    pub fn release<F: FrameSource>(self, frames: &F) {
        let pages = core::mem::take(&mut *self.pages.lock());
        if let Kind::Memory { account, .. } = &self.kind {
            account.uncharge_pages(pages.len() as u64);
        }
        for (_, pa) in pages {
            frames.put(pa);
        }
    }
}

impl Drop for MemObject {
    fn drop(&mut self) {
        OBJECTS.lock().release(self.slot);
    }
}

/// Why a page of an object could not be had.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageError {
    /// No frame, or no memory for the page map.
    OutOfMemory,
    /// The file could not be read.
    Io,
    /// An in-memory file's account is spent (tmpfs full: `ENOSPC`, or `SIGBUS` for a
    /// fault).
    NoSpace,
}

impl From<OutOfMemory> for PageError {
    fn from(_: OutOfMemory) -> Self {
        PageError::OutOfMemory
    }
}
