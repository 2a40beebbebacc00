//! The console as a Linux terminal: one tty (`/dev/console`, `/dev/tty`, descriptors 0-2
//! of the first process) with a line discipline like Linux's `n_tty`.
//!
//! ```text
//!  UART ──► pull_input (timer ticks, reads, polls) ──► receive(byte)
//!                                │   ICRNL/IGNCR/INLCR, ISIG: ^C SIGINT, ^\ SIGQUIT,
//!                                │   ^Z SIGTSTP to the foreground process group
//!                ICANON ─────────┤──────────── raw
//!                  line: erase (VERASE), kill (VKILL),   │ each byte to the
//!                  word erase (VWERASE), ^D (VEOF),      │ read queue
//!                  newline ends the line ──► read queue  │
//!                                ▼
//!                    read(): a line at a time (canonical) or what is there (raw);
//!                    echo of what was typed (ECHO, ECHOE, ECHOK, ECHOCTL, ECHONL)
//!  write() ──► OPOST/ONLCR: "\n" -> "\r\n" ──► UART
//! ```
//!
//! Input is pulled from the UART on every timer tick ([`pull_input`], called by the
//! scheduler), so `^C` reaches a foreground program that never reads; the signals are
//! sent from there only (a read or a poll that takes input may hold locks that sending
//! needs, so they wait for the tick, at most 10 ms). The queues are
//! fixed arrays of [`TTY_BUF`] bytes (Linux's `N_TTY_BUF_SIZE`): what is typed beyond
//! that is dropped, as Linux drops it. Settings are the kernel's `struct termios`
//! (`TCGETS`/`TCSETS*`), the window size (`TIOCGWINSZ`/`TIOCSWINSZ`), the foreground
//! process group and the session (`TIOCGPGRP`/`TIOCSPGRP`/`TIOCSCTTY`/`TIOCGSID`).
//!
//! A read by a background group of the terminal's session sends it `SIGTTIN` (Linux's
//! job control). Not done: no `SIGTTOU` for background writes (`TOSTOP`); `VMIN`/`VTIME`
//! are honoured only as "wait for one byte" (`VMIN` > 0) or "do not wait" (`VMIN` = 0);
//! no flow control (`IXON` is accepted and
//! ignored); no hang-up when the session leader exits.

use spin::Mutex;

use super::{File, FileRef, S_IFCHR, Stat, poll};
use crate::errno::Errno;
use crate::proc::{self, Pid};
use crate::syscall::uaccess::{copy_from_user, copy_to_user};

/// Bytes each input queue holds (Linux's `N_TTY_BUF_SIZE`).
pub const TTY_BUF: usize = 4096;
/// Lines the read queue remembers the ends of (a canonical read returns one at a time).
const MAX_LINES: usize = 256;
/// Control characters of `struct termios` (the kernel's `NCCS` on riscv64).
const NCCS: usize = 19;
/// Bytes of the kernel's `struct termios`: four flag words, `c_line`, `c_cc`.
const TERMIOS_SIZE: usize = 16 + 1 + NCCS;

// `c_cc` indices.
const VINTR: usize = 0;
const VQUIT: usize = 1;
const VERASE: usize = 2;
const VKILL: usize = 3;
const VEOF: usize = 4;
const VMIN: usize = 6;
const VSTART: usize = 8;
const VSTOP: usize = 9;
const VSUSP: usize = 10;
const VEOL: usize = 11;
const VREPRINT: usize = 12;
const VDISCARD: usize = 13;
const VWERASE: usize = 14;
const VLNEXT: usize = 15;
const VEOL2: usize = 16;

