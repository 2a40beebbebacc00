//! Device drivers: the console UART, the power-off finisher, the real-time clock.

pub mod finisher;
pub mod rtc;
pub mod uart;
