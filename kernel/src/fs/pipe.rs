//! Pipes: a bounded byte queue between a read end and a write end, with Linux's
//! semantics.
//!
//! - Capacity [`PIPE_CAPACITY`] (Linux's default, 16 pages). The buffer grows as data
//!   arrives, from the kernel heap and only while memory is above the kernel's reserve;
//!   an empty pipe holds no buffer memory.
//! - A read takes what is there (up to the request); with nothing there it waits for a
//!   writer, or returns 0 (end of file) once every write end is closed.
//! - A write waits until everything is written; writes of at most [`PIPE_BUF`] bytes are
//!   atomic (never interleaved with another writer's). With every read end closed a
//!   write fails with `EPIPE` and the writer gets `SIGPIPE`.
//! - `O_NONBLOCK`: `EAGAIN` instead of waiting (a write that cannot fit a [`PIPE_BUF`]
//!   -sized request whole writes nothing).
//!
//! The ends' `read`/`write` never sleep (they are called with the open file's lock
//! held); they answer `EAGAIN`, and the system-call layer waits on [`Pipe::wait`]
//! without holding any lock.

use alloc::collections::VecDeque;
use alloc::sync::Arc;

use spin::Mutex;

use crate::errno::Errno;
use crate::proc::wait::WaitQueue;

/// Bytes a pipe holds at most (Linux's default pipe size).
pub const PIPE_CAPACITY: usize = 65536;
/// Writes up to this size are atomic (POSIX `PIPE_BUF`, 4096 on Linux).
pub const PIPE_BUF: usize = 4096;

/// The shared part of a pipe.
pub struct Pipe {
    /// Its inode number (`pipe:[N]` in `/proc/PID/fd`, `st_ino`), counted from 1.
    ino: u64,
    state: Mutex<State>,
    /// Readers and writers waiting for data, room, or the other end to close.
    queue: WaitQueue,
}

struct State {
    data: VecDeque<u8>,
    readers: usize,
    writers: usize,
}

/// Which end of a pipe an open file is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The read end.
    Read,
    /// The write end.
    Write,
}

/// One end of a pipe, as held by an open file description; closing the description
/// (dropping this) closes the end and wakes the other side.
pub struct PipeEnd {
    pipe: Arc<Pipe>,
    end: End,
}

impl Drop for PipeEnd {
    fn drop(&mut self) {
        {
            let mut s = self.pipe.state.lock();
            match self.end {
                End::Read => s.readers -= 1,
                End::Write => s.writers -= 1,
            }
        }
        self.pipe.queue.wake_all();
    }
}

/// A new pipe: its read end and its write end.
pub fn new() -> Result<(PipeEnd, PipeEnd), Errno> {
    /// The next pipe's inode number.
    static NEXT_INO: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(1);
    let pipe = Arc::new(Pipe {
        ino: NEXT_INO.fetch_add(1, core::sync::atomic::Ordering::Relaxed),
        state: Mutex::new(State {
            data: VecDeque::new(),
            readers: 1,
            writers: 1,
        }),
        queue: WaitQueue::new(),
    });
    let read = PipeEnd {
        pipe: pipe.clone(),
        end: End::Read,
    };
    Ok((
        read,
        PipeEnd {
            pipe,
            end: End::Write,
        },
    ))
}

impl PipeEnd {
    /// Reads what is there, up to `buf.len()` bytes: 0 at end of file, `EAGAIN` when
    /// empty with a writer left.
    pub fn read(&self, buf: &mut [u8]) -> Result<usize, Errno> {
        if self.end != End::Read {
            return Err(Errno::EBADF);
        }
        let n = {
            let mut s = self.pipe.state.lock();
            if s.data.is_empty() {
                return if s.writers == 0 || buf.is_empty() {
                    Ok(0)
                } else {
                    Err(Errno::EAGAIN)
                };
            }
            let n = s.data.len().min(buf.len());
            for (dst, src) in buf.iter_mut().zip(s.data.drain(..n)) {
                *dst = src;
            }
            if s.data.is_empty() {
                // An empty pipe gives its buffer back.
                s.data = VecDeque::new();
            }
            n
        };
        self.pipe.queue.wake_all();
        Ok(n)
    }

