//! # pagoda-mm: the pagoda memory manager
//!
//! A `no_std` library with no kernel in it. Everything here builds and is tested on the
//! host; the pagoda kernel supplies the few hardware hooks (how physical memory is
//! reached, which hart is running, how a TLB entry is flushed) through traits.
//!
//! | module | mechanism |
//! |---|---|
//! | [`addr`] | physical/virtual address and page-number newtypes, alignment helpers |
//! | [`layout`] | every address, size and limit of the Sv39 address space, named once |
//!
//! See `docs/ARCHITECTURE.md` in the repository for the diagrams.
#![no_std]
#![deny(missing_docs)]

pub mod addr;
pub mod layout;
