//! Where the heap's pages come from ([`PageSource`]); the other hook it needs, which
//! hart is running, is [`crate::cpu::CpuLocal`], shared with the frame allocator.

use core::ptr::NonNull;

/// Supplier of naturally aligned blocks of `2^order` contiguous 4 KiB pages.
///
/// In the kernel this is the buddy frame allocator seen through the direct map; host tests
/// and benchmarks use the standard allocator or an arena.
///
/// # Safety
///
/// An implementation must guarantee, for every block it returns from
/// [`alloc_pages(order)`](PageSource::alloc_pages):
/// - the block is `PAGE_SIZE << order` bytes of readable and writable memory that nothing
///   else uses until it is given back with [`free_pages`](PageSource::free_pages);
/// - its address is a multiple of `PAGE_SIZE << order` (natural alignment): the heap finds a
///   slab's header by masking an object's address with the slab size;
/// - both methods may be called concurrently from any hart (the type is shared by all
///   harts) and never allocate from the heap that uses the source (the heap may call them
///   while holding one of its locks).
///
/// Failure (no block of that order) is `None`, never a panic.
pub unsafe trait PageSource {
    /// Takes a block of `2^order` pages, naturally aligned; `None` when none is free.
    fn alloc_pages(&self, order: usize) -> Option<NonNull<u8>>;

    /// Gives back a block.
    ///
    /// # Safety
    ///
    /// `ptr` was returned by `alloc_pages(order)` on this source with the same `order` and has
    /// not been freed since; nothing uses the block afterwards.
    unsafe fn free_pages(&self, ptr: NonNull<u8>, order: usize);
}

// SAFETY: forwards to `T`, which upholds the contract.
unsafe impl<T: PageSource + ?Sized> PageSource for &T {
    #[inline]
    fn alloc_pages(&self, order: usize) -> Option<NonNull<u8>> {
        (**self).alloc_pages(order)
    }

    #[inline]
    unsafe fn free_pages(&self, ptr: NonNull<u8>, order: usize) {
        // SAFETY: the caller's promise is passed on unchanged.
        unsafe { (**self).free_pages(ptr, order) }
    }
}
