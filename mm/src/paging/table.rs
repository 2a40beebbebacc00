//! [`PageTable`]: one Sv39 tree and every operation on it.
//!
//! Range operations go through the one recursive walker of [`walk`](super::walk) with a
//! visitor per operation; single entries are read and changed through
//! [`entry`](super::entry); the argument checks are shared helpers (`PageTable::span`,
//! `leaf_flags`, `check_phys`).

use core::ops::Range;
use core::sync::atomic::{AtomicU64, Ordering};

use crate::addr::{PAGE_SHIFT, PAGE_SIZE, PhysAddr, VirtAddr, Vpn, is_aligned};
use crate::layout::{KERNEL_HALF_START, USER_END};
use crate::tlb::{FlushBatch, TlbOps};

use super::entry::{Deferred, LeafEntry, Unmapped, check_phys, leaf_flags, load, set_leaf_flags};
use super::error::PagingError;
use super::memory::PagingMemory;
use super::pte::{LEVELS, PageSize, Pte, PteFlags, SATP_ASID_SHIFT, SATP_MODE_SV39, TablePage};
use super::walk::{
    ALL_PAGES, EachLeaf, EachRemembered, MustBeFree, Protect, Unmap, first_page_of_table,
    free_empty, in_kernel_half, pages_per_entry, table_at, va_of, zero_entries,
};

/// The largest leaf that fits at page index `page` mapping `pa` with `pages` pages left.
#[inline]
fn largest_leaf(page: usize, pa: PhysAddr, pages: usize) -> PageSize {
    let mut size = PageSize::Size4K;
    for candidate in PageSize::LARGEST_FIRST {
        if is_aligned(page, candidate.pages())
            && is_aligned(pa.0, candidate.bytes())
            && pages >= candidate.pages()
        {
            size = candidate;
            break;
        }
    }
    size
}

/// An Sv39 page table: a root page and the tree below it, in memory reached through `M`.
///
/// # Invariants
/// - Every table page other than the root has at least one valid entry: a table that an
///   unmap empties is unlinked and freed (after the TLB flush). So "a table exists here"
///   means "something is mapped below".
/// - Every entry is empty (all zero), a leaf, at level 0 a remembered entry
///   ([`remember`](Self::remember)), or, above level 0, a pointer to a table page of this
///   tree; nothing else is ever written. Table pages come from
///   [`PagingMemory::alloc_table`] zeroed, and every walk that frees a table has cleared
///   each entry of it on the way (leaves taken, remembered entries cleared, tables below
///   unlinked), so every page
///   given to [`PagingMemory::free_table`] is all zero again; a user table's root is
///   cleared of the kernel half it copied before it is freed.
/// - A leaf at level `l` maps a frame aligned to its size; leaf flags always have `V` and
///   `R` or `X` (never `W` without `R`).
/// - A user table ([`new_user`](Self::new_user)) shares the kernel half's root entries
///   with the kernel table and never changes or frees anything below them: requests in
///   the kernel half fail with [`PagingError::OutOfRange`].
/// - No two leaves overlap: mapping over a mapping fails with
///   [`PagingError::AlreadyMapped`]. Huge leaves are split when an unmap or protect
///   covers part of one; they are never merged back.
///
/// Dropping the table frees every table page it owns but not the frames its leaves map
/// (those belong to whoever mapped them; [`destroy`](Self::destroy) reports them). The
/// caller guarantees that no hart still runs on a table being dropped.
pub struct PageTable<M: PagingMemory> {
    pub(super) mem: M,
    pub(super) root: PhysAddr,
    /// Page indices `0..owned_end` are this table's to change.
    pub(super) owned_end: usize,
    /// A remembered entry was ever written ([`remember`](Self::remember)): range walks
    /// must look for them.
    pub(super) remembers: bool,
    /// The table that received the last mapped leaf: sequential mappings mostly land in
    /// it, so they skip the walk. Cleared whenever tables may be freed (unmap) or
    /// detached (fork). Never a detached table.
    last: Option<LastTable>,
    /// The flags a leaf loses and gains when it is copied out of a table shared by
    /// fork; `None`: this tree shares no tables (`share`).
    pub(super) share_protect: Option<(PteFlags, PteFlags)>,
    /// Fork ever detached a table of this tree (`share`): range changes look for
    /// detached entries to attach.
    pub(super) detaches: bool,
}

/// The table at `level` whose entries cover pages `first..first + 512^(level+1)`.
#[derive(Clone, Copy)]
struct LastTable {
    level: usize,
    first: usize,
    pa: PhysAddr,
}

impl<M: PagingMemory> PageTable<M> {
    /// An empty table that owns the whole address space (the kernel's table).
    pub fn new(mem: M) -> Result<Self, PagingError> {
        let root = alloc_table(&mem)?;
        Ok(Self {
            mem,
            root,
            owned_end: ALL_PAGES,
            remembers: false,
            last: None,
            share_protect: None,
            detaches: false,
        })
    }

