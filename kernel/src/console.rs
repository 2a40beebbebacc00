//! The kernel console: `print!`/`println!` to the device tree's UART, or to the SBI
//! console before the UART is known.

use core::fmt::{self, Write};
use core::ptr::NonNull;

use spin::Mutex;

use crate::drivers::uart::Uart;

static CONSOLE: Mutex<Option<Uart>> = Mutex::new(None);

/// Switches the console to the UART whose registers are mapped at `base`.
///
/// # Safety
/// As [`Uart::new`].
pub unsafe fn use_uart(base: NonNull<u8>, shift: u32) {
    // SAFETY: forwarded contract.
    *CONSOLE.lock() = Some(unsafe { Uart::new(base, shift) });
}

struct Writer<'a>(&'a mut Option<Uart>);

impl Write for Writer<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            put(self.0, b);
        }
        Ok(())
    }
}

/// Sends one byte, turning `\n` into `\r\n`.
fn put(uart: &mut Option<Uart>, b: u8) {
    match uart {
        Some(uart) => {
            if b == b'\n' {
                uart.put(b'\r');
            }
            uart.put(b);
        }
        None => {
            // The legacy SBI console is the only one OpenSBI 1.1 offers (DBCN came with
            // SBI 2.0); it is used only until the device tree names the UART.
            #[allow(deprecated)]
            sbi_rt::legacy::console_putchar(usize::from(b));
        }
    }
}

/// Writes formatted text; one call is never interleaved with another hart's output.
/// The text is also kept in the kernel log ([`read_log`], `dmesg`).
pub fn print(args: fmt::Arguments<'_>) {
    let mut guard = CONSOLE.lock();
    // The console cannot fail; a formatting error inside `args` only truncates.
    let _ = Writer(&mut guard).write_fmt(args);
    // Skipped rather than waited for if the log is busy (a panic while it was held).
    if let Some(mut log) = LOG.try_lock() {
        let _ = log.write_fmt(args);
    }
}

/// Bytes the kernel log keeps (the newest; Linux's default `log_buf_len` is 128 KiB).
pub const LOG_SIZE: usize = 16 * 1024;

/// The kernel log: the last [`LOG_SIZE`] bytes the kernel printed, in a ring.
struct Log {
    bytes: [u8; LOG_SIZE],
    /// Bytes written since boot (the ring's end is at `written % LOG_SIZE`).
    written: usize,
}

impl Write for Log {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            self.bytes[self.written % LOG_SIZE] = b;
            self.written += 1;
        }
        Ok(())
    }
}

static LOG: Mutex<Log> = Mutex::new(Log {
    bytes: [0; LOG_SIZE],
    written: 0,
});

/// Copies the newest `out.len()` bytes of the kernel log (or all it holds) into `out`,
/// oldest first; returns how many.
pub fn read_log(out: &mut [u8]) -> usize {
    let log = LOG.lock();
    let held = log.written.min(LOG_SIZE);
    let n = held.min(out.len());
    let start = log.written - n;
    for (i, slot) in out.iter_mut().take(n).enumerate() {
        *slot = log.bytes[(start + i) % LOG_SIZE];
    }
    n
}

/// Bytes the kernel log holds now.
pub fn log_len() -> usize {
    LOG.lock().written.min(LOG_SIZE)
}

/// Writes bytes for the terminal ([`crate::fs::tty`]): each `\n` as `\r\n` if
/// `crlf` (the terminal's `OPOST | ONLCR`), else as they are.
pub fn write_raw(bytes: &[u8], crlf: bool) {
    let mut guard = CONSOLE.lock();
    for &b in bytes {
        match guard.as_mut() {
            Some(uart) if !crlf => uart.put(b),
            _ => put(&mut guard, b),
        }
    }
}

/// Whether something typed is waiting to be read.
pub fn has_input() -> bool {
    CONSOLE.lock().as_ref().is_some_and(|uart| uart.has_input())
}

/// The next byte typed on the console, if any (the terminal's line discipline,
/// [`crate::fs::tty`], takes it from here).
pub fn get_byte() -> Option<u8> {
    CONSOLE.lock().as_mut().and_then(|uart| uart.get())
}

/// Writes to the kernel console.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::console::print(format_args!($($arg)*)) };
}

/// Writes a line to the kernel console.
#[macro_export]
macro_rules! println {
    () => { $crate::print!("\n") };
    ($($arg:tt)*) => { $crate::console::print(format_args!("{}\n", format_args!($($arg)*))) };
}
