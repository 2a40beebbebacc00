//! How the page-table code reaches physical memory: the [`PagingMemory`] trait.

use core::ptr::NonNull;

use crate::addr::PhysAddr;

use super::pte::TablePage;

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
}
