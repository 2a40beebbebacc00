//! Heap statistics: per-class counters, page totals, high-water marks, leak checks.
//!
//! Counters are read without stopping the other harts, so a snapshot taken while they
//! allocate is approximate; a snapshot taken when the heap is quiescent is exact, which is
//! what leak tests rely on.

use super::class::NUM_CLASSES;
use crate::addr::PAGE_SIZE;

/// Counters of one size class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Object size of the class in bytes.
    pub object_size: usize,
    /// Objects held by callers (handed out and not freed).
    pub objects_in_use: usize,
    /// Free objects sitting in per-hart caches (still counted in the slabs' use counts).
    pub objects_cached: usize,
    /// High-water mark of objects out of slabs (in use plus cached): an upper bound of the
    /// peak of `objects_in_use`, within the per-hart cache capacity.
    pub objects_peak: usize,
    /// Slabs held, each with at least one object out (for the page class: pages out of
    /// the page source). Empty slabs leave their class for the heap's reserve.
    pub slabs: usize,
    /// Pages held by the class.
    pub pages: usize,
    /// High-water mark of `pages`.
    pub pages_peak: usize,
}

/// A snapshot of the whole heap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeapStats {
    /// Per size class, indexed like [`CLASS_SIZES`](super::CLASS_SIZES).
    pub classes: [CacheStats; NUM_CLASSES],
    /// Live allocations served directly by the page source (above the largest class).
    pub large_allocations: usize,
    /// Pages held by those allocations.
    pub large_pages: usize,
    /// Pages currently taken from the page source, for any purpose.
    pub pages_held: usize,
    /// High-water mark of `pages_held`.
    pub pages_peak: usize,
    /// Of `pages_held`, pages in empty slabs kept for reuse (at most
    /// [`EMPTY_RESERVE_PAGES`](super::EMPTY_RESERVE_PAGES)).
    pub reserve_pages: usize,
    /// Allocations that returned null because the page source ran dry or the layout was
    /// impossible.
    pub failed_allocations: usize,
    /// Frees refused because the pointer could not have come from the class its layout
    /// names (misaligned, not in a slab of that class, or a slab object not handed out).
    pub rejected_frees: usize,
}

impl Default for HeapStats {
    fn default() -> Self {
        Self {
            classes: [CacheStats::default(); NUM_CLASSES],
            large_allocations: 0,
            large_pages: 0,
            pages_held: 0,
            pages_peak: 0,
            reserve_pages: 0,
            failed_allocations: 0,
            rejected_frees: 0,
        }
    }
}

impl HeapStats {
    /// Allocations held by callers: objects of every class plus large allocations. Zero
    /// once everything allocated has been freed.
    pub fn live_allocations(&self) -> usize {
        self.classes.iter().map(|c| c.objects_in_use).sum::<usize>() + self.large_allocations
    }

    /// Bytes held by callers, counted at class granularity (an object of the 96-byte class
    /// counts 96) and whole pages for large allocations.
    pub fn bytes_in_use(&self) -> usize {
        let objects: usize = self
            .classes
            .iter()
            .map(|c| c.objects_in_use * c.object_size)
            .sum();
        objects + self.large_pages * PAGE_SIZE
    }

    /// Free objects parked in per-hart caches, all classes together.
    pub fn objects_cached(&self) -> usize {
        self.classes.iter().map(|c| c.objects_cached).sum()
    }

    /// Whether the heap holds nothing: no live allocation, no cached object and no page of
    /// the page source. True after freeing everything, draining every hart's cache and
    /// [`trim`](super::SlabHeap::trim)ming.
    pub fn is_empty(&self) -> bool {
        self.live_allocations() == 0 && self.objects_cached() == 0 && self.pages_held == 0
    }
}
