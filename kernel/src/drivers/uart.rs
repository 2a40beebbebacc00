//! ns16550a UART: polled transmit and receive.

use core::ptr::NonNull;

/// Transmit holding register.
const THR_RBR: usize = 0;
/// Line status register.
const LSR: usize = 5;
/// LSR: a received byte is waiting.
const LSR_DATA_READY: u8 = 1 << 0;
/// LSR: the transmitter can take a byte.
const LSR_THR_EMPTY: u8 = 1 << 5;

/// An ns16550a whose registers are mapped at `base`, `1 << shift` bytes apart.
pub struct Uart {
    base: NonNull<u8>,
    shift: u32,
}

// SAFETY: the UART is a device, not memory shared with Rust code; every access is a
// single volatile byte access, and callers serialise whole lines with the console lock.
unsafe impl Send for Uart {}

impl Uart {
    /// # Safety
    /// `base` must be the kernel virtual address of an ns16550a's registers, mapped for
    /// the kernel's lifetime, and nothing else may drive the device.
    pub unsafe fn new(base: NonNull<u8>, shift: u32) -> Uart {
        Uart { base, shift }
    }

    fn reg(&self, index: usize) -> *mut u8 {
        self.base.as_ptr().wrapping_add(index << self.shift)
    }

    /// Whether a received byte is waiting.
    pub fn has_input(&self) -> bool {
        // SAFETY: as in `put`.
        unsafe { self.reg(LSR).read_volatile() & LSR_DATA_READY != 0 }
    }

    /// The next received byte, if one is waiting.
    pub fn get(&mut self) -> Option<u8> {
        // SAFETY: as in `put`.
        unsafe {
            (self.reg(LSR).read_volatile() & LSR_DATA_READY != 0)
                .then(|| self.reg(THR_RBR).read_volatile())
        }
    }

    /// Sends one byte, waiting until the transmitter has room.
    pub fn put(&mut self, byte: u8) {
        // SAFETY: `reg` stays inside the device's register window (see `new`).
        unsafe {
            while self.reg(LSR).read_volatile() & LSR_THR_EMPTY == 0 {}
            self.reg(THR_RBR).write_volatile(byte);
        }
    }
}
