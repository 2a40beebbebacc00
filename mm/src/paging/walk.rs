//! The range walker of [`PageTable`]: page-index arithmetic, one recursive walk over
//! `walk_span`'s page indices with a [`Visitor`] per operation (must-be-free, each leaf,
//! protect, unmap), huge-leaf splitting, the walk that empties a whole table
//! (`clear_walk`), and table pages freed all zero.
//!
//! Positions inside the tree are *page indices*: the 27-bit VPN of a canonical address
//! ([`VirtAddr::vpn`]), so the user half is pages `0..2^26` and the kernel half
//! `2^26..2^27`, one contiguous number line without the hole.

use core::ops::Range;
use core::sync::atomic::{AtomicU64, Ordering};

use crate::addr::{PAGE_SHIFT, PhysAddr, VirtAddr};
use crate::tlb::{FlushBatch, TlbOps};

use super::entry::{Deferred, LeafEntry, Unmapped, load, take_leaf};
use super::error::PagingError;
use super::memory::PagingMemory;
use super::pte::{LEVELS, PageSize, Pte, PteFlags, TablePage};
use super::table::{PageTable, alloc_table};

/// Page indices in the whole Sv39 space (both halves).
pub(super) const ALL_PAGES: usize = 1 << (9 * LEVELS);
/// Bits of a page index.
const PAGE_INDEX_BITS: u32 = (9 * LEVELS) as u32;
/// Bits of a canonical virtual address that carry information.
const VA_BITS: u32 = PAGE_INDEX_BITS + PAGE_SHIFT as u32;
/// The canonical address of page index `page` (sign-extended from bit 38).
#[inline]
pub(super) const fn va_of(page: usize) -> VirtAddr {
    let shift = usize::BITS - VA_BITS;
    VirtAddr((((page << PAGE_SHIFT) << shift) as isize >> shift) as usize)
}

/// Number of pages one entry at `level` covers.
#[inline]
pub(super) const fn pages_per_entry(level: usize) -> usize {
    1 << (9 * level)
}

/// The first page covered by the table at `level` that holds the entry for `page`.
#[inline]
pub(super) const fn first_page_of_table(page: usize, level: usize) -> usize {
    page & !(pages_per_entry(level + 1) - 1)
}

/// Whether `page` is in the kernel half.
#[inline]
pub(super) const fn in_kernel_half(page: usize) -> bool {
    page >= ALL_PAGES / 2
}

/// What a walk does with a huge leaf that the range covers only in part.
pub(super) enum Partial {
    /// Split it into 512 smaller leaves and walk those.
    Split,
    /// Visit it whole.
    Visit,
    /// Leave it alone.
    Skip,
}

/// One range operation, driven by [`PageTable::walk`].
pub(super) trait Visitor<M: PagingMemory> {
    /// A leaf `pte` (as just read from `slot`) starting at page index `page` (wholly
    /// inside the range, or partial and [`Partial::Visit`]ed).
    fn leaf(
        &mut self,
        mem: &M,
        slot: &AtomicU64,
        pte: Pte,
        page: usize,
        size: PageSize,
    ) -> Result<(), PagingError>;

    /// A huge leaf the range covers only in part.
    fn partial(&mut self, pte: Pte) -> Partial;

    /// Whether a table fork shares, detached from this tree (`share`), must be
    /// attached for this walk (it changes or reports leaves); `false`: skipped, as it
    /// holds nothing this walk looks for.
    fn attaches(&self) -> bool {
        true
    }

    /// A remembered entry (not present, not empty) in `slot`, for page index `page`;
    /// left alone by default.
    fn remembered(&mut self, _slot: &AtomicU64, _page: usize) -> Result<(), PagingError> {
        Ok(())
    }

    /// After walking the table that `slot` points to; `covered`: the range spans all of
    /// it.
    fn after_table(
        &mut self,
        _mem: &M,
        _slot: &AtomicU64,
        _table: PhysAddr,
        _covered: bool,
    ) -> Result<(), PagingError> {
        Ok(())
    }
}

/// Fails on the first leaf: the range must be free.
pub(super) struct MustBeFree;

impl<M: PagingMemory> Visitor<M> for MustBeFree {
    fn leaf(
        &mut self,
        _: &M,
        _: &AtomicU64,
        _: Pte,
        _: usize,
        _: PageSize,
    ) -> Result<(), PagingError> {
        Err(PagingError::AlreadyMapped)
    }

    fn partial(&mut self, _: Pte) -> Partial {
        Partial::Visit
    }

    fn remembered(&mut self, _: &AtomicU64, _: usize) -> Result<(), PagingError> {
        Err(PagingError::AlreadyMapped)
    }
}

/// Calls a closure on every remembered entry with its address and token, clearing the
/// entry if `take`; leaves are left alone.
pub(super) struct EachRemembered<F> {
    pub(super) take: bool,
    pub(super) f: F,
}