    /// An empty user table whose kernel half is `kernel`'s: the root entries of the
    /// kernel half are copied, so the kernel's tables below them are shared.
    ///
    /// Kernel mappings added later appear in every user table as long as their root entry
    /// already existed: the kernel creates the root entries of all its regions at boot.
    pub fn new_user<K: PagingMemory>(mem: M, kernel: &PageTable<K>) -> Result<Self, PagingError> {
        let root = alloc_table(&mem)?;
        let first = KERNEL_HALF_START.vpn().index(LEVELS - 1);
        let src = table_at(&kernel.mem, kernel.root);
        let dst = table_at(&mem, root);
        for (d, s) in dst.0[first..].iter().zip(&src.0[first..]) {
            d.store(s.load(Ordering::Relaxed), Ordering::Relaxed);
        }
        // One fence for the 256 entries instead of an acquire load and a release store
        // each: the tables the kernel entries point to are seen complete (they were
        // published with release stores), and the copies are ordered before whatever
        // makes the new root visible to another hart.
        core::sync::atomic::fence(Ordering::AcqRel);
        Ok(Self {
            mem,
            root,
            owned_end: USER_END.0 >> PAGE_SHIFT,
            remembers: false,
            last: None,
            share_protect: None,
            detaches: false,
        })
    }

    /// Adopts the tree at `root` (e.g. the boot page table) as a table owning the whole
    /// address space.
    ///
    /// # Safety
    ///
    /// `root` and every table page below it were allocated from `mem`, satisfy the
    /// invariants of [`PageTable`] (in particular: every entry is empty, a leaf, or a
    /// table pointer above level 0, so pages freed later are all zero), and belong to no
    /// other `PageTable`.
    pub unsafe fn from_root(mem: M, root: PhysAddr) -> Self {
        Self {
            mem,
            root,
            owned_end: ALL_PAGES,
            remembers: false,
            last: None,
            share_protect: None,
            detaches: false,
        }
    }

    /// Physical address of the root page.
    #[inline]
    pub fn root(&self) -> PhysAddr {
        self.root
    }

    /// The `satp` value that runs this table with `asid` (MODE = 8, Sv39).
    #[inline]
    pub fn satp(&self, asid: u16) -> usize {
        SATP_MODE_SV39 | (asid as usize) << SATP_ASID_SHIFT | self.root.pfn().0
    }

    /// The memory the table lives in.
    #[inline]
    pub fn memory(&self) -> &M {
        &self.mem
    }

    /// Maps one leaf of `size` at `va` to `pa`. Both must be aligned to `size`.
    ///
    /// Errors: [`InvalidFlags`](PagingError::InvalidFlags),
    /// [`Misaligned`](PagingError::Misaligned), [`NonCanonical`](PagingError::NonCanonical),
    /// [`OutOfRange`](PagingError::OutOfRange), [`AlreadyMapped`](PagingError::AlreadyMapped)
    /// if anything is mapped in `va..va + size`, [`OutOfMemory`](PagingError::OutOfMemory);
    /// on any error nothing changed. A new mapping needs no TLB flush.
    pub fn map(
        &mut self,
        va: VirtAddr,
        pa: PhysAddr,
        size: PageSize,
        flags: PteFlags,
    ) -> Result<(), PagingError> {
        let flags = leaf_flags(flags)?;
        if !is_aligned(va.0 | pa.0, size.bytes()) {
            return Err(PagingError::Misaligned);
        }
        // An aligned leaf never crosses a half, and owned ranges end on a root-entry
        // boundary, so the leaf is canonical and owned if its first page is.
        let page = self.page_index(va)?;
        check_phys(pa, size.bytes())?;
        let table = self.leaf_table(page, size.level())?;
        let slot = &table.0[Vpn(page).index(size.level())];
        // Not empty: a leaf, a table, or a remembered entry.
        if load(slot) != Pte::EMPTY {
            return Err(PagingError::AlreadyMapped);
        }
        slot.store(Pte::leaf(pa, flags).bits(), Ordering::Release);
        Ok(())
    }

    /// Installs the 4 KiB leaf `va` → `pa` with `flags`, replacing a 4 KiB leaf already
    /// there, in one walk (so a copy-on-write break points the leaf at its copy without a
    /// second lookup); returns the entry it replaced ([`Pte::EMPTY`] if there was none,
    /// with the `A`/`D` bits the hardware had set if there was one). The old translation
    /// of a replaced leaf must be flushed before its frame is reused.
    ///
    /// Errors as for [`map`](Self::map), [`AlreadyMapped`](PagingError::AlreadyMapped)
    /// only when a huge leaf covers `va`; on any error nothing changed.
    #[inline]
    pub fn set_leaf(
        &mut self,
        va: VirtAddr,
        pa: PhysAddr,
        flags: PteFlags,
    ) -> Result<Pte, PagingError> {
        let flags = leaf_flags(flags)?;
        if !is_aligned(va.0 | pa.0, PAGE_SIZE) {
            return Err(PagingError::Misaligned);
        }
        let page = self.page_index(va)?;
        check_phys(pa, PAGE_SIZE)?;
        let table = self.leaf_table(page, 0)?;
        let slot = &table.0[Vpn(page).index(0)];
        let old = slot.swap(Pte::leaf(pa, flags).bits(), Ordering::AcqRel);
        Ok(Pte::from_bits(old))
    }

