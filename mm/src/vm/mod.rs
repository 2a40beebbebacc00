//! Address spaces: memory areas, the mmap family, demand paging, copy-on-write `fork`.
//!
//! This is the policy half of user memory: *what* should be mapped where, with which
//! rights, and what a fault means. The mechanism half (page-table entries, TLB flushes,
//! frames, file contents) is reached through the traits in [`hal`], so the whole layer
//! runs and is tested on the host against simulated hardware, and the kernel plugs in its
//! Sv39 page tables, ASID-tagged flushes and buddy frames.
//!
//! ```text
//!   syscalls ──► mmap / munmap / mprotect / brk / madvise ──┐
//!                mlock / munlock / mlockall / mincore ──────┤
//!   exec ──────► map_file_private / map_anon / map_stack ───┤   AddressSpace
//!   traps ─────► handle_fault ◄── ensure_user_range ◄── uaccess   (areas: BTreeMap)
//!   fork ──────► fork(child page table) ────────────────────┘
//!                    │ Mmu (PTEs)   │ TlbFlush   │ FrameSource (refcounts)   │ VmFile
//!                    ▼
//!   Sv39Mmu (sv39): user PTE encoding ─► paging::PageTable ─► tlb::FlushBatch
//!                    │ PagingMemory (table pages)      │ TlbOps (hart, fences)
//!                    ▼                                 ▼
//!                  the kernel's machine hooks, or the host tests' simulation
//! ```
//!
//! # Design
//! - An [`AddressSpace`] is an ordered map from start address to area (`BTreeMap`, O(log n)
//!   lookup). An area has a protection ([`Prot`]), a backing (private anonymous, shared
//!   anonymous object, private file with a "file bytes end here" mark for ELF bss tails)
//!   and a stack flag. Operations on part of an area split it; neighbours that become
//!   alike are merged, so the set is always minimal.
//! - Nothing is mapped eagerly (except under `MAP_POPULATE`). The fault handler maps the
//!   shared zero page read-only for reads of untouched private memory, a zeroed frame on
//!   writes, a frame filled from the file for file pages, the shared object's page for
//!   shared memory, and grows stacks downwards within `RLIMIT_STACK` and the guard gap.
//! - `fork` shares every frame: private pages become read-only with the copy-on-write
//!   software bit in both spaces and their frame's reference count is raised. A write
//!   fault on such a page copies it, or takes it over when the count says it is no longer
//!   shared. Teardown (exit, exec) drops one reference per PTE.
//! - Flushes are precise: only a present, accessible PTE that loses a right or changes
//!   frame is flushed, and frames are released only after their flush (see [`hal`]).
//! - [`sv39`] is the [`Mmu`] of the real machine: the user PTE encoding (copy-on-write and
//!   `PROT_NONE` in the software bits) over the [`paging`](crate::paging) table code,
//!   with every removal flushed through one [`FlushBatch`](crate::tlb::FlushBatch) before
//!   anything is freed. The layer has no `unsafe` code (`forbid(unsafe_code)`).
//!
//! # Invariants (checked by the tests after every operation)
//! - Areas are disjoint, page aligned, within `[mmap_min_addr, USER_END)`, maximally
//!   merged; every present PTE is inside an area.
//! - PTE permissions = the area's protection (write implies read), minus write for
//!   copy-on-write PTEs and zero-page PTEs; a writable private PTE is its frame's only
//!   reference.
//! - A frame's reference count = the number of PTEs mapping it in all spaces, plus one
//!   if a shared object holds it. The zero page is never counted.
//!
//! # Locking
//! Every operation takes `&mut AddressSpace`: the kernel keeps each space behind one lock
//! (its `mmap_lock`), taken for faults too. Shared objects carry their own spin lock,
//! since spaces that share them are locked independently; frame reference counts are
//! atomic in the kernel's [`FrameSource`]. Global statistics are relaxed atomics.
//!
//! See `docs/virtual-memory.md` for the fault path, the copy-on-write protocol and the
//! errno table.

#![forbid(unsafe_code)]

pub mod abi;
mod area;
mod error;
mod fault;
mod fork;
pub mod hal;
mod huge;
mod mlock;
mod mmap;
mod mremap;
pub mod object;
pub mod rmap;
mod space;
mod stats;
pub mod sv39;

pub use area::{AreaInfo, AreaKind, Lock, Prot};
pub use error::{FaultError, VmError};
pub use fault::{Access, FaultOutcome};
pub use hal::{
    CopyPte, FileIdentity, FrameSource, IoError, Mmu, OutOfMemory, PageAccount, PagePerms, PteInfo,
    PteState, SwapEntry, TlbFlush, VmFile,
};
pub use huge::{Thp, huge_head_of};
pub use mlock::mapped_by_locked_area;
pub use mmap::MmapFile;
pub use mremap::Remapped;
pub use object::{MemObject, PageError, SpaceId};
pub use rmap::{SpaceSet, for_each_mapping, owner_is_private, unmap_object_tail};
pub use space::{AddressSpace, VmConfig, spaces_may_lock};
pub use stats::{VmStats, global_stats};
pub use sv39::Sv39Mmu;

use crate::addr::PAGE_SIZE;

/// The user-half limits of the mmap family, defined with the rest of the layout.
pub use crate::layout::{MMAP_MAX_GAP, MMAP_MIN_GAP, STACK_GUARD_GAP, TASK_UNMAPPED_BASE};

/// Linux's default `RLIMIT_STACK` (8 MiB).
pub const DEFAULT_STACK_RLIMIT: usize = 8 << 20;

/// Linux's default `vm.mmap_min_addr` (one page): the zero page is never mappable.
pub const DEFAULT_MMAP_MIN_ADDR: usize = PAGE_SIZE;

/// Linux's default `RLIMIT_MEMLOCK` (8 MiB, `MLOCK_LIMIT`): what `getrlimit` reports; a
/// root process (`CAP_IPC_LOCK`) may lock more.
pub const DEFAULT_MEMLOCK_RLIMIT: usize = 8 << 20;

/// Linux's default `vm.max_map_count`.
pub const DEFAULT_MAX_MAP_COUNT: usize = 65530;