impl<M: PagingMemory, F: FnMut(VirtAddr, u64)> Visitor<M> for EachRemembered<F> {
    fn leaf(
        &mut self,
        _: &M,
        _: &AtomicU64,
        _: Pte,
        _: usize,
        _: PageSize,
    ) -> Result<(), PagingError> {
        Ok(())
    }

    fn partial(&mut self, _: Pte) -> Partial {
        Partial::Skip
    }

    fn attaches(&self) -> bool {
        // A shared table holds no remembered entry (fork shares none that has one):
        // fork's own walk for them must not take back the tables it just shared.
        false
    }

    fn remembered(&mut self, slot: &AtomicU64, page: usize) -> Result<(), PagingError> {
        let pte = load(slot);
        if let Some(token) = pte.remembered_token() {
            if self.take {
                slot.store(0, Ordering::Relaxed);
            }
            (self.f)(va_of(page), token);
        }
        Ok(())
    }
}

/// Calls a closure on every leaf (partial ones whole).
pub(super) struct EachLeaf<F>(pub(super) F);

impl<M: PagingMemory, F: FnMut(LeafEntry<'_>)> Visitor<M> for EachLeaf<F> {
    fn leaf(
        &mut self,
        _: &M,
        slot: &AtomicU64,
        _: Pte,
        page: usize,
        size: PageSize,
    ) -> Result<(), PagingError> {
        (self.0)(LeafEntry {
            slot,
            va: va_of(page),
            size,
        });
        Ok(())
    }

    fn partial(&mut self, _: Pte) -> Partial {
        Partial::Visit
    }
}

/// Replaces the permission bits of every leaf.
pub(super) struct Protect<'b, 'a, T: TlbOps + ?Sized> {
    pub(super) perms: PteFlags,
    pub(super) batch: &'b mut FlushBatch<'a, T, Deferred>,
}

impl<M: PagingMemory, T: TlbOps + ?Sized> Visitor<M> for Protect<'_, '_, T> {
    fn leaf(
        &mut self,
        _: &M,
        slot: &AtomicU64,
        _: Pte,
        page: usize,
        size: PageSize,
    ) -> Result<(), PagingError> {
        let entry = LeafEntry {
            slot,
            va: va_of(page),
            size,
        };
        let perms = self.perms;
        let old = entry.update_flags(|f| f.difference(PteFlags::PERMISSIONS).union(perms))?;
        if old.flags().intersection(PteFlags::PERMISSIONS) != perms {
            self.batch.flush_page(entry.va);
        }
        Ok(())
    }

    fn partial(&mut self, pte: Pte) -> Partial {
        if pte.flags().intersection(PteFlags::PERMISSIONS) == self.perms {
            Partial::Skip
        } else {
            Partial::Split
        }
    }
}

/// Removes every leaf, and every table that becomes empty, deferring both until the flush.
pub(super) struct Unmap<'b, 'a, T: TlbOps + ?Sized, F: FnMut(Unmapped)> {
    pub(super) batch: &'b mut FlushBatch<'a, T, Deferred>,
    pub(super) release: F,
}

impl<T: TlbOps + ?Sized, F: FnMut(Unmapped)> Unmap<'_, '_, T, F> {
    /// Issues the batch's flushes, then frees its tables and releases its frames.
    pub(super) fn drain<M: PagingMemory>(&mut self, mem: &M) {
        let release = &mut self.release;
        self.batch.flush(|item| match item {
            // SAFETY: the table was unlinked before it was deferred (after the walk had
            // cleared every entry of it) and the flush just issued dropped every cached
            // translation through it.
            Deferred::Table(pa) => unsafe { free_empty(mem, pa) },
            Deferred::Frame(frame) => release(frame),
        });
    }

    fn defer<M: PagingMemory>(&mut self, mem: &M, item: Deferred) {
        if let Err(item) = self.batch.defer(item) {
            self.drain(mem);
            // The batch is empty after a drain.
            let _ = self.batch.defer(item);
        }
    }
}

impl<M: PagingMemory, T: TlbOps + ?Sized, F: FnMut(Unmapped)> Visitor<M> for Unmap<'_, '_, T, F> {
    fn leaf(
        &mut self,
        mem: &M,
        slot: &AtomicU64,
        pte: Pte,
        page: usize,
        size: PageSize,
    ) -> Result<(), PagingError> {
        let old = take_leaf(slot, pte);
        let va = va_of(page);
        self.batch.flush_page(va);
        let frame = Unmapped {
            va,
            pa: old.pa(),
            size,
            flags: old.flags(),
        };
        self.defer(mem, Deferred::Frame(frame));
        Ok(())
    }

    fn partial(&mut self, _: Pte) -> Partial {
        Partial::Split
    }

