//! Device drivers. Each takes its registers from the device tree.

pub mod finisher;
pub mod uart;
