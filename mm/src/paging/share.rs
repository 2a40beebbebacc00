//! Leaf tables shared by fork (`docs/virtual-memory.md`, "Shared page tables at fork").
//!
//! Fork gives a child the parent's leaf tables (level 0, 2 MiB each) instead of copying
//! their entries: both trees' level-1 entries become [`detached`](Pte::detached)
//! references to the same table page, which [`PagingMemory::share_table`] counts. A
//! detached entry is not valid, so neither side's harts can reach the table; every
//! access faults, and the first one *attaches* the table again:
//! - the last holder links it back as it is;
//! - any other holder copies it into a table of its own, every leaf write-protected
//!   with the copy-on-write mark (the flags the policy gives
//!   [`PageTable::enable_sharing`]) in the copy *and in the shared table*, and each
//!   copied leaf takes what its entry needs ([`PagingMemory::leaf_copied`]: a frame
//!   reference); then it lets go of the shared table.
//!
//! Invariants:
//! - Only level-1 entries of a tree whose memory shares tables are detached; the
//!   shared table page has one holder per tree that links it that way.
//! - No hart walks a table while it is detached anywhere: a tree detaches a table it
//!   linked only in fork, whose caller flushes the tree's address space afterwards.
//!   So a holder may rewrite the shared table's leaves in place (the write protection
//!   above); nothing else ever changes them while they are shared.
//! - A shared table holds no remembered entries (fork shares none that has one), and
//!   its leaves are 4 KiB.
//! - Every change of a tree's entries goes through a walk that attaches first
//!   ([`PageTable::table_for`], `walk`, [`PageTable::entry`]); reads look through a
//!   detached entry ([`PageTable::lookup_shared`], `next_leaf`).

use core::sync::atomic::{AtomicU64, Ordering};

use crate::addr::{PhysAddr, VirtAddr, Vpn};

use super::entry::load;
use super::error::PagingError;
use super::memory::PagingMemory;
use super::pte::{LEVELS, Pte, PteFlags};
use super::table::{PageTable, alloc_table};
use super::walk::{free_empty, pages_per_entry, table_at};

impl<M: PagingMemory> PageTable<M> {
    /// Lets fork share this tree's leaf tables (if its memory can:
    /// [`PagingMemory::share_table`]); a leaf copied out of a shared table loses the
    /// flags `clear` and gains `set` (write permission off, the owner's copy-on-write
    /// mark on).
    pub fn enable_sharing(&mut self, clear: PteFlags, set: PteFlags) {
        self.share_protect = Some((clear, set));
    }

    /// Attaches every detached table that covers part of `va..va + len`, so that the
    /// range can be changed. Nothing is flushed: a detached entry was never valid for
    /// this tree's harts.
    ///
    /// Errors: [`OutOfMemory`](PagingError::OutOfMemory) for a copy (the tables before
    /// it are attached; the rest stay detached); the range errors of
    /// [`map`](Self::map).
    pub fn attach_range(&mut self, va: VirtAddr, len: usize) -> Result<(), PagingError> {
        if !self.detaches {
            return Ok(());
        }
        let pages = self.span(va, len)?;
        if pages.is_empty() {
            return Ok(());
        }
        let span = pages_per_entry(1);
        let mut page = pages.start & !(span - 1);
        while page < pages.end {
            if let Some(slot) = self.level1_slot(page) {
                let pte = load(slot);
                if pte.is_detached() {
                    self.attach(slot, pte)?;
                }
            }
            page += span;
        }
        Ok(())
    }

    /// The level-1 entry covering page index `page`, if its level-1 table exists.
    fn level1_slot(&self, page: usize) -> Option<&AtomicU64> {
        let vpn = Vpn(page);
        let mut table = table_at(&self.mem, self.root);
        for level in (2..LEVELS).rev() {
            let pte = load(&table.0[vpn.index(level)]);
            if !pte.is_table() {
                return None;
            }
            table = table_at(&self.mem, pte.pa());
        }
        Some(&table.0[vpn.index(1)])
    }

