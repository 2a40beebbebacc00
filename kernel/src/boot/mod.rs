//! Boot: what the machine is (from the device tree) and the boot summary.

pub mod info;
pub mod ktest;

pub use info::BootInfo;