    fn remembered(&mut self, slot: &AtomicU64, _: usize) -> Result<(), PagingError> {
        // Never in a TLB: nothing to flush or defer.
        slot.store(0, Ordering::Relaxed);
        Ok(())
    }

    fn after_table(
        &mut self,
        mem: &M,
        slot: &AtomicU64,
        table: PhysAddr,
        covered: bool,
    ) -> Result<(), PagingError> {
        // A fully covered table has just lost every entry (each leaf taken, each table
        // below unlinked); otherwise look.
        if covered || table_is_empty(mem, table) {
            slot.store(0, Ordering::Release);
            self.batch.flush_space();
            self.defer(mem, Deferred::Table(table));
        }
        Ok(())
    }
}

/// Unlinks the table page `table` from `slot` and frees it, for a walk over a table that
/// no hart runs any more and whose cached translations are gone (being dropped,
/// destroyed or [`PageTable::clear`]ed: the callers' documented contracts). The walk
/// covered the whole table and cleared every entry of it.
pub(super) fn unlink_and_free<M: PagingMemory>(mem: &M, slot: &AtomicU64, table: PhysAddr) {
    slot.store(0, Ordering::Relaxed);
    // SAFETY: by the contract above no hart can reach the page any more, it was just
    // unlinked from the only entry that pointed to it, and the walk emptied it.
    unsafe { free_empty(mem, table) };
}

/// Gives the table page `pa` back to `mem`. Every page the table code frees goes
/// through here, all zero ([`PagingMemory`]'s contract; checked in debug builds).
///
/// # Safety
///
/// `pa` is a table page of `mem` that no table links to and no hart's TLB caches, and
/// every entry of it is zero.
#[inline]
pub(super) unsafe fn free_empty<M: PagingMemory>(mem: &M, pa: PhysAddr) {
    debug_assert!(
        table_is_empty(mem, pa),
        "table page {pa:?} freed with entries left"
    );
    // SAFETY: the caller's promises are `free_table`'s.
    unsafe { mem.free_table(pa) };
}

/// Stores zero into every entry of `entries`, eight stores per iteration.
#[inline]
pub(super) fn zero_entries(entries: &[AtomicU64]) {
    let (lines, rest) = entries.as_chunks::<8>();
    for line in lines {
        for slot in line {
            slot.store(0, Ordering::Relaxed);
        }
    }
    for slot in rest {
        slot.store(0, Ordering::Relaxed);
    }
}

/// The table page at `pa` of memory `mem`.
#[inline]
pub(super) fn table_at<M: PagingMemory>(mem: &M, pa: PhysAddr) -> &TablePage {
    // SAFETY: `pa` is a table page of this tree (the root or reached through a table
    // entry this library wrote), so by `PagingMemory`'s contract `table_ptr` gives a
    // pointer valid while it is allocated, which is at least as long as the tree is
    // borrowed; its entries are atomics, so shared access is sound.
    unsafe { mem.table_ptr(pa).as_ref() }
}

pub(super) fn table_is_empty<M: PagingMemory>(mem: &M, pa: PhysAddr) -> bool {
    table_at(mem, pa)
        .0
        .iter()
        .all(|slot| slot.load(Ordering::Relaxed) == 0)
}

impl<M: PagingMemory> PageTable<M> {
    /// Empties the part below `end` of the table at `table` (level `level`, first page
    /// index `base`) of a tree no hart walks any more: every leaf taken and reported to
    /// `release`, every remembered entry cleared, every table page below unlinked and
    /// freed on the way back up (`clear`, `destroy` and dropping a table). Its own loop,
    /// not a visitor of `walk`: it cannot fail, and exit runs it over every page of a
    /// process, so the leaf's work is inlined into it.
    pub(super) fn clear_walk(
        &self,
        table: PhysAddr,
        level: usize,
        base: usize,
        end: usize,
        release: &mut impl FnMut(Unmapped),
    ) {
        let span = pages_per_entry(level);
        let size = PageSize::at_level(level);
        for (i, slot) in table_at(&self.mem, table).0.iter().enumerate() {
            let start = base + i * span;
            if start >= end {
                break;
            }
            let pte = load(slot);
            // Empty entries (most of a small process's tables) cost one test.
            if pte == Pte::EMPTY {
                continue;
            }
            if !pte.is_valid() && level == 1 && pte.is_detached() {
                // A table fork shares (`share`): the last holder empties it.
                let shared = pte.pa();
                if self.mem.leave_table(shared) {
                    slot.store(0, Ordering::Relaxed);
                } else {
                    self.clear_walk(shared, 0, start, end, release);
                    unlink_and_free(&self.mem, slot, shared);
                }
                continue;
            }
            if !pte.is_valid() {
                // A remembered entry.
                slot.store(0, Ordering::Relaxed);
                continue;
            }
            if pte.is_leaf() {
                let last = take_leaf(slot, pte);
                release(Unmapped {
                    va: va_of(start),
                    pa: last.pa(),
                    size,
                    flags: last.flags(),
                });
            } else if level > 0 {
                // (At level 0 a valid non-leaf is the reserved encoding: nothing below.)
                self.clear_walk(pte.pa(), level - 1, start, end, release);
                unlink_and_free(&self.mem, slot, pte.pa());
            }
        }
    }

