//! Memory: the glue between `pagoda-mm` and the machine.
//!
//! | module | what |
//! |---|---|
//! | [`frames`] | the buddy frame allocator over the device tree's RAM |
//! | [`heap`] | the slab heap as `#[global_allocator]` |

pub mod frames;
pub mod heap;

use crate::boot::BootInfo;

/// Starts the frame allocator; the heap works from then on.
pub fn init(info: &BootInfo) -> Result<(), frames::InitError> {
    frames::init(info)
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