// `c_iflag` bits.
const ISTRIP: u32 = 0o40;
const INLCR: u32 = 0o100;
const IGNCR: u32 = 0o200;
const ICRNL: u32 = 0o400;
const IXON: u32 = 0o2000;
// `c_oflag` bits.
const OPOST: u32 = 0o1;
const ONLCR: u32 = 0o4;
// `c_cflag`: 38400 baud, 8 bits, receiver on, hang up on close.
const CFLAG_DEFAULT: u32 = 0o17 | 0o60 | 0o200 | 0o2000;
// `c_lflag` bits.
const ISIG: u32 = 0o1;
const ICANON: u32 = 0o2;
const ECHO: u32 = 0o10;
const ECHOE: u32 = 0o20;
const ECHOK: u32 = 0o40;
const ECHONL: u32 = 0o100;
const NOFLSH: u32 = 0o200;
const ECHOCTL: u32 = 0o1000;
const ECHOKE: u32 = 0o4000;
const IEXTEN: u32 = 0o100000;

/// The DEL character (`VERASE`'s default).
const DEL: u8 = 0x7f;

/// `ioctl` requests of a terminal.
const TCGETS: usize = 0x5401;
const TCSETS: usize = 0x5402;
const TCSETSW: usize = 0x5403;
const TCSETSF: usize = 0x5404;
const TCXONC: usize = 0x540A;
const TCFLSH: usize = 0x540B;
const TIOCSCTTY: usize = 0x540E;
const TIOCGPGRP: usize = 0x540F;
const TIOCSPGRP: usize = 0x5410;
const TIOCOUTQ: usize = 0x5411;
const TIOCGWINSZ: usize = 0x5413;
const TIOCSWINSZ: usize = 0x5414;
const FIONREAD: usize = 0x541B;
const TIOCNOTTY: usize = 0x5422;
const TIOCGSID: usize = 0x5429;
/// `TCFLSH` argument: flush the input queue (or both: 2).
const TCIFLUSH: usize = 0;
const TCIOFLUSH: usize = 2;

/// The kernel's `struct termios`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Termios {
    iflag: u32,
    oflag: u32,
    cflag: u32,
    lflag: u32,
    line: u8,
    cc: [u8; NCCS],
}

impl Termios {
    /// Linux's `tty_std_termios`: canonical, echoing, signals on, `\r` read as `\n`,
    /// `\n` written as `\r\n`.
    const fn standard() -> Termios {
        let mut cc = [0u8; NCCS];
        cc[VINTR] = 0x03;
        cc[VQUIT] = 0x1c;
        cc[VERASE] = DEL;
        cc[VKILL] = 0x15;
        cc[VEOF] = 0x04;
        cc[VMIN] = 1;
        cc[VSTART] = 0x11;
        cc[VSTOP] = 0x13;
        cc[VSUSP] = 0x1a;
        cc[VREPRINT] = 0x12;
        cc[VDISCARD] = 0x0f;
        cc[VWERASE] = 0x17;
        cc[VLNEXT] = 0x16;
        Termios {
            iflag: ICRNL | IXON,
            oflag: OPOST | ONLCR,
            cflag: CFLAG_DEFAULT,
            lflag: ISIG | ICANON | ECHO | ECHOE | ECHOK | ECHOCTL | ECHOKE | IEXTEN,
            line: 0,
            cc,
        }
    }

    fn to_bytes(self) -> [u8; TERMIOS_SIZE] {
        let mut b = [0u8; TERMIOS_SIZE];
        for (i, w) in [self.iflag, self.oflag, self.cflag, self.lflag]
            .iter()
            .enumerate()
        {
            b[i * 4..i * 4 + 4].copy_from_slice(&w.to_le_bytes());
        }
        b[16] = self.line;
        b[17..].copy_from_slice(&self.cc);
        b
    }

    fn from_bytes(b: &[u8; TERMIOS_SIZE]) -> Termios {
        let word =
            |i: usize| u32::from_le_bytes([b[i * 4], b[i * 4 + 1], b[i * 4 + 2], b[i * 4 + 3]]);
        let mut cc = [0u8; NCCS];
        cc.copy_from_slice(&b[17..]);
        Termios {
            iflag: word(0),
            oflag: word(1),
            cflag: word(2),
            lflag: word(3),
            line: b[16],
            cc,
        }
    }

