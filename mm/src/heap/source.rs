//! The two hooks the heap needs from its environment: where pages come from
//! ([`PageSource`]) and which hart is running ([`CpuLocal`]).

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

/// The running hart's id, with the promise that the caller stays alone on that hart's
/// per-hart state while it holds the returned pin.
///
/// The heap's per-hart object caches are touched without atomic read-modify-write
/// instructions; this trait is what makes that sound.
///
/// # Safety
///
/// While a `Self::Pin` returned by [`pin`](CpuLocal::pin) is alive, no other execution
/// context may hold a pin carrying the same hart id: not another thread (no migration to
/// another hart with the id in hand), and not an interrupt handler on the same hart that
/// could itself call `pin`. A kernel implements it by disabling interrupts (which also
/// disables preemption) in `pin` and restoring them when the pin drops; a host test gives
/// each thread its own id. Ids may be arbitrary: an id at or above the heap's hart count
/// simply takes the shared, locked path.
pub unsafe trait CpuLocal {
    /// Held for the duration of one heap operation; dropping it ends the pinned section.
    type Pin;

    /// Pins the caller and returns its hart id together with the pin.
    fn pin() -> (usize, Self::Pin);
}

/// A [`CpuLocal`] for contexts with no per-hart state (single-hart boot code, tools):
/// every operation takes the shared, locked path of the heap.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unpinned;

// SAFETY: the returned id is `usize::MAX`, which is never below a heap's hart count, so no
// per-hart state is ever touched under it.
unsafe impl CpuLocal for Unpinned {
    type Pin = ();

    #[inline]
    fn pin() -> (usize, ()) {
        (usize::MAX, ())
    }
}
