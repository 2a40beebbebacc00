//! Host tests of the virtual-memory layer (`pagoda_mm::vm`) against simulated hardware:
//! a frame pool with reference counts, harts with TLBs that must be flushed, files, and
//! a page table. The whole suite runs twice: over a simulated page table (`on_map`: a
//! map of PTEs) and over the real Sv39 user table (`on_sv39`: `vm::Sv39Mmu` on a
//! simulated physical memory), so the table the kernel runs passes every test the
//! policy passes.
//!
//! - `mmap`: area operations and every Linux error case of the memory system calls;
//! - `fault`: demand paging, stack growth, permissions, precise flushing, accounting;
//! - `fork`: copy-on-write semantics and exact reference counts;
//! - `model`: property and stress tests against a per-page model;
//! - `smp`: flush-then-free across harts, and a missing remote fence caught.
#![allow(
    clippy::duplicate_mod,
    reason = "each test module is compiled twice, once over each page table"
)]

#[path = "../support/cases.rs"]
mod cases;
mod harts;
mod map_table;
#[path = "../paging_sim/memory.rs"]
mod sim_memory;
mod sv39_table;

mod on_map;
mod on_sv39;