    /// Whether `c` is the control character `index` (a `c_cc` of 0 is disabled).
    fn is(&self, index: usize, c: u8) -> bool {
        self.cc[index] != 0 && self.cc[index] == c
    }
}

/// A byte queue of fixed capacity.
struct Ring<const N: usize, T: Copy> {
    items: [T; N],
    head: usize,
    len: usize,
}

impl<const N: usize, T: Copy> Ring<N, T> {
    const fn new(zero: T) -> Self {
        Ring {
            items: [zero; N],
            head: 0,
            len: 0,
        }
    }

    /// Appends `x`; `false` (and nothing done) when full.
    fn push(&mut self, x: T) -> bool {
        if self.len == N {
            return false;
        }
        self.items[(self.head + self.len) % N] = x;
        self.len += 1;
        true
    }

    fn pop(&mut self) -> Option<T> {
        if self.len == 0 {
            return None;
        }
        let x = self.items[self.head];
        self.head = (self.head + 1) % N;
        self.len -= 1;
        Some(x)
    }

    fn front_mut(&mut self) -> Option<&mut T> {
        (self.len > 0).then(|| &mut self.items[self.head])
    }

    fn clear(&mut self) {
        self.head = 0;
        self.len = 0;
    }
}

/// The terminal: settings, the line being edited, what is ready to read, and the job
/// control state.
struct Tty {
    termios: Termios,
    /// Rows and columns (`struct winsize`); 0 when unknown.
    winsize: (u16, u16),
    /// The line being typed (canonical mode).
    line: [u8; TTY_BUF],
    line_len: usize,
    /// Bytes ready for `read`.
    ready: Ring<TTY_BUF, u8>,
    /// In canonical mode, the length of each complete line in `ready`, oldest first
    /// (0: an end of file typed on an empty line).
    lines: Ring<MAX_LINES, usize>,
    /// The session it is the controlling terminal of (0: none).
    sid: Pid,
    /// The foreground process group.
    pgrp: Pid,
    /// The next byte is taken literally (`VLNEXT`).
    literal: bool,
    /// Signals typed (`^C`, `^\`, `^Z`) not sent yet, and the group they are for: they
    /// are sent from the timer tick ([`pull_input`]), never from a read or a poll, whose
    /// callers may hold the locks sending takes (`ppoll` holds its process's).
    raised: u64,
    raised_pgrp: Pid,
    /// A background group that read the terminal, owed `SIGTTIN` (sent at the tick too).
    ttin_pgrp: Pid,
}

/// The one terminal. At boot it is the controlling terminal of init's session, with
/// init's group in the foreground (as if init had opened it without `O_NOCTTY`).
static TTY: Mutex<Tty> = Mutex::new(Tty {
    termios: Termios::standard(),
    winsize: (24, 80),
    line: [0; TTY_BUF],
    line_len: 0,
    ready: Ring::new(0),
    lines: Ring::new(0),
    sid: proc::INIT_PID,
    pgrp: proc::INIT_PID,
    literal: false,
    raised: 0,
    raised_pgrp: 0,
    ttin_pgrp: 0,
});

/// Pulls what was typed through the line discipline and sends the signals it raised to
/// the foreground group (called on timer ticks, where the hart holds no lock: sending
/// takes the task table's and every process's lock).
pub fn pull_input() {
    take_input();
    let (raised, pgrp, ttin) = {
        let Some(mut tty) = TTY.try_lock() else {
            return;
        };
        let ttin = core::mem::take(&mut tty.ttin_pgrp);
        (core::mem::take(&mut tty.raised), tty.raised_pgrp, ttin)
    };
    for sig in 1..=64 {
        if raised & proc::signal::bit(sig) != 0 {
            proc::signal::kill_group_from_kernel(pgrp, sig);
        }
    }
    if ttin != 0 {
        proc::signal::kill_group_from_kernel(ttin, SIGTTIN);
    }
}

