//! The console as a file: descriptors 0-2 of the first process, a terminal.

use super::{File, FileRef, S_IFCHR, Stat, poll};
use crate::errno::Errno;

/// Opens the console (`/dev/console`, `/dev/tty`) with the status `flags`.
pub fn open(flags: usize) -> Result<FileRef, Errno> {
    super::open(Console, flags)
}

/// The console: writes go to the UART; reads return what was typed (`EAGAIN` when
/// nothing is waiting: the system call sleeps and retries).
pub struct Console;

impl File for Console {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Errno> {
        match crate::console::read_bytes(buf) {
            0 if !buf.is_empty() => Err(Errno::EAGAIN),
            n => Ok(n),
        }
    }

    fn write(&mut self, buf: &[u8]) -> Result<usize, Errno> {
        crate::console::write_bytes(buf);
        Ok(buf.len())
    }

    fn poll(&self) -> u16 {
        if crate::console::has_input() {
            poll::POLLIN | poll::POLLOUT
        } else {
            poll::POLLOUT
        }
    }

    fn stat(&self) -> Stat {
        Stat {
            ino: 0,
            mode: S_IFCHR | 0o620,
            size: 0,
            rdev: 0x0501,
            mtime: 0,
        }
    }

    fn is_tty(&self) -> bool {
        true
    }
}
