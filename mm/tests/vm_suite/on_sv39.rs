//! The suite over the real Sv39 user table.

use crate::sv39_table::Sv39Table as Table;

#[path = "fault.rs"]
mod fault;
#[path = "fork.rs"]
mod fork;
#[path = "huge.rs"]
mod huge;
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
#[path = "shootdown.rs"]
mod shootdown;
#[path = "sim.rs"]
mod sim;
#[path = "smp.rs"]
mod smp;