/// Takes what was typed from the UART through the line discipline (also before each
/// read or poll of the console); signals it raises wait for the next tick.
fn take_input() {
    if !crate::console::has_input() {
        return;
    }
    let Some(mut tty) = TTY.try_lock() else {
        return;
    };
    while let Some(b) = crate::console::get_byte() {
        if let Some(sig) = tty.receive(b) {
            tty.raised |= proc::signal::bit(sig);
            tty.raised_pgrp = tty.pgrp;
        }
    }
}

impl Tty {
    /// Echoes `c` as typed: control characters as `^X` with `ECHOCTL` (not tab and
    /// newline).
    fn echo(&self, c: u8) {
        let lflag = self.termios.lflag;
        if lflag & ECHO == 0 {
            if c == b'\n' && lflag & ECHONL != 0 && lflag & ICANON != 0 {
                self.output(b"\n");
            }
            return;
        }
        if lflag & ECHOCTL != 0 && is_control(c) {
            self.output(&[b'^', c ^ 0x40]);
        } else {
            self.output(&[c]);
        }
    }

    /// Writes `bytes` to the UART with output processing.
    fn output(&self, bytes: &[u8]) {
        let o = self.termios.oflag;
        crate::console::write_raw(bytes, o & OPOST != 0 && o & ONLCR != 0);
    }

    /// One byte typed; returns the signal it raises for the foreground group.
    fn receive(&mut self, mut c: u8) -> Option<i32> {
        let t = self.termios;
        if t.iflag & ISTRIP != 0 {
            c &= 0x7f;
        }
        if core::mem::take(&mut self.literal) {
            self.take(c);
            return None;
        }
        if c == b'\r' {
            if t.iflag & IGNCR != 0 {
                return None;
            }
            if t.iflag & ICRNL != 0 {
                c = b'\n';
            }
        } else if c == b'\n' && t.iflag & INLCR != 0 {
            c = b'\r';
        }
        if t.lflag & ISIG != 0 {
            let sig = if t.is(VINTR, c) {
                Some(proc::signal::SIGINT)
            } else if t.is(VQUIT, c) {
                Some(proc::signal::SIGQUIT)
            } else if t.is(VSUSP, c) {
                Some(proc::signal::SIGTSTP)
            } else {
                None
            };
            if let Some(sig) = sig {
                if t.lflag & NOFLSH == 0 {
                    self.flush_input();
                }
                self.echo(c);
                return Some(sig);
            }
        }
        if t.lflag & IEXTEN != 0 && t.is(VLNEXT, c) {
            self.literal = true;
            return None;
        }
        if t.lflag & ICANON == 0 {
            if self.ready.push(c) {
                self.echo(c);
            }
            return None;
        }
        self.edit(c);
        None
    }

    /// Canonical mode: one byte of the line being edited.
    fn edit(&mut self, c: u8) {
        let t = self.termios;
        if t.is(VERASE, c) {
            self.erase(1, t.lflag & ECHOE != 0);
        } else if t.is(VKILL, c) {
            if t.lflag & ECHOKE != 0 {
                self.erase(self.line_len, true);
            } else {
                self.erase(self.line_len, false);
                if t.lflag & ECHOK != 0 {
                    self.output(b"\n");
                }
            }
        } else if t.lflag & IEXTEN != 0 && t.is(VWERASE, c) {
            let l = &self.line[..self.line_len];
            let end = l.iter().rposition(|&b| b != b' ').map_or(0, |i| i + 1);
            let start = l[..end]
                .iter()
                .rposition(|&b| b == b' ')
                .map_or(0, |i| i + 1);
            self.erase(self.line_len - start, t.lflag & ECHOE != 0);
        } else if t.lflag & IEXTEN != 0 && t.is(VREPRINT, c) {
            self.echo(c);
            self.output(b"\n");
            for i in 0..self.line_len {
                self.echo(self.line[i]);
            }
        } else if t.is(VEOF, c) {
            self.finish_line();
        } else if c == b'\n' || t.is(VEOL, c) || t.is(VEOL2, c) {
            // Room is always kept for the line's end.
            self.line[self.line_len] = c;
            self.line_len += 1;
            self.echo(c);
            self.finish_line();
        } else {
            self.take(c);
        }
    }

