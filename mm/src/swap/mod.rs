//! Swap: the bookkeeping of a swap area and the page-replacement lists, machine-free.
//!
//! | module | what |
//! |---|---|
//! | [`slots`] | a swap area's slots: reference counts, clustered allocation, the swap cache's slot-to-frame entries |
//! | [`lru`] | the active and inactive lists of reclaimable frames, linked through the frames' metadata |
//!
//! The kernel does the I/O, walks the reverse map ([`crate::vm::for_each_mapping`]) and
//! turns PTEs into swap entries ([`crate::vm::AddressSpace::remember_page`]); what to
//! evict and where to write it is decided here, and tested on the host.

pub mod lru;
pub mod slots;

pub use lru::{Links, List, Lru};
pub use slots::{CLUSTER, Cached, SwapMap};
