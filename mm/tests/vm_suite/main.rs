//! Host tests of the virtual-memory layer (`pagoda_mm::vm`) against simulated hardware:
//! a frame pool with reference counts, page tables with a TLB that must be flushed, files.
//!
//! - `mmap`: area operations and every Linux error case of the memory system calls;
//! - `fault`: demand paging, stack growth, permissions, precise flushing, accounting;
//! - `fork`: copy-on-write semantics and exact reference counts;
//! - `model`: property and stress tests against a per-page model.

mod fault;
mod fork;
mod mmap;
mod model;
mod sim;