    /// Adds `c` to the line (canonical) or the read queue (raw), echoing it; dropped
    /// when full.
    fn take(&mut self, c: u8) {
        if self.termios.lflag & ICANON == 0 {
            if self.ready.push(c) {
                self.echo(c);
            }
        } else if self.line_len < TTY_BUF - 1 {
            self.line[self.line_len] = c;
            self.line_len += 1;
            self.echo(c);
        }
    }

    /// Removes the last `n` bytes of the line, rubbing them out on the screen if `visual`
    /// (a control character echoed as `^X` takes two columns).
    fn erase(&mut self, n: usize, visual: bool) {
        for _ in 0..n.min(self.line_len) {
            self.line_len -= 1;
            let c = self.line[self.line_len];
            if self.termios.lflag & ECHO != 0 && visual {
                let cols = if self.termios.lflag & ECHOCTL != 0 && is_control(c) {
                    2
                } else {
                    1
                };
                for _ in 0..cols {
                    self.output(b"\x08 \x08");
                }
            }
        }
    }

    /// Moves the line being edited to the read queue as one line (also an empty one:
    /// end of file), unless the queue has no room for it.
    fn finish_line(&mut self) {
        let n = self.line_len;
        if TTY_BUF - self.ready.len >= n && self.lines.push(n) {
            for i in 0..n {
                self.ready.push(self.line[i]);
            }
        }
        self.line_len = 0;
    }

    /// Drops everything typed and not read.
    fn flush_input(&mut self) {
        self.ready.clear();
        self.lines.clear();
        self.line_len = 0;
    }

    /// Whether a read would return now (with data or an end of file).
    fn readable(&self) -> bool {
        if self.termios.lflag & ICANON != 0 {
            self.lines.len > 0
        } else {
            self.ready.len > 0 || self.termios.cc[VMIN] == 0
        }
    }

    /// Reads what is ready into `buf`: one line at most in canonical mode. `EAGAIN` when
    /// nothing is.
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Errno> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.termios.lflag & ICANON == 0 {
            let mut n = 0;
            while n < buf.len() {
                let Some(b) = self.ready.pop() else { break };
                buf[n] = b;
                n += 1;
            }
            return if n == 0 && self.termios.cc[VMIN] > 0 {
                Err(Errno::EAGAIN)
            } else {
                Ok(n)
            };
        }
        let Some(left) = self.lines.front_mut() else {
            return Err(Errno::EAGAIN);
        };
        let n = (*left).min(buf.len());
        *left -= n;
        let whole = *left == 0;
        for slot in buf.iter_mut().take(n) {
            *slot = self.ready.pop().unwrap_or(0);
        }
        if whole {
            self.lines.pop();
        }
        Ok(n)
    }

    /// Bytes a read could return now (`FIONREAD`).
    fn available(&self) -> usize {
        self.ready.len
    }

    /// New settings; a switch between canonical and raw keeps what was typed: the
    /// line being edited becomes readable when leaving canonical mode, and raw bytes
    /// become one line when entering it.
    fn set_termios(&mut self, new: Termios) {
        let was_canon = self.termios.lflag & ICANON != 0;
        let canon = new.lflag & ICANON != 0;
        self.termios = new;
        if was_canon && !canon {
            for i in 0..self.line_len {
                self.ready.push(self.line[i]);
            }
            self.line_len = 0;
            self.lines.clear();
        } else if !was_canon && canon && self.ready.len > 0 {
            self.lines.clear();
            let _ = self.lines.push(self.ready.len);
        }
    }
}