    /// Installs the 2 MiB leaf `va` → `pa` with `flags` in one walk, where the 2 MiB slot
    /// is empty or holds a 2 MiB leaf (replaced: a write to a huge zero page, a
    /// copy-on-write copy of a huge page); returns the entry it replaced
    /// ([`Pte::EMPTY`] if none). A replaced leaf's translation must be flushed before
    /// its frames are reused.
    ///
    /// Errors: [`AlreadyMapped`](PagingError::AlreadyMapped) when a table of 4 KiB
    /// entries (or a remembered entry) is there; otherwise as for [`map`](Self::map). On
    /// any error nothing changed.
    pub fn set_huge_leaf(
        &mut self,
        va: VirtAddr,
        pa: PhysAddr,
        flags: PteFlags,
    ) -> Result<Pte, PagingError> {
        let flags = leaf_flags(flags)?;
        let size = PageSize::Size2M;
        if !is_aligned(va.0 | pa.0, size.bytes()) {
            return Err(PagingError::Misaligned);
        }
        let page = self.page_index(va)?;
        check_phys(pa, size.bytes())?;
        let table = table_at(&self.mem, self.table_for(page, size.level())?);
        let slot = &table.0[Vpn(page).index(size.level())];
        let old = load(slot);
        if old != Pte::EMPTY && !old.is_leaf() {
            return Err(PagingError::AlreadyMapped);
        }
        slot.store(Pte::leaf(pa, flags).bits(), Ordering::Release);
        Ok(old)
    }

    /// Whether nothing at all is in the 2 MiB slot that covers `va` (no leaf, no table,
    /// no remembered entry): a huge leaf could be installed there. One walk, allocating
    /// nothing.
    pub fn huge_slot_empty(&self, va: VirtAddr) -> bool {
        let Ok(page) = self.page_index(va) else {
            return false;
        };
        let vpn = Vpn(page);
        let mut table = table_at(&self.mem, self.root);
        let mut level = LEVELS - 1;
        loop {
            let pte = load(&table.0[vpn.index(level)]);
            if level == PageSize::Size2M.level() || !pte.is_table() {
                return pte == Pte::EMPTY;
            }
            table = table_at(&self.mem, pte.pa());
            level -= 1;
        }
    }

