//! Physical frames: buddy allocator, per-frame metadata, per-hart caches, accounting.