/// Whether `c` is a control character that echoes as `^X` (not tab or newline).
fn is_control(c: u8) -> bool {
    (c < 0x20 && c != b'\t' && c != b'\n') || c == DEL
}

/// Opens the console (`/dev/console`, `/dev/tty`) with the status `flags`.
pub fn open(flags: usize) -> Result<FileRef, Errno> {
    super::open(Console, flags)
}

/// The console open as a file.
pub struct Console;

/// Background read of the terminal (Linux's `SIGTTIN`).
const SIGTTIN: i32 = 21;

/// A read of the terminal by a process of a background group of its session: Linux
/// sends the group `SIGTTIN` (its default action stops it; here at the next tick, as
/// the reader holds the file's lock: meanwhile the read waits, as for input, and ends
/// with `EINTR` when the signal comes); `EIO` if the reader
/// ignores or blocks `SIGTTIN`. `Ok` for a foreground reader, or one of another session.
fn background_read() -> Result<(), Errno> {
    let me = proc::current();
    let (pgid, sid, ignored) = {
        let inner = me.group.lock();
        let handler = inner.signals.actions[SIGTTIN as usize - 1].handler;
        (inner.pgid, inner.sid, handler == proc::signal::SIG_IGN)
    };
    let (tty_sid, fg) = {
        let tty = TTY.lock();
        (tty.sid, tty.pgrp)
    };
    if tty_sid == 0 || tty_sid != sid || fg == pgid {
        return Ok(());
    }
    let blocked =
        me.blocked.load(core::sync::atomic::Ordering::Acquire) & proc::signal::bit(SIGTTIN) != 0;
    if ignored || blocked {
        return Err(Errno::EIO);
    }
    // The reader waits (as for input) until the signal arrives and ends the wait.
    TTY.lock().ttin_pgrp = pgid;
    Err(Errno::EAGAIN)
}

impl File for Console {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Errno> {
        background_read()?;
        take_input();
        TTY.lock().read(buf)
    }

    fn write(&mut self, buf: &[u8]) -> Result<usize, Errno> {
        TTY.lock().output(buf);
        Ok(buf.len())
    }

    fn poll(&self) -> u16 {
        take_input();
        if TTY.lock().readable() {
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
            dev: super::DEV_DEV,
            ..Default::default()
        }
    }

    fn is_tty(&self) -> bool {
        true
    }

    fn describe(&self, out: &mut dyn core::fmt::Write) -> core::fmt::Result {
        out.write_str("/dev/console")
    }
}

/// The device number of the console as `/proc/PID/stat` encodes it (5:1).
const CONSOLE_TTY_NR: i32 = (5 << 8) | 1;

/// The controlling terminal of session `sid` and its foreground group, as
/// `/proc/PID/stat` gives them: `(0, -1)` for a session without one.
pub fn terminal_of(sid: Pid) -> (i32, i64) {
    let tty = TTY.lock();
    if sid != 0 && tty.sid == sid {
        (CONSOLE_TTY_NR, tty.pgrp as i64)
    } else {
        (0, -1)
    }
}

/// Reads a 32-bit integer argument of an `ioctl` at `arg`.
fn read_i32(arg: usize) -> Result<i32, Errno> {
    let mut b = [0u8; 4];
    copy_from_user(&mut b, arg)?;
    Ok(i32::from_le_bytes(b))
}