    /// Replaces the 2 MiB leaf covering `va`, if there is one, by a table of 512 4 KiB
    /// leaves over the same frames with the same flags; `Ok(true)` if it did. Every
    /// address keeps its translation, so no flush is needed (a later change of one of
    /// the 4 KiB entries flushes that page, which also drops a cached 2 MiB entry).
    ///
    /// Errors: [`OutOfMemory`](PagingError::OutOfMemory) for the new table (nothing
    /// changed); the range errors of [`map`](Self::map).
    pub fn split_huge(&mut self, va: VirtAddr) -> Result<bool, PagingError> {
        let page = self.page_index(va)?;
        match self.find_entry(page) {
            Some((slot, pte, PageSize::Size2M)) if pte.is_leaf() => {
                self.split(slot, pte, PageSize::Size2M.level())?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Maps `va..va + len` to `pa..pa + len` with the largest leaves that the alignment of
    /// `va`, `pa` and the remaining length allow (so 4 KiB leaves up to a 2 MiB boundary,
    /// then 2 MiB or 1 GiB leaves, then smaller ones at the end).
    ///
    /// Errors as for [`map`](Self::map), all detected before anything changes, except
    /// [`OutOfMemory`](PagingError::OutOfMemory): then a prefix of the range stays mapped
    /// and the caller undoes it with [`unmap_range`](Self::unmap_range) over the whole
    /// range. A zero `len` maps nothing.
    pub fn map_range(
        &mut self,
        va: VirtAddr,
        pa: PhysAddr,
        len: usize,
        flags: PteFlags,
    ) -> Result<(), PagingError> {
        let flags = leaf_flags(flags)?;
        let pages = self.span(va, len)?;
        check_phys(pa, len)?;
        self.walk_span(pages.clone(), &mut MustBeFree)?;
        // Like `leaf_table`, but the table is held as a reference for the whole range.
        let mut last: Option<(usize, usize, &TablePage)> = None;
        let (mut page, mut pa) = (pages.start, pa);
        while page < pages.end {
            let size = largest_leaf(page, pa, pages.end - page);
            let level = size.level();
            let first = first_page_of_table(page, level);
            let table = match last {
                Some((l, f, table)) if l == level && f == first => table,
                _ => {
                    let table = table_at(&self.mem, self.table_for(page, level)?);
                    last = Some((level, first, table));
                    table
                }
            };
            table.0[Vpn(page).index(level)].store(Pte::leaf(pa, flags).bits(), Ordering::Release);
            page += size.pages();
            pa = PhysAddr(pa.0 + size.bytes());
        }
        Ok(())
    }

    /// Removes the leaf that starts at `va`, frees the tables this empties, issues the TLB
    /// flush through `batch` and returns the leaf: its frame may be freed right away.
    ///
    /// `batch` must hold no deferred frames of the caller (they would be dropped from the
    /// batch without being returned; asserted in debug builds).
    /// Errors: [`NotMapped`](PagingError::NotMapped); [`Misaligned`](PagingError::Misaligned)
    /// if `va` is inside a leaf but not its first page; the range errors of
    /// [`map`](Self::map).
    pub fn unmap<T: TlbOps + ?Sized>(
        &mut self,
        va: VirtAddr,
        batch: &mut FlushBatch<'_, T, Deferred>,
    ) -> Result<Unmapped, PagingError> {
        debug_assert_eq!(batch.room(), crate::tlb::DEFERRED_CAPACITY);
        let pages = self.span(va, PAGE_SIZE)?;
        let (_, _, size) = self.find_leaf(pages.start).ok_or(PagingError::NotMapped)?;
        if !is_aligned(va.0, size.bytes()) {
            return Err(PagingError::Misaligned);
        }
        let mut removed = None;
        self.unmap_range(va, size.bytes(), batch, |frame| removed = Some(frame))?;
        removed.ok_or(PagingError::NotMapped)
    }

    /// Unmaps everything in `va..va + len` (holes are skipped), splitting huge leaves that
    /// straddle either end, and frees every table page this empties.
    ///
    /// Each removed leaf (or removed piece of a split huge leaf) is recorded in `batch`
    /// for flushing and passed to `release` only after that flush has been issued; so are
    /// any frames the caller deferred in `batch` before. The batch is flushed before
    /// returning (and earlier whenever it fills), so on return nothing is deferred.
    ///
    /// Errors: the range errors of [`map`](Self::map), changing nothing; or
    /// [`OutOfMemory`](PagingError::OutOfMemory) when splitting a huge leaf at an end of
    /// the range needs a table page: then the part of the range before that leaf has been
    /// unmapped (and released) and the rest has not.
    pub fn unmap_range<T: TlbOps + ?Sized>(
        &mut self,
        va: VirtAddr,
        len: usize,
        batch: &mut FlushBatch<'_, T, Deferred>,
        release: impl FnMut(Unmapped),
    ) -> Result<(), PagingError> {
        let pages = self.span(va, len)?;
        self.last = None;
        let mut unmap = Unmap { batch, release };
        let result = self.walk_span(pages, &mut unmap);
        unmap.drain(&self.mem);
        result
    }

    /// Sets the permission bits ([`PteFlags::PERMISSIONS`]: `R W X U`) of every leaf in
    /// `va..va + len` to `perms`, keeping each leaf's other bits; holes are skipped and huge
    /// leaves that straddle an end are split (only if their permissions change).
    ///
    /// Each leaf whose permissions changed is recorded in `batch`; the new permissions are
    /// guaranteed on every hart once the batch is flushed (or dropped).
    ///
    /// Errors: [`InvalidFlags`](PagingError::InvalidFlags) if `perms` has bits outside
    /// `R W X U` or is not a legal leaf; the range errors of [`map`](Self::map); both
    /// changing nothing. [`OutOfMemory`](PagingError::OutOfMemory) while splitting: the
    /// part of the range before that leaf has been changed.
    pub fn protect_range<T: TlbOps + ?Sized>(
        &mut self,
        va: VirtAddr,
        len: usize,
        perms: PteFlags,
        batch: &mut FlushBatch<'_, T, Deferred>,
    ) -> Result<(), PagingError> {
        if !PteFlags::PERMISSIONS.contains(perms) {
            return Err(PagingError::InvalidFlags);
        }
        let perms = leaf_flags(perms)?;
        let pages = self.span(va, len)?;
        self.walk_span(pages, &mut Protect { perms, batch })
    }

    /// The physical address `va` translates to, with the leaf's flags and size; `None` if
    /// `va` is not canonical or not mapped. Works anywhere, including a user table's
    /// shared kernel half.
    #[inline]
    pub fn translate(&self, va: VirtAddr) -> Option<(PhysAddr, PteFlags, PageSize)> {
        if !va.is_canonical() {
            return None;
        }
        let (_, pte, size) = self.find_leaf(va.vpn().0)?;
        let offset = va.0 & (size.bytes() - 1);
        Some((PhysAddr(pte.pa().0 + offset), pte.flags(), size))
    }

    /// What the table holds for `va`: its leaf (with the leaf's size) or a remembered
    /// entry ([`Pte::remembered_token`]); `None` if nothing, or if `va` is not canonical.
    /// One walk.
    #[inline]
    pub fn lookup(&self, va: VirtAddr) -> Option<(Pte, PageSize)> {
        if !va.is_canonical() {
            return None;
        }
        let (_, pte, size) = self.find_entry(va.vpn().0)?;
        Some((pte, size))
    }

    /// [`lookup`](Self::lookup), also saying whether the entry lies in a leaf table
    /// fork shares with another tree, detached from this one (`share`): the entry must
    /// not be acted on before [`attach_range`](Self::attach_range) made it this tree's.
    #[inline]
    pub fn lookup_shared(&self, va: VirtAddr) -> Option<(Pte, PageSize, bool)> {
        if !va.is_canonical() {
            return None;
        }
        let (_, pte, size, shared) = self.find_entry_shared(va.vpn().0)?;
        Some((pte, size, shared))
    }

    /// Makes the 4 KiB page at `va` *remembered* (not present, holding `token`: see
    /// [`Pte::remembered`]), replacing what was there, in one walk; returns the old entry.
    /// A replaced leaf's translation must be flushed before its frame is reused. Range
    /// removals ([`unmap_range`](Self::unmap_range), [`clear`](Self::clear)) clear
    /// remembered entries (whatever the token names must be released first), a mapping
    /// over one fails with [`AlreadyMapped`](PagingError::AlreadyMapped), and
    /// [`copy_leaves`](Self::copy_leaves) leaves the child without it.
    ///
    /// Errors: [`InvalidFlags`](PagingError::InvalidFlags) for a token that does not fit;
    /// otherwise as for [`set_leaf`](Self::set_leaf).
    pub fn remember(&mut self, va: VirtAddr, token: u64) -> Result<Pte, PagingError> {
        let entry = Pte::remembered(token).ok_or(PagingError::InvalidFlags)?;
        if !va.is_page_aligned() {
            return Err(PagingError::Misaligned);
        }
        let page = self.page_index(va)?;
        self.remembers = true;
        let table = self.leaf_table(page, 0)?;
        let slot = &table.0[Vpn(page).index(0)];
        Ok(Pte::from_bits(slot.swap(entry.bits(), Ordering::AcqRel)))
    }

    /// The first leaf of this table that maps a page at or above `from` and below `end`:
    /// its first address (for a huge leaf that began below `from`, the leaf's own start),
    /// value and size. Empty subtrees are skipped a whole entry at a time, so a scan of a
    /// sparse range costs in proportion to what is mapped. Only the range this table owns
    /// is searched (for a user table, its user half).
    pub fn next_leaf(&self, from: VirtAddr, end: VirtAddr) -> Option<(VirtAddr, Pte, PageSize)> {
        let mut page = self.page_index(from).ok()?;
        let end_page = if end.is_canonical() && !in_kernel_half(end.vpn().0) {
            (end.0 >> PAGE_SHIFT).min(self.owned_end)
        } else {
            self.owned_end
        };
        'descend: while page < end_page {
            let mut table = table_at(&self.mem, self.root);
            let mut level = LEVELS - 1;
            loop {
                let span = pages_per_entry(level);
                let base = first_page_of_table(page, level);
                let first = Vpn(page).index(level);
                // Above level 0, a detached table (`share`) is looked through.
                let found = table.0[first..]
                    .iter()
                    .position(|slot| {
                        let pte = load(slot);
                        pte.is_valid() || (level == 1 && pte.is_detached())
                    })
                    .map(|i| first + i);
                let Some(index) = found else {
                    // Nothing more in this table: continue after it.
                    page = base + pages_per_entry(level + 1);
                    continue 'descend;
                };
                if index != first {
                    page = base + index * span;
                    if page >= end_page {
                        return None;
                    }
                }
                let pte = load(&table.0[index]);
                if pte.is_leaf() {
                    let start = page & !(span - 1);
                    return Some((va_of(start), pte, PageSize::at_level(level)));
                }
                if level == 0 {
                    // A reserved level-0 encoding maps nothing (never written here).
                    page = (page & !(span - 1)) + span;
                    continue 'descend;
                }
                table = table_at(&self.mem, pte.pa());
                level -= 1;
            }
        }
        None
    }

    /// Fork's copy: for every leaf of this table in `va..va + len`, `f` gets its address,
    /// value and size and returns the flags the leaf keeps here and the entry `child` gets at
    /// the same address (`None` for the child: `f` took care of it), or `None` to leave
    /// the leaf alone and give the child nothing. One walk of this table; the child's
    /// leaf tables are created once each (before `f` runs for their first leaf, so running
    /// out of memory never leaves `f`'s work half done) and filled with plain stores.
    ///
    /// `child` must own the same range and have nothing mapped in it
    /// ([`AlreadyMapped`](PagingError::AlreadyMapped) otherwise). A leaf's new flags here
    /// are installed atomically, keeping `A`/`D` bits the hardware sets meanwhile; they
    /// take effect on every hart once the caller flushes the TLB.
    ///
    /// Errors: the range errors of [`map`](Self::map), before any call;
    /// [`OutOfMemory`](PagingError::OutOfMemory) for a child table: the part of the range
    /// before that leaf has been copied; [`InvalidFlags`](PagingError::InvalidFlags) if
    /// `f` returns an illegal leaf (that leaf is left as it was).
    pub fn copy_leaves<N: PagingMemory>(
        &mut self,
        child: &mut PageTable<N>,
        va: VirtAddr,
        len: usize,
        mut f: impl FnMut(VirtAddr, Pte, PageSize) -> Option<(PteFlags, Option<Pte>)>,
    ) -> Result<(), PagingError> {
        let pages = self.span(va, len)?;
        child.span(va, len)?;
        child.last = None;
        if pages.is_empty() {
            return Ok(());
        }
        let mut shared = None;
        self.copy_walk(self.root, LEVELS - 1, 0, &pages, child, &mut f, &mut shared)
    }

    /// [`copy_leaves`](Self::copy_leaves) that shares with `child` (instead of copying)
    /// every leaf table wholly inside the range, if this tree's memory shares tables
    /// (`share`; tables holding a remembered entry are copied): `f` is called only for
    /// the leaves outside them. Returns how many tables it shared; the caller must
    /// flush this tree's whole address space if any (its harts may hold translations
    /// through a table that is detached now).
    ///
    /// Errors: as for [`copy_leaves`](Self::copy_leaves); also
    /// [`OutOfMemory`](PagingError::OutOfMemory) for attaching a detached table the range
    /// covers only in part.
    pub fn copy_leaves_shared(
        &mut self,
        child: &mut PageTable<M>,
        va: VirtAddr,
        len: usize,
        mut f: impl FnMut(VirtAddr, Pte, PageSize) -> Option<(PteFlags, Option<Pte>)>,
    ) -> Result<usize, PagingError> {
        let pages = self.span(va, len)?;
        child.span(va, len)?;
        child.last = None;
        // The cached table may be detached below.
        self.last = None;
        if pages.is_empty() {
            return Ok(0);
        }
        let mut shared = Some(0);
        let result = self.copy_walk(self.root, LEVELS - 1, 0, &pages, child, &mut f, &mut shared);
        let shared = shared.unwrap_or(0);
        if shared > 0 {
            self.detaches = true;
            child.detaches = true;
        }
        result.map(|()| shared)
    }

    /// [`copy_leaves`](Self::copy_leaves) below the table at `table` (level `level`,
    /// first page index `base`); with `shared` a count, leaf tables wholly inside the
    /// range are shared and counted there.
    #[allow(clippy::too_many_arguments)]
    fn copy_walk<N: PagingMemory>(
        &self,
        table: PhysAddr,
        level: usize,
        base: usize,
        pages: &Range<usize>,
        child: &mut PageTable<N>,
        f: &mut impl FnMut(VirtAddr, Pte, PageSize) -> Option<(PteFlags, Option<Pte>)>,
        shared: &mut Option<usize>,
    ) -> Result<(), PagingError> {
        let entries = table_at(&self.mem, table);
        let span = pages_per_entry(level);
        let first = (pages.start.max(base) - base) / span;
        // The child's table at this level, found or made on the first leaf (level 0).
        let mut child_table: Option<PhysAddr> = None;
        for (i, slot) in entries.0.iter().enumerate().skip(first) {
            let start = base + i * span;
            if start >= pages.end {
                break;
            }
            let mut pte = load(slot);
            // Empty entries cost one test.
            if pte == Pte::EMPTY {
                continue;
            }
            if !pte.is_leaf() {
                // A table, a detached one (level 1), or a remembered entry.
                if level == 1 && (pte.is_table() || pte.is_detached()) {
                    let covered = pages.start <= start && start + span <= pages.end;
                    if covered
                        && let Some(count) = shared
                        && self.share_with(slot, pte, start, child)?
                    {
                        *count += 1;
                        continue;
                    }
                    if pte.is_detached() {
                        // Shared with another tree, and this fork copies part of it.
                        pte = Pte::table(self.attach(slot, pte)?);
                    }
                }
                // Remembered entries are not copied.
                if pte.is_valid() && level > 0 {
                    self.copy_walk(pte.pa(), level - 1, start, pages, child, f, shared)?;
                }
                continue;
            }
            if start < pages.start || start + span > pages.end {
                // A huge leaf sticking out of the range: copying half of it is not a fork.
                return Err(PagingError::Misaligned);
            }
            let ctable = match child_table {
                Some(pa) => pa,
                None => {
                    let pa = child.table_for(start, level)?;
                    child_table = Some(pa);
                    pa
                }
            };
            let cslot = &table_at(&child.mem, ctable).0[i];
            if load(cslot).is_valid() {
                return Err(PagingError::AlreadyMapped);
            }
            let Some((flags, child_pte)) = f(va_of(start), pte, PageSize::at_level(level)) else {
                continue;
            };
            if let Some(c) = child_pte {
                leaf_flags(c.flags().difference(PteFlags::V))?;
                check_phys(c.pa(), span * PAGE_SIZE)?;
                cslot.store(c.bits(), Ordering::Release);
            }
            let flags = leaf_flags(flags.difference(PteFlags::V))?;
            if flags != pte.flags().difference(PteFlags::V) {
                set_leaf_flags(slot, pte, flags);
            }
        }
        Ok(())
    }

    /// The leaf mapping `va`, to read or change in place.
    ///
    /// Errors: [`NonCanonical`](PagingError::NonCanonical),
    /// [`OutOfRange`](PagingError::OutOfRange), [`NotMapped`](PagingError::NotMapped).
    pub fn entry(&mut self, va: VirtAddr) -> Result<LeafEntry<'_>, PagingError> {
        let page = self.page_index(va)?;
        if self.detaches
            && let Some((_, _, _, true)) = self.find_entry_shared(page)
        {
            // In a table shared by fork: this tree's own first.
            self.attach_range(va_of(page), PAGE_SIZE)?;
        }
        let (slot, _, size) = self.find_leaf(page).ok_or(PagingError::NotMapped)?;
        Ok(LeafEntry {
            slot,
            va: va_of(page & !(size.pages() - 1)),
            size,
        })
    }

    /// Calls `f` on every leaf that overlaps `va..va + len`, in address order (a huge leaf
    /// that straddles an end is visited whole). For fork and teardown.
    ///
    /// Errors: the range errors of [`map`](Self::map), before any call.
    pub fn for_each_leaf(
        &mut self,
        va: VirtAddr,
        len: usize,
        f: impl FnMut(LeafEntry<'_>),
    ) -> Result<(), PagingError> {
        let pages = self.span(va, len)?;
        self.walk_span(pages, &mut EachLeaf(f))
    }

    /// Calls `f` with the address and token of every remembered entry in `va..va + len`,
    /// in address order, clearing each if `take`. A table page this leaves without
    /// entries stays linked (it is empty, not invalid): the next
    /// [`unmap_range`](Self::unmap_range) over it frees it, which is how the one user
    /// (the user table's removal) calls it. Nothing is flushed: a remembered entry is
    /// never cached.
    ///
    /// Errors: the range errors of [`map`](Self::map), before any call.
    pub fn remembered_range(
        &mut self,
        va: VirtAddr,
        len: usize,
        take: bool,
        f: impl FnMut(VirtAddr, u64),
    ) -> Result<(), PagingError> {
        let pages = self.span(va, len)?;
        if !self.remembers {
            return Ok(());
        }
        self.walk_span(pages, &mut EachRemembered { take, f })
    }

    /// Empties the table in one walk, as [`destroy`](Self::destroy) but keeping the
    /// (now empty) root: every leaf it owns is removed and reported to `release`, and
    /// every table page below the root is freed. As for dropping a table, no hart may
    /// run on it any more, and whatever translations of it harts cached must have been
    /// flushed already: frames may be released from `release` at once.
    pub fn clear(&mut self, mut release: impl FnMut(Unmapped)) {
        self.last = None;
        self.clear_walk(self.root, LEVELS - 1, 0, self.owned_end, &mut release);
    }

    /// Destroys the table: reports every leaf it owns to `release` (so the caller frees the
    /// frames) and frees every table page it owns. No hart may still run on it.
    pub fn destroy(mut self, release: impl FnMut(Unmapped)) {
        self.clear(release);
    }

    /// The page index of `va` if canonical and owned by this table.
    #[inline]
    fn page_index(&self, va: VirtAddr) -> Result<usize, PagingError> {
        if !va.is_canonical() {
            return Err(PagingError::NonCanonical);
        }
        let page = va.vpn().0;
        if page >= self.owned_end {
            return Err(PagingError::OutOfRange);
        }
        Ok(page)
    }

    /// The page indices of `va..va + len`, checked: page-aligned, canonical, not passing
    /// through the hole, owned by this table.
    #[inline]
    pub(super) fn span(&self, va: VirtAddr, len: usize) -> Result<Range<usize>, PagingError> {
        if !va.is_page_aligned() || !is_aligned(len, PAGE_SIZE) {
            return Err(PagingError::Misaligned);
        }
        let start = self.page_index(va)?;
        if len == 0 {
            return Ok(start..start);
        }
        let last = va.checked_add(len - 1).ok_or(PagingError::NonCanonical)?;
        let last = self.page_index(last)?;
        if in_kernel_half(start) != in_kernel_half(last) {
            return Err(PagingError::NonCanonical);
        }
        Ok(start..last + 1)
    }

    /// The leaf mapping page index `page`: its slot, value and size.
    #[inline]
    fn find_leaf(&self, page: usize) -> Option<(&AtomicU64, Pte, PageSize)> {
        self.find_entry(page).filter(|(_, pte, _)| pte.is_leaf())
    }

    /// The last entry the walk for page index `page` reaches: a leaf, or a remembered
    /// entry (at the level where the walk stopped); `None` where it finds an empty entry.
    #[inline]
    fn find_entry(&self, page: usize) -> Option<(&AtomicU64, Pte, PageSize)> {
        self.find_entry_shared(page)
            .map(|(slot, pte, size, _)| (slot, pte, size))
    }

    /// [`find_entry`](Self::find_entry), looking through a detached table (`share`):
    /// the last value says whether it did (the slot is then the shared table's, to
    /// read only).
    #[inline]
    fn find_entry_shared(&self, page: usize) -> Option<(&AtomicU64, Pte, PageSize, bool)> {
        let vpn = Vpn(page);
        let mut table = table_at(&self.mem, self.root);
        let mut level = LEVELS - 1;
        let mut shared = false;
        loop {
            let slot = &table.0[vpn.index(level)];
            let pte = load(slot);
            if pte.is_leaf() || (!pte.is_valid() && pte.bits() != 0) {
                if level == 1 && pte.is_detached() {
                    shared = true;
                    table = table_at(&self.mem, pte.pa());
                    level = 0;
                    continue;
                }
                return Some((slot, pte, PageSize::at_level(level), shared));
            }
            // Below level 0 there is nothing to follow: a level-0 entry without R/W/X is
            // a reserved encoding (never written here) and, like an empty one, maps nothing.
            if !pte.is_valid() || level == 0 {
                return None;
            }
            table = table_at(&self.mem, pte.pa());
            level -= 1;
        }
    }

    /// The table at `level` whose entries cover page index `page`, creating missing tables
    /// on the way down. All missing tables are allocated before any is linked, so running
    /// out of memory leaves no empty table behind.
    pub(super) fn table_for(&self, page: usize, level: usize) -> Result<PhysAddr, PagingError> {
        let vpn = Vpn(page);
        let mut table = self.root;
        let mut at = LEVELS - 1;
        while at > level {
            let slot = &table_at(&self.mem, table).0[vpn.index(at)];
            let pte = load(slot);
            if pte.is_table() {
                table = pte.pa();
                at -= 1;
            } else if pte.is_valid() {
                return Err(PagingError::AlreadyMapped);
            } else if at == 1 && pte.is_detached() {
                // A table shared by fork: this tree's own again before it changes.
                table = self.attach(slot, pte)?;
                at -= 1;
            } else {
                return self.link_new_tables(slot, vpn, at, level);
            }
        }
        Ok(table)
    }

    /// [`table_for`](Self::table_for) through the [`LastTable`] cache.
    #[inline]
    fn leaf_table(&mut self, page: usize, level: usize) -> Result<&TablePage, PagingError> {
        let first = first_page_of_table(page, level);
        let pa = match self.last {
            Some(last) if last.level == level && last.first == first => last.pa,
            _ => self.leaf_table_miss(page, level, first)?,
        };
        Ok(table_at(&self.mem, pa))
    }

    /// The walk behind a [`LastTable`] miss, kept out of line so that the hit path stays
    /// a few instructions (no register spills for the walk).
    #[cold]
    #[inline(never)]
    fn leaf_table_miss(
        &mut self,
        page: usize,
        level: usize,
        first: usize,
    ) -> Result<PhysAddr, PagingError> {
        let pa = self.table_for(page, level)?;
        self.last = Some(LastTable { level, first, pa });
        Ok(pa)
    }

    /// Builds the chain of tables for levels `from - 1` down to `to` below the empty
    /// `slot` (at level `from`) and links it; returns the table at level `to`.
    fn link_new_tables(
        &self,
        slot: &AtomicU64,
        vpn: Vpn,
        from: usize,
        to: usize,
    ) -> Result<PhysAddr, PagingError> {
        let mut chain = [PhysAddr(0); LEVELS - 1];
        let count = from - to;
        for i in 0..count {
            match alloc_table(&self.mem) {
                Ok(pa) => chain[i] = pa,
                Err(e) => {
                    for pa in &chain[..i] {
                        // SAFETY: allocated (zeroed) just above, never written and never
                        // linked anywhere.
                        unsafe { free_empty(&self.mem, *pa) };
                    }
                    return Err(e);
                }
            }
        }
        // chain[i] is the table at level from - 1 - i; link each into its parent.
        for i in 1..count {
            let parent = table_at(&self.mem, chain[i - 1]);
            parent.0[vpn.index(from - i)].store(Pte::table(chain[i]).bits(), Ordering::Relaxed);
        }
        slot.store(Pte::table(chain[0]).bits(), Ordering::Release);
        Ok(chain[count - 1])
    }
}

impl<M: PagingMemory> Drop for PageTable<M> {
    fn drop(&mut self) {
        // Leaves are taken and dropped; every table page below the root is freed.
        self.clear_walk(self.root, LEVELS - 1, 0, self.owned_end, &mut |_| {});
        // The root entries past the owned range (a user table's copy of the kernel half)
        // were never walked: cleared here, so the root goes back all zero.
        let owned_roots = self.owned_end / pages_per_entry(LEVELS - 1);
        zero_entries(&table_at(&self.mem, self.root).0[owned_roots..]);
        // SAFETY: the root is ours, nothing links to it, no hart runs this table, and
        // every entry of it is now zero.
        unsafe { free_empty(&self.mem, self.root) };
    }
}

/// A new (zeroed) table page from `mem`.
#[inline]
pub(super) fn alloc_table<M: PagingMemory>(mem: &M) -> Result<PhysAddr, PagingError> {
    mem.alloc_table().ok_or(PagingError::OutOfMemory)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn largest_leaf_respects_all_three() {
        let g = PageSize::Size1G.pages();
        let m = PageSize::Size2M.pages();
        assert_eq!(largest_leaf(0, PhysAddr(0), g), PageSize::Size1G);
        assert_eq!(largest_leaf(0, PhysAddr(0), g - 1), PageSize::Size2M);
        assert_eq!(largest_leaf(m, PhysAddr(0), g), PageSize::Size2M);
        assert_eq!(largest_leaf(0, PhysAddr(PAGE_SIZE), g), PageSize::Size4K);
        assert_eq!(largest_leaf(1, PhysAddr(0), g), PageSize::Size4K);
    }
}
