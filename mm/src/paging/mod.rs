//! Sv39 page tables: map, unmap, protect and translate with 4 KiB, 2 MiB and 1 GiB leaves.
//!
//! - [`pte`]: the entry format ([`Pte`], [`PteFlags`]), leaf sizes ([`PageSize`]) and
//!   the [`TablePage`] of 512 atomic entries.
//! - [`memory`]: [`PagingMemory`], how table pages are allocated, freed and reached (the
//!   kernel: frame allocator and direct map; host tests: a simulated memory), so the
//!   host tests run exactly the code the kernel runs.
//! - [`table`]: [`PageTable`] and its operations; one recursive range walker with a
//!   visitor per operation, shared argument checks, huge-leaf splitting, table pages
//!   freed when they become empty, frames released only after the TLB flush (through a
//!   [`FlushBatch`](crate::tlb::FlushBatch)).
//! - `share`: leaf tables that fork shares between trees, detached from both until
//!   one side's first access attaches (links back or copies) its own.
//! - [`pool`]: [`TablePool`], per-hart stacks of zeroed table pages that a
//!   [`PagingMemory`] keeps for reuse (pages cross that trait all zero both ways, so a
//!   freed table is a ready new one).
//! - [`error`]: the one error type, [`PagingError`].
//!
//! Locking: a [`PageTable`] is changed through `&mut self`; the owner (the address space)
//! serialises changes with its own lock. Entries are atomics only because the hardware
//! walker reads (and may set `A`/`D` in) them concurrently. `docs/page-tables.md`
//! describes the format, invariants and protocols.
//!
//! ```
//! # use pagoda_mm::paging::*;
//! # use pagoda_mm::addr::{PhysAddr, VirtAddr};
//! # fn demo<M: PagingMemory>(mem: M) -> Result<(), PagingError> {
//! let mut table = PageTable::new(mem)?;
//! // 4 MiB at a 2 MiB-aligned address: two 2 MiB leaves.
//! table.map_range(VirtAddr(0x4000_0000), PhysAddr(0x8040_0000), 4 << 20, PteFlags::R | PteFlags::W)?;
//! let (pa, _, size) = table.translate(VirtAddr(0x4000_1234)).unwrap();
//! assert_eq!((pa, size), (PhysAddr(0x8040_1234), PageSize::Size2M));
//! # Ok(()) }
//! ```

pub mod entry;
pub mod error;
pub mod memory;
pub mod pool;
pub mod pte;
mod share;
pub mod table;
mod walk;

pub use entry::{Deferred, LeafEntry, Unmapped};
pub use error::PagingError;
pub use memory::PagingMemory;
pub use pool::TablePool;
pub use pte::{
    LEVELS, PHYS_LIMIT, PTES_PER_TABLE, PageSize, Pte, PteFlags, SATP_ASID_SHIFT, SATP_MODE_SV39,
    TablePage,
};
pub use table::PageTable;
