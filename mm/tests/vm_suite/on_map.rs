//! The suite over the simulated page table (a map of PTEs).

use crate::map_table::MapTable as Table;

#[path = "fault.rs"]
mod fault;
#[path = "fork.rs"]
mod fork;
#[path = "mlock.rs"]
mod mlock;
#[path = "mmap.rs"]
mod mmap;
#[path = "model.rs"]
mod model;
#[path = "mremap.rs"]
mod mremap;
#[path = "remembered.rs"]
mod remembered;
#[path = "sim.rs"]
mod sim;
#[path = "smp.rs"]
mod smp;