    /// Replaces the huge leaf `pte` in `slot` (at `level`) by a table of 512 leaves one
    /// level down with the same frame range and flags; returns the new table entry. The
    /// translation of every address is unchanged, so no flush is needed for the split
    /// itself. If the hardware sets `A`/`D` meanwhile, the children are refilled.
    pub(super) fn split(
        &self,
        slot: &AtomicU64,
        mut pte: Pte,
        level: usize,
    ) -> Result<Pte, PagingError> {
        let pa = alloc_table(&self.mem)?;
        let table = table_at(&self.mem, pa);
        let step = PageSize::at_level(level - 1).bytes();
        let entry = Pte::table(pa);
        loop {
            for (i, child) in table.0.iter().enumerate() {
                let leaf = Pte::leaf(PhysAddr(pte.pa().0 + i * step), pte.flags());
                child.store(leaf.bits(), Ordering::Relaxed);
            }
            match slot.compare_exchange(
                pte.bits(),
                entry.bits(),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Ok(entry),
                Err(now) => pte = Pte::from_bits(now),
            }
        }
    }

    pub(super) fn walk_span<V: Visitor<M>>(
        &self,
        pages: Range<usize>,
        visitor: &mut V,
    ) -> Result<(), PagingError> {
        if pages.is_empty() {
            return Ok(());
        }
        // A table that never held a remembered entry is walked by a loop that does not
        // look for one (the walks of fork and exit stay as tight as they were).
        if self.remembers {
            self.walk::<V, true>(self.root, LEVELS - 1, 0, &pages, visitor)
        } else {
            self.walk::<V, false>(self.root, LEVELS - 1, 0, &pages, visitor)
        }
    }

    /// Walks the entries of the table at `table` (level `level`, first page index `base`)
    /// that overlap `pages`, descending into tables and handing leaves to `visitor`, and
    /// remembered entries too if `REMEMBERED`.
    fn walk<V: Visitor<M>, const REMEMBERED: bool>(
        &self,
        table: PhysAddr,
        level: usize,
        base: usize,
        pages: &Range<usize>,
        visitor: &mut V,
    ) -> Result<(), PagingError> {
        let entries = table_at(&self.mem, table);
        let span = pages_per_entry(level);
        let size = PageSize::at_level(level);
        let first = (pages.start.max(base) - base) / span;
        for (i, slot) in entries.0.iter().enumerate().skip(first) {
            let start = base + i * span;
            if start >= pages.end {
                break;
            }
            let mut pte = load(slot);
            if pte == Pte::EMPTY {
                continue;
            }
            if !pte.is_valid() {
                if level == 1 && pte.is_detached() {
                    if !visitor.attaches() {
                        continue;
                    }
                    // A table shared by fork (`share`): this tree's own before the
                    // visitor acts on it.
                    pte = Pte::table(self.attach(slot, pte)?);
                } else {
                    if REMEMBERED {
                        visitor.remembered(slot, start)?;
                    }
                    continue;
                }
            }
            let covered = pages.start <= start && start + span <= pages.end;
            if pte.is_leaf() {
                if covered {
                    visitor.leaf(&self.mem, slot, pte, start, size)?;
                    continue;
                }
                match visitor.partial(pte) {
                    Partial::Skip => continue,
                    Partial::Visit => {
                        visitor.leaf(&self.mem, slot, pte, start, size)?;
                        continue;
                    }
                    Partial::Split => pte = self.split(slot, pte, level)?,
                }
            } else if level == 0 {
                // The reserved encoding again (see `find_leaf`): nothing to walk.
                continue;
            }
            self.walk::<V, REMEMBERED>(pte.pa(), level - 1, start, pages, visitor)?;
            visitor.after_table(&self.mem, slot, pte.pa(), covered)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::PAGE_SIZE;
    use crate::layout::{KERNEL_HALF_START, USER_END};

    #[test]
    fn va_of_sign_extends() {
        assert_eq!(va_of(0), VirtAddr(0));
        assert_eq!(
            va_of((USER_END.0 >> PAGE_SHIFT) - 1),
            VirtAddr(USER_END.0 - PAGE_SIZE)
        );
        assert_eq!(va_of(KERNEL_HALF_START.vpn().0), KERNEL_HALF_START);
        assert_eq!(va_of(ALL_PAGES - 1), VirtAddr(usize::MAX - (PAGE_SIZE - 1)));
    }
}