    /// Makes the detached table in the level-1 `slot` (whose value is `pte`) this
    /// tree's again, linked: the table itself if this tree is its last holder, else a
    /// write-protected copy. Returns the leaf table now linked there.
    ///
    /// Errors: [`OutOfMemory`](PagingError::OutOfMemory) for the copy (nothing changed).
    pub(super) fn attach(&self, slot: &AtomicU64, pte: Pte) -> Result<PhysAddr, PagingError> {
        let shared = pte.pa();
        if !self.mem.table_shared(shared) {
            // The others let go: the table is this tree's alone, and its leaves are
            // right as they are (protected if a holder ever copied it).
            slot.store(Pte::table(shared).bits(), Ordering::Release);
            return Ok(shared);
        }
        let (clear, set) = self
            .share_protect
            .unwrap_or((PteFlags::empty(), PteFlags::empty()));
        let copy = alloc_table(&self.mem)?;
        let from = table_at(&self.mem, shared);
        let to = table_at(&self.mem, copy);
        for (src, dst) in from.0.iter().zip(to.0.iter()) {
            let old = load(src);
            if !old.is_leaf() {
                continue;
            }
            let leaf = old.with_flags(old.flags().difference(clear).union(set));
            if leaf != old {
                // No hart walks the shared table (it is detached everywhere): the
                // holders' copies are its only readers, and they all write the same.
                src.store(leaf.bits(), Ordering::Relaxed);
            }
            self.mem.leaf_copied(leaf);
            dst.store(leaf.bits(), Ordering::Relaxed);
        }
        slot.store(Pte::table(copy).bits(), Ordering::Release);
        self.mem.table_copied();
        if !self.mem.leave_table(shared) {
            // Every other holder let go while this one copied: nobody needs the
            // shared table any more.
            self.release_table(shared);
        }
        Ok(copy)
    }

    /// Gives up the leaf table `pa` that no tree holds or links any more: each leaf's
    /// hold released ([`PagingMemory::leaf_released`]), the page freed.
    fn release_table(&self, pa: PhysAddr) {
        for slot in table_at(&self.mem, pa).0.iter() {
            let pte = load(slot);
            if pte.is_leaf() {
                self.mem.leaf_released(pte);
            }
            slot.store(0, Ordering::Relaxed);
        }
        // SAFETY: no tree links the page (every holder detached and let go of it) and
        // no hart walks a detached table; every entry was just cleared.
        unsafe { free_empty(&self.mem, pa) };
    }

    /// Fork's sharing of the leaf table `pte` (valid or detached) in this tree's level-1
    /// `slot` with `child`, at page index `start`: both trees hold it detached
    /// afterwards. `Ok(false)` if it cannot be shared (this memory does not share, or
    /// the table holds a remembered entry): the caller copies its entries instead.
    ///
    /// Errors: [`OutOfMemory`](PagingError::OutOfMemory) for the child's tables above
    /// (nothing changed).
    pub(super) fn share_with<N: PagingMemory>(
        &self,
        slot: &AtomicU64,
        pte: Pte,
        start: usize,
        child: &PageTable<N>,
    ) -> Result<bool, PagingError> {
        let table = pte.pa();
        if self.share_protect.is_none()
            || (pte.is_table() && self.remembers && holds_remembered(&self.mem, table))
        {
            return Ok(false);
        }
        let cslot_table = child.table_for(start, 1)?;
        let cslot = &table_at(&child.mem, cslot_table).0[Vpn(start).index(1)];
        if load(cslot) != Pte::EMPTY {
            return Err(PagingError::AlreadyMapped);
        }
        if !self.mem.share_table(table) {
            return Ok(false);
        }
        let detached = Pte::detached(table);
        cslot.store(detached.bits(), Ordering::Release);
        slot.store(detached.bits(), Ordering::Release);
        Ok(true)
    }
}

/// Whether the leaf table at `pa` holds a remembered entry.
fn holds_remembered<M: PagingMemory>(mem: &M, pa: PhysAddr) -> bool {
    table_at(mem, pa).0.iter().any(|slot| {
        let pte = load(slot);
        !pte.is_valid() && pte != Pte::EMPTY
    })
}
