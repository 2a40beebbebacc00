//! The kernel heap: slab caches over the buddy allocator, with real free.
