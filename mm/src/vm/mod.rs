//! Address spaces: memory areas, mmap family, demand paging, copy-on-write.
