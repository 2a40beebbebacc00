//! # pagoda-mm: the pagoda memory manager
//!
//! A `no_std` library with no kernel in it. Everything here builds and is tested on the
//! host; the pagoda kernel supplies the few hardware hooks (how physical memory is
//! reached, which hart is running, how a TLB entry is flushed) through traits.
//!
//! | module | mechanism |
//! |---|---|
//! | [`addr`] | physical/virtual address and page-number newtypes, alignment helpers |
//! | [`cpu`] | which hart is running: the pin behind the per-hart caches |
//! | [`layout`] | every address, size and limit of the Sv39 address space, named once |
//! | [`frame`] | buddy frame allocator, per-frame metadata, per-hart caches, accounting |
//! | [`heap`] | slab kernel heap over the frame allocator, with real free |
//! | [`paging`] | Sv39 page tables with 4 KiB / 2 MiB / 1 GiB leaves |
//! | [`tlb`] | ASID allocator with generations, batched precise TLB flushes |
//! | [`vm`] | address spaces: areas, mmap family, demand paging, copy-on-write |
//! | [`swap`] | swap-area slots and the swap cache's entries, the replacement lists |
//!
//! See `docs/ARCHITECTURE.md` in the repository for the diagrams.
#![no_std]
#![deny(missing_docs)]

// The vm layer's area maps and shared objects live on the kernel heap.
extern crate alloc;

pub mod addr;
pub mod cpu;
pub mod frame;
pub mod heap;
pub mod layout;
pub mod paging;
pub mod swap;
pub mod tlb;
pub mod vm;