    /// Writes as much of `buf` as fits now (all or nothing for up to [`PIPE_BUF`]
    /// bytes): `EAGAIN` when nothing fits, `EPIPE` with no reader left.
    pub fn write(&self, buf: &[u8]) -> Result<usize, Errno> {
        if self.end != End::Write {
            return Err(Errno::EBADF);
        }
        let n = {
            let mut s = self.pipe.state.lock();
            if s.readers == 0 {
                return Err(Errno::EPIPE);
            }
            let room = PIPE_CAPACITY - s.data.len();
            let n = room.min(buf.len());
            if n == 0 || (buf.len() <= PIPE_BUF && n < buf.len()) {
                return Err(Errno::EAGAIN);
            }
            let grow = n.saturating_sub(s.data.capacity() - s.data.len());
            if grow > 0
                && (!crate::memory::frames::user_may_take(grow) || s.data.try_reserve(n).is_err())
            {
                // No memory for more buffer: a full pipe for now (ENOMEM if empty).
                return Err(if s.data.is_empty() {
                    Errno::ENOMEM
                } else {
                    Errno::EAGAIN
                });
            }
            s.data.extend(&buf[..n]);
            n
        };
        self.pipe.queue.wake_all();
        Ok(n)
    }

    /// `poll` events of this end now: `POLLIN` with data (or `POLLHUP` once every
    /// writer closed), `POLLOUT` with room for [`PIPE_BUF`] bytes (or `POLLERR` once
    /// every reader closed).
    pub fn poll(&self) -> u16 {
        use super::poll::{POLLERR, POLLHUP, POLLIN, POLLOUT};
        let s = self.pipe.state.lock();
        match self.end {
            End::Read => {
                let mut ev = if s.data.is_empty() { 0 } else { POLLIN };
                if s.writers == 0 {
                    ev |= POLLHUP;
                }
                ev
            }
            End::Write if s.readers == 0 => POLLOUT | POLLERR,
            End::Write if PIPE_CAPACITY - s.data.len() >= PIPE_BUF => POLLOUT,
            End::Write => 0,
        }
    }

    /// What to wait on for this end, to be used without the open file's lock.
    pub fn waiter(&self) -> Waiter {
        Waiter {
            pipe: self.pipe.clone(),
            end: self.end,
        }
    }
}

/// A pipe end to wait on (see [`PipeEnd::waiter`]).
pub struct Waiter {
    pipe: Arc<Pipe>,
    end: End,
}

impl Waiter {
    /// Waits until a read (or, for the write end, a write of `want` bytes) may make
    /// progress, or the other side closed; `EINTR` if the task is killed.
    pub fn wait(&self, want: usize) -> Result<(), Errno> {
        let pipe = &self.pipe;
        let end = self.end;
        pipe.queue.wait_until(|| {
            let s = pipe.state.lock();
            match end {
                End::Read => !s.data.is_empty() || s.writers == 0,
                End::Write => {
                    let room = PIPE_CAPACITY - s.data.len();
                    s.readers == 0 || room >= want.clamp(1, PIPE_BUF)
                }
            }
        })
    }
}

impl super::File for PipeEnd {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Errno> {
        PipeEnd::read(self, buf)
    }

    fn write(&mut self, buf: &[u8]) -> Result<usize, Errno> {
        PipeEnd::write(self, buf)
    }

    fn poll(&self) -> u16 {
        PipeEnd::poll(self)
    }

    fn stat(&self) -> super::Stat {
        super::Stat {
            ino: self.pipe.ino,
            mode: super::S_IFIFO | 0o600,
            size: 0,
            rdev: 0,
            mtime: 0,
            dev: super::DEV_PIPE,
            ..Default::default()
        }
    }

    fn describe(&self, out: &mut dyn core::fmt::Write) -> core::fmt::Result {
        write!(out, "pipe:[{}]", self.pipe.ino)
    }

    fn waiter(&self) -> Option<Waiter> {
        Some(PipeEnd::waiter(self))
    }
}
