//! How the page-table code reaches physical memory: the [`PagingMemory`] trait.

use core::ptr::NonNull;

use crate::addr::PhysAddr;

use super::pte::{Pte, TablePage};

/// The source of page-table pages and the way to reach them.
///
/// The kernel implements it with the frame allocator and the direct map; host tests and
/// benchmarks with a simulated memory that hands out fake physical addresses. Either way
/// the table code that runs is the same.
///
/// # Zeroed pages, both ways
///
/// Table pages cross this trait only when they are all zero, in both directions:
/// [`alloc_table`](Self::alloc_table) returns a zeroed page (the table code does not
/// zero it again), and the table code gives [`free_table`](Self::free_table) only pages
/// it has emptied: every entry it wrote was cleared as the walk that freed the table went
/// past it. So an implementation may keep freed pages and hand them out again without
/// touching them (a cache of zeroed table pages, in the constructed state); only a page
/// that never was a table (a fresh frame) needs zeroing. The table code checks every
/// page it frees in debug builds.
///
/// # Safety
///
/// An implementation guarantees that:
/// - [`alloc_table`](Self::alloc_table) returns a 4 KiB-aligned physical address of a
///   page whose 4096 bytes are zero and that nothing else uses until it is passed to
///   [`free_table`](Self::free_table);
/// - for every such page (and for a root adopted by
///   [`PageTable::from_root`](super::PageTable::from_root)), [`table_ptr`](Self::table_ptr)
///   returns a pointer through which the page can be read and written for as long as it
///   stays allocated.
pub unsafe trait PagingMemory {
    /// A zeroed page for a table, or `None` when memory is exhausted.
    fn alloc_table(&self) -> Option<PhysAddr>;

    /// Takes back a page from [`alloc_table`](Self::alloc_table), all zero again.
    ///
    /// # Safety
    ///
    /// `pa` came from `alloc_table` of this memory, is no longer reachable from any
    /// table or any hart's TLB, and every byte of it is zero (the page-table code
    /// guarantees all three).
    unsafe fn free_table(&self, pa: PhysAddr);

    /// Where the table page at `pa` can be accessed.
    fn table_ptr(&self, pa: PhysAddr) -> NonNull<TablePage>;

    /// Fork's shared leaf tables (`docs/virtual-memory.md`, "Shared page tables at fork"): adds
    /// a holder to the leaf table page `pa` (which has one or more), or returns `false`
    /// if this memory does not share tables (the default: fork then copies entries).
    /// Every tree that links the page, detached, is one holder. Returning `true`
    /// promises that every memory of this type reaches `pa` at the same place (the
    /// other tree links the page through its own memory value).
    fn share_table(&self, pa: PhysAddr) -> bool {
        let _ = pa;
        false
    }

    /// Whether the leaf table page `pa` has more than one holder.
    fn table_shared(&self, pa: PhysAddr) -> bool {
        let _ = pa;
        false
    }

    /// Drops the caller's hold on the shared leaf table page `pa` unless it is the last
    /// one: `true` if it dropped it (others hold the page), `false` if the caller is
    /// the last holder (nothing changed: the page is the caller's alone now).
    fn leave_table(&self, pa: PhysAddr) -> bool {
        let _ = pa;
        false
    }

    /// A leaf was copied out of a shared table into a table of one tree's own: the new
    /// entry needs what the shared one held (for user memory, a reference to the frame,
    /// unless it is the shared zero page). Called only for tables
    /// [`share_table`](Self::share_table) shared.
    fn leaf_copied(&self, leaf: Pte) {
        let _ = leaf;
    }

    /// A tree copied a shared table into one of its own (statistics).
    fn table_copied(&self) {}

    /// A leaf of a table no tree holds any more, or of a copy given up, goes: release
    /// what [`leaf_copied`](Self::leaf_copied) took for it.
    fn leaf_released(&self, leaf: Pte) {
        let _ = leaf;
    }
}

// SAFETY: forwards every call to `M`, which upholds the contract.
unsafe impl<M: PagingMemory + ?Sized> PagingMemory for &M {
    #[inline]
    fn alloc_table(&self) -> Option<PhysAddr> {
        (**self).alloc_table()
    }

    #[inline]
    unsafe fn free_table(&self, pa: PhysAddr) {
        // SAFETY: the caller upholds `free_table`'s contract for `M`.
        unsafe { (**self).free_table(pa) }
    }

    #[inline]
    fn table_ptr(&self, pa: PhysAddr) -> NonNull<TablePage> {
        (**self).table_ptr(pa)
    }

    fn share_table(&self, pa: PhysAddr) -> bool {
        (**self).share_table(pa)
    }

    fn table_shared(&self, pa: PhysAddr) -> bool {
        (**self).table_shared(pa)
    }

    fn leave_table(&self, pa: PhysAddr) -> bool {
        (**self).leave_table(pa)
    }

    fn leaf_copied(&self, leaf: Pte) {
        (**self).leaf_copied(leaf)
    }

    fn table_copied(&self) {
        (**self).table_copied()
    }

    fn leaf_released(&self, leaf: Pte) {
        (**self).leaf_released(leaf)
    }
}
