//! Memory: the glue between `pagoda-mm` and the machine.
//!
//! Safe Rust except three framework modules, which say why they need `unsafe`:
//! [`frames`] (the metadata array carved from RAM, the table-page pool and the
//! `PagingMemory` contract), [`heap`] (the `GlobalAlloc` and `PageSource` contracts) and
//! `machine` (frames through the direct map, loading `satp`); and the in-kernel tests.
//!
//! | module | what |
//! |---|---|
//! | [`frames`] | the buddy frame allocator over the device tree's RAM; page-table pages, zeroed and pooled per hart |
//! | [`heap`] | the slab heap as `#[global_allocator]` |
//! | [`kspace`] | the kernel address space (W^X image, direct map, devices) |
//! | [`kstack`] | kernel stacks with guard pages |
//! | [`ktest`] | in-kernel tests of all of the above (they probe memory: `unsafe` allowed) |
//! | `machine` | frames through the direct map, loading `satp` |
//! | [`mlock`] | locked memory: reclaim's check, the `Mlocked` total, faulting a locked range in |
//! | [`reclaim`], [`swap`] | the replacement lists and the scan; the swap area, the swap cache, swap-out and swap-in |
//! | [`tlb`] | `sfence.vma`, SBI remote fences, ASIDs |
//! | [`uspace`] | user address spaces: `pagoda-mm`'s policy over Sv39, ASIDs and frames |

#![deny(unsafe_code)]

#[allow(unsafe_code)]
pub mod frames;
#[allow(unsafe_code)]
pub mod heap;
pub mod kspace;
pub mod kstack;
// In-kernel tests probe memory through raw pointers.
#[allow(unsafe_code)]
pub mod ktest;
#[allow(unsafe_code)]
mod machine;
pub mod mlock;
pub mod reclaim;
pub mod swap;
pub mod tlb;
pub mod uspace;

use crate::boot::BootInfo;

/// Why memory could not be set up.
#[derive(Debug)]
pub enum InitError {
    /// The frame allocator did not start.
    Frames(frames::InitError),
    /// The kernel address space could not be built.
    KernelSpace(pagoda_mm::paging::PagingError),
}

impl core::fmt::Display for InitError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            InitError::Frames(e) => write!(f, "{e}"),
            InitError::KernelSpace(e) => write!(f, "kernel address space: {e:?}"),
        }
    }
}

/// Starts the frame allocator (the heap works from then on), then builds the kernel
/// address space and switches to it. Returns the number of ASID bits.
pub fn init(info: &BootInfo, kernel_pa: usize) -> Result<u32, InitError> {
    frames::init(info).map_err(InitError::Frames)?;
    kspace::init(info, kernel_pa).map_err(InitError::KernelSpace)
}

/// Prints frame and heap counters.
pub fn print_stats() {
    let f = frames::stats();
    crate::println!(
        "memory: frames total {} free {} cached {} used {} (peak {}), heap {} pages, {} live allocations",
        f.total,
        f.free,
        f.cached,
        f.used,
        f.peak_used,
        heap::stats().pages_held,
        heap::stats().live_allocations()
    );
}
