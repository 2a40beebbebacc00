//! The kernel heap: slab caches over the buddy allocator, with real free.
pub mod class;
mod object;
mod slab;
mod slab_heap;
mod source;
mod stats;

pub use class::{CLASS_SIZES, MAX_CLASS_SIZE, NUM_CLASSES, class_of};
pub use object::{CacheBox, ObjectCache};
pub use slab_heap::SlabHeap;
pub use source::{CpuLocal, PageSource, Unpinned};
pub use stats::{CacheStats, HeapStats};
