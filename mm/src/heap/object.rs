//! Typed object caches: `T`-sized objects from the heap's matching class, owned by a box
//! that frees them on drop.

use core::alloc::Layout;
use core::fmt;
use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};
use core::ptr::NonNull;

use super::class::class_of;
use super::slab_heap::SlabHeap;
use super::source::PageSource;
use super::stats::CacheStats;
use crate::cpu::CpuLocal;

/// A typed front of a [`SlabHeap`] for one hot kernel type (page-table pages, areas,
/// process structures).
///
/// The size class of `T` is resolved once, at compile time, so an allocation goes straight
/// to the per-hart cache of that class. Objects come back as [`CacheBox`]es, which drop
/// their value and free the memory when dropped. A `T` larger than every class is served
/// by the page source like any large allocation.
pub struct ObjectCache<'h, T, P, C, const HARTS: usize> {
    heap: &'h SlabHeap<P, C, HARTS>,
    _type: PhantomData<fn(T) -> T>,
}

impl<'h, T, P: PageSource, C: CpuLocal, const HARTS: usize> ObjectCache<'h, T, P, C, HARTS> {
    /// The class serving `T`, or `None` if `T` is served by the page source.
    const CLASS: Option<usize> = class_of(size_of::<T>(), align_of::<T>());

    /// A cache of `T` objects drawn from `heap`.
    pub const fn new(heap: &'h SlabHeap<P, C, HARTS>) -> Self {
        Self {
            heap,
            _type: PhantomData,
        }
    }

    /// Moves `value` into a new object; gives it back as `Err` if memory ran out.
    pub fn alloc(&self, value: T) -> Result<CacheBox<'h, T, P, C, HARTS>, T> {
        let raw = match Self::CLASS {
            Some(c) => self.heap.alloc_class(c),
            None => self.heap.alloc(Layout::new::<T>()),
        };
        let Some(ptr) = NonNull::new(raw.cast::<T>()) else {
            return Err(value);
        };
        // SAFETY: a fresh allocation with `T`'s size and alignment.
        unsafe { ptr.write(value) };
        Ok(CacheBox {
            ptr,
            heap: self.heap,
        })
    }

    /// Counters of the class `T` lives in; `None` when `T` is above every class.
    pub fn stats(&self) -> Option<CacheStats> {
        self.heap.cache_stats(Self::CLASS?)
    }
}

/// An owned `T` in an object of a [`SlabHeap`]; dropping it drops the `T` and frees the
/// object.
pub struct CacheBox<'h, T, P: PageSource, C: CpuLocal, const HARTS: usize> {
    ptr: NonNull<T>,
    heap: &'h SlabHeap<P, C, HARTS>,
}

impl<'h, T, P: PageSource, C: CpuLocal, const HARTS: usize> CacheBox<'h, T, P, C, HARTS> {
    /// Gives up ownership without freeing: the object stays allocated until
    /// [`from_raw`](Self::from_raw) rebuilds the box (for structures that keep raw
    /// pointers, such as page tables).
    pub fn into_raw(self) -> NonNull<T> {
        let ptr = self.ptr;
        core::mem::forget(self);
        ptr
    }

    /// Rebuilds a box from [`into_raw`](Self::into_raw).
    ///
    /// # Safety
    /// `ptr` came from `into_raw` of a box of the same `heap`, and is not owned elsewhere.
    pub unsafe fn from_raw(ptr: NonNull<T>, heap: &'h SlabHeap<P, C, HARTS>) -> Self {
        Self { ptr, heap }
    }
}

impl<T, P: PageSource, C: CpuLocal, const HARTS: usize> Deref for CacheBox<'_, T, P, C, HARTS> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the box owns a live, initialised `T`.
        unsafe { self.ptr.as_ref() }
    }
}

impl<T, P: PageSource, C: CpuLocal, const HARTS: usize> DerefMut for CacheBox<'_, T, P, C, HARTS> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the box owns a live, initialised `T`, uniquely.
        unsafe { self.ptr.as_mut() }
    }
}

impl<T: fmt::Debug, P: PageSource, C: CpuLocal, const HARTS: usize> fmt::Debug
    for CacheBox<'_, T, P, C, HARTS>
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}

impl<T, P: PageSource, C: CpuLocal, const HARTS: usize> Drop for CacheBox<'_, T, P, C, HARTS> {
    fn drop(&mut self) {
        // SAFETY: the box owns the `T` and the object, allocated with `T`'s layout (the
        // class path and `alloc` agree on the class for it).
        unsafe {
            self.ptr.drop_in_place();
            self.heap
                .dealloc(self.ptr.as_ptr().cast(), Layout::new::<T>());
        }
    }
}

// SAFETY: the box owns its `T` like `Box<T>`; the heap is `Sync`.
unsafe impl<T: Send, P: PageSource + Sync, C: CpuLocal, const HARTS: usize> Send
    for CacheBox<'_, T, P, C, HARTS>
{
}
// SAFETY: shared access hands out `&T` only.
unsafe impl<T: Sync, P: PageSource + Sync, C: CpuLocal, const HARTS: usize> Sync
    for CacheBox<'_, T, P, C, HARTS>
{
}
