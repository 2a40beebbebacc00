//! Device drivers: the console UART, the power-off finisher, the real-time clock, the
//! interrupt controller and the virtio block device.

pub mod finisher;
pub mod plic;
pub mod rtc;
pub mod uart;
pub mod virtio_blk;

use crate::boot::info::BootInfo;

/// Starts the interrupt controller and the devices behind it (after the heap exists and
/// every hart is online, so each hart's context is enabled).
pub fn init(info: &BootInfo) {
    if let Some(p) = &info.devices.plic {
        plic::init(p);
    }
    if let Some(pages) = virtio_blk::probe(&info.devices.virtio) {
        crate::println!(
            "pagoda: virtio block device, {} MiB{}",
            pages >> 8,
            if plic::present() {
                ""
            } else {
                " (no PLIC: polled)"
            }
        );
    }
}

/// A supervisor external interrupt: claims and handles every pending device source.
pub fn external_interrupt() {
    let hart = crate::smp::hart_id();
    while let Some(irq) = plic::claim(hart) {
        if virtio_blk::owns_irq(irq) {
            virtio_blk::interrupt();
        }
        plic::complete(hart, irq);
    }
}