/// The terminal `ioctl`s on the console: `ENOTTY` for a request it does not know.
pub fn ioctl(request: usize, arg: usize) -> Result<usize, Errno> {
    match request {
        TCGETS => {
            let t = TTY.lock().termios;
            copy_to_user(arg, &t.to_bytes())?;
        }
        TCSETS | TCSETSW | TCSETSF => {
            let mut b = [0u8; TERMIOS_SIZE];
            copy_from_user(&mut b, arg)?;
            let mut tty = TTY.lock();
            if request == TCSETSF {
                tty.flush_input();
            }
            tty.set_termios(Termios::from_bytes(&b));
        }
        TIOCGWINSZ => {
            let (rows, cols) = TTY.lock().winsize;
            let mut ws = [0u8; 8];
            ws[0..2].copy_from_slice(&rows.to_le_bytes());
            ws[2..4].copy_from_slice(&cols.to_le_bytes());
            copy_to_user(arg, &ws)?;
        }
        TIOCSWINSZ => {
            let mut ws = [0u8; 8];
            copy_from_user(&mut ws, arg)?;
            TTY.lock().winsize = (
                u16::from_le_bytes([ws[0], ws[1]]),
                u16::from_le_bytes([ws[2], ws[3]]),
            );
        }
        TIOCGPGRP => {
            let pgrp = TTY.lock().pgrp as i32;
            copy_to_user(arg, &pgrp.to_le_bytes())?;
        }
        TIOCSPGRP => set_foreground(read_i32(arg)?)?,
        TIOCGSID => {
            let sid = TTY.lock().sid;
            if sid == 0 {
                return Err(Errno::ENOTTY);
            }
            copy_to_user(arg, &(sid as i32).to_le_bytes())?;
        }
        TIOCSCTTY => make_controlling(arg == 1)?,
        TIOCNOTTY => {
            let me = proc::current();
            let sid = me.group.lock().sid;
            let mut tty = TTY.lock();
            if tty.sid != sid {
                return Err(Errno::ENOTTY);
            }
            if me.tgid == sid {
                tty.sid = 0;
                tty.pgrp = 0;
            }
        }
        TCFLSH => match arg {
            TCIFLUSH | TCIOFLUSH => TTY.lock().flush_input(),
            1 => {}
            _ => return Err(Errno::EINVAL),
        },
        TCXONC => {}
        TIOCOUTQ => copy_to_user(arg, &0i32.to_le_bytes())?,
        FIONREAD => {
            take_input();
            let n = TTY.lock().available() as i32;
            copy_to_user(arg, &n.to_le_bytes())?;
        }
        _ => return Err(Errno::ENOTTY),
    }
    Ok(0)
}

/// `TIOCSPGRP`: makes `pgrp` the foreground group. `ENOTTY` unless the console is the
/// caller's controlling terminal, `EPERM` unless `pgrp` is a group of the caller's
/// session, `EINVAL` for a negative group.
fn set_foreground(pgrp: i32) -> Result<(), Errno> {
    let pgrp = usize::try_from(pgrp).map_err(|_| Errno::EINVAL)?;
    let sid = proc::current().group.lock().sid;
    if TTY.lock().sid != sid {
        return Err(Errno::ENOTTY);
    }
    let mut found = false;
    proc::for_each_process(|p| {
        let inner = p.group.lock();
        found |= inner.pgid == pgrp && inner.sid == sid && inner.exit.is_none();
    });
    if !found {
        return Err(Errno::EPERM);
    }
    TTY.lock().pgrp = pgrp;
    Ok(())
}

/// `TIOCSCTTY`: makes the console the controlling terminal of the caller's session,
/// with the caller's group in the foreground. The caller must lead its session
/// (`EPERM`); taking the terminal from another session needs `steal` (the caller is
/// root, as every pagoda process is).
fn make_controlling(steal: bool) -> Result<(), Errno> {
    let me = proc::current();
    let (sid, pgid) = {
        let inner = me.group.lock();
        (inner.sid, inner.pgid)
    };
    if sid != me.tgid {
        return Err(Errno::EPERM);
    }
    let mut tty = TTY.lock();
    if tty.sid == sid {
        return Ok(());
    }
    let owner_alive =
        tty.sid != 0 && proc::find(tty.sid).is_some_and(|p| p.group.lock().exit.is_none());
    if owner_alive && !steal {
        return Err(Errno::EPERM);
    }
    tty.sid = sid;
    tty.pgrp = pgid;
    Ok(())
}
