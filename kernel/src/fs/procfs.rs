//! `/proc`: memory counters as text, generated when a file is opened (`maps`: as it is
//! read), in the format Linux uses (so the same parsers read both).
//!
//! | file | contents |
//! |---|---|
//! | `/proc/meminfo` | `MemTotal`, `MemFree`, `MemAvailable`, frames by use, slab and page tables |
//! | `/proc/self/status`, `/proc/PID/status` | name, pid, parent, `VmSize`, `VmRSS`, fault counters |
//! | `/proc/vmstat` | global fault, copy-on-write and TLB counters |
//! | `/proc/slabinfo` | per heap size class: objects in use, slab capacity, slabs; then pagoda's own columns: cached objects, peaks |
//! | `/proc/buddyinfo` | free blocks of each order (0 to 18) on the buddy lists |
//! | `/proc/sys/fs/file-nr` | open file descriptions, 0, and `fs.file-max` |
//! | `/proc/self/maps`, `/proc/PID/maps` | the process's memory areas |

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

use pagoda_mm::addr::{PAGE_SIZE, VirtAddr};
use pagoda_mm::frame::FrameUse;
use pagoda_mm::vm::{AreaInfo, AreaKind, Prot};

use super::{File, FileRef, S_IFREG, Stat, copy_at};
use crate::errno::Errno;
use crate::proc::{self, Pid, Process};

/// An upper bound of the text of a file generated whole (`slabinfo`, the longest, has a
/// line of under 200 bytes per heap size class).
const GENERATED_MAX: usize = 8 * PAGE_SIZE;

/// The target of the magic link `/proc/self/exe` or `/proc/PID/exe` when `path` is one:
/// the path of the program the process runs (`ENOENT` for a process that does not
/// exist); `None` for any other path.
pub fn exe_link(path: &str) -> Result<Option<String>, Errno> {
    let Some(who) = path
        .strip_prefix("/proc/")
        .and_then(|rest| rest.strip_suffix("/exe"))
    else {
        return Ok(None);
    };
    let p = process(who)?;
    let inner = p.group.lock();
    super::concat(&[&inner.exe]).map(Some)
}

/// The process `who` names: `self` or a pid (`ENOENT` if there is none).
fn process(who: &str) -> Result<alloc::sync::Arc<Process>, Errno> {
    if who == "self" {
        let me = proc::current();
        return Ok(proc::find(me.tgid).unwrap_or(me));
    }
    let pid: Pid = who.parse().map_err(|_| Errno::ENOENT)?;
    proc::find(pid).ok_or(Errno::ENOENT)
}

/// Kilobytes in `frames` 4 KiB frames.
fn kb(frames: usize) -> usize {
    frames * 4
}

/// The metadata of the `/proc` file at `path` (absolute, normalised), checked as [`open`]
/// checks it but without opening it; `None` if `path` is not a `/proc` file.
pub fn stat(path: &str) -> Result<Option<Stat>, Errno> {
    if let Some(who) = path
        .strip_prefix("/proc/")
        .and_then(|rest| rest.strip_suffix("/maps"))
    {
        if who != "self" {
            let pid = who.parse().map_err(|_| Errno::ENOENT)?;
            proc::find(pid).ok_or(Errno::ENOENT)?;
        }
        return Ok(Some(PROC_STAT));
    }
    Ok(generate(path)?.map(|_| PROC_STAT))
}

/// Opens the `/proc` file at `path` (absolute, normalised); `None` if `path` is not a
/// `/proc` file. Most files are generated whole when opened (their size does not depend
/// on what a user program does); `maps`, whose size grows with the number of areas, is
/// generated a page at a time as it is read ([`MapsText`]).
///
/// A `/proc` file is a regular, read-only file: `flags` are checked as `openat` checks
/// them ([`super::check_open_mode`]) and the file is opened with them.
pub fn open(path: &str, flags: usize) -> Result<Option<FileRef>, Errno> {
    if let Some(who) = path
        .strip_prefix("/proc/")
        .and_then(|rest| rest.strip_suffix("/maps"))
    {
        let pid = if who == "self" {
            proc::current().tgid
        } else {
            let pid = who.parse().map_err(|_| Errno::ENOENT)?;
            proc::find(pid).ok_or(Errno::ENOENT)?.pid
        };
        let file = MapsFile {
            text: MapsText::new(pid),
            pos: 0,
        };
        super::check_open_mode(false, flags)?;
        return super::open(file, flags).map(Some);
    }
    let Some(data) = generate(path)? else {
        return Ok(None);
    };
    super::check_open_mode(false, flags)?;
    super::open(GeneratedFile { data, pos: 0 }, flags).map(Some)
}

/// The contents of the `/proc` file at `path` (absolute, normalised), `None` if `path`
/// is not a generated file.
fn generate(path: &str) -> Result<Option<Vec<u8>>, Errno> {
    let Some(rest) = path.strip_prefix("/proc/") else {
        return Ok(None);
    };
    // The text comes from the kernel heap, infallibly: only while memory is not down to
    // the reserve.
    if !crate::memory::frames::user_may_take(GENERATED_MAX) {
        return Err(Errno::ENOMEM);
    }
    let mut out = String::new();
    match rest {
        "meminfo" => meminfo(&mut out),
        "vmstat" => vmstat(&mut out),
        "slabinfo" => slabinfo(&mut out),
        "buddyinfo" => buddyinfo(&mut out),
        "sys/fs/file-nr" => {
            // Linux's three columns: allocated, free (always 0 since 2.6), maximum.
            let (open, max) = crate::fs::open_files();
            writeln!(out, "{open}\t0\t{max}")
        }
        _ => {
            let Some((who, file)) = rest.split_once('/') else {
                return Ok(None);
            };
            let p = if who == "self" {
                let me = proc::current();
                proc::find(me.tgid).unwrap_or(me)
            } else {
                let pid = who.parse().map_err(|_| Errno::ENOENT)?;
                proc::find(pid).ok_or(Errno::ENOENT)?
            };
            match file {
                "status" => status(&mut out, &p),
                _ => return Err(Errno::ENOENT),
            }
        }
    }
    .map_err(|_| Errno::ENOMEM)?;
    Ok(Some(out.into_bytes()))
}

fn meminfo(out: &mut String) -> core::fmt::Result {
    // This hart's heap caches, every hart's pooled (zeroed, unused) table pages and the
    // pooled process stacks are memory the kernel can give back at once: they are
    // returned first, so MemFree depends neither on which hart last freed what nor on
    // how many processes once lived at the same time.
    crate::memory::heap::trim();
    crate::memory::frames::drain_tables();
    crate::memory::kstack::drain_pool();
    let f = crate::memory::frames::stats();
    let heap = crate::memory::heap::stats();
    let line = |out: &mut String, name: &str, kb: usize| {
        writeln!(out, "{:<16}{:>8} kB", alloc::format!("{name}:"), kb)
    };
    line(out, "MemTotal", kb(f.total))?;
    line(out, "MemFree", kb(f.free))?;
    line(out, "MemAvailable", kb(f.free))?;
    line(out, "Buffers", 0)?;
    line(out, "Cached", 0)?;
    line(out, "SwapTotal", 0)?;
    line(out, "SwapFree", 0)?;
    line(out, "AnonPages", kb(f.used_for(FrameUse::UserAnon)))?;
    line(out, "Slab", kb(f.used_for(FrameUse::Slab)))?;
    line(
        out,
        "KernelStack",
        kb(f.used_for(FrameUse::KernelStack) + f.used_for(FrameUse::Kernel)),
    )?;
    line(out, "PageTables", kb(f.used_for(FrameUse::PageTable)))?;
    line(out, "HeapPages", kb(heap.pages_held))?;
    line(out, "FramesCached", kb(f.cached))?;
    line(out, "FramesPeak", kb(f.peak_used))
}

/// Linux's slabinfo 2.1 columns (tunables are 0, as with SLUB), one line per size class,
/// followed by pagoda's: objects cached in hart caches, peak objects out, peak pages.
fn slabinfo(out: &mut String) -> core::fmt::Result {
    use pagoda_mm::heap::{PAGE_CLASS, SLAB_OBJECTS, SLAB_ORDER};
    let heap = crate::memory::heap::stats();
    writeln!(out, "slabinfo - version: 2.1")?;
    writeln!(
        out,
        "# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail> : pagoda <cached_objs> <peak_objs> <peak_pages>"
    )?;
    for (c, s) in heap.classes.iter().enumerate() {
        // The page class has no slabs: each object is one page of its own.
        let (per_slab, pages) = if c == PAGE_CLASS {
            (1, 1)
        } else {
            (SLAB_OBJECTS[c], 1 << SLAB_ORDER[c])
        };
        let active = s.objects_in_use;
        writeln!(
            out,
            "{:<17} {:>6} {:>6} {:>6} {:>4} {:>4} : tunables {:>4} {:>4} {:>4} : slabdata {:>6} {:>6} {:>6} : pagoda {:>6} {:>6} {:>6}",
            alloc::format!("kmalloc-{}", s.object_size),
            active,
            s.slabs * per_slab,
            s.object_size,
            per_slab,
            pages,
            0,
            0,
            0,
            s.slabs,
            s.slabs,
            0,
            s.objects_cached,
            s.objects_peak,
            s.pages_peak,
        )?;
    }
    Ok(())
}

/// Free blocks on the buddy lists by order, as Linux prints them for one zone (pagoda's
/// orders go up to 18; frames in hart caches are not on the lists).
fn buddyinfo(out: &mut String) -> core::fmt::Result {
    let f = crate::memory::frames::stats();
    write!(out, "Node 0, zone   Normal ")?;
    for n in f.free_blocks {
        write!(out, "{n:>7}")?;
    }
    writeln!(out)
}

fn vmstat(out: &mut String) -> core::fmt::Result {
    let s = pagoda_mm::vm::global_stats();
    let t = crate::memory::tlb::STATS.snapshot();
    writeln!(out, "pgfault {}", s.minor_faults)?;
    writeln!(out, "zero_page_maps {}", s.zero_page_maps)?;
    writeln!(out, "zero_fills {}", s.zero_fills)?;
    writeln!(out, "file_reads {}", s.file_reads)?;
    writeln!(out, "cow_copies {}", s.cow_copies)?;
    writeln!(out, "cow_takeovers {}", s.cow_takeovers)?;
    writeln!(out, "zero_page_upgrades {}", s.zero_page_upgrades)?;
    writeln!(out, "spurious_faults {}", s.spurious_faults)?;
    writeln!(out, "stack_growths {}", s.stack_growths)?;
    writeln!(out, "forks {}", s.forks)?;
    writeln!(out, "tlb_pages {}", t.pages)?;
    writeln!(out, "tlb_asid {}", t.asid)?;
    writeln!(out, "tlb_all {}", t.all)?;
    writeln!(out, "tlb_remote_requests {}", t.remote_requests)
}

fn status(out: &mut String, p: &Process) -> core::fmt::Result {
    let (parent, name) = {
        let inner = p.group.lock();
        (
            inner.parent,
            String::from(inner.exe.rsplit('/').next().unwrap_or("")),
        )
    };
    let mm = p.mm();
    let (size, rss, stats) = match &*mm.lock() {
        Some(vm) => {
            let size: usize = vm.areas().map(|a| a.range.end.0 - a.range.start.0).sum();
            (size / 4096, vm.rss_pages(), vm.stats())
        }
        None => (0, 0, Default::default()),
    };
    let state = if p.group.lock().exit.is_some() {
        "Z (zombie)"
    } else {
        "R (running)"
    };
    writeln!(out, "Name:\t{name}")?;
    writeln!(out, "State:\t{state}")?;
    writeln!(out, "Tgid:\t{}", p.tgid)?;
    writeln!(out, "Pid:\t{}", p.pid)?;
    writeln!(out, "PPid:\t{parent}")?;
    writeln!(out, "Threads:\t{}", p.group.live())?;
    writeln!(out, "VmSize:\t{:>8} kB", kb(size))?;
    writeln!(out, "VmRSS:\t{:>8} kB", kb(rss))?;
    writeln!(out, "MinorFaults:\t{}", stats.minor_faults)?;
    writeln!(out, "CowCopies:\t{}", stats.cow_copies)?;
    writeln!(out, "CowTakeovers:\t{}", stats.cow_takeovers)?;
    writeln!(out, "ZeroPageMaps:\t{}", stats.zero_page_maps)
}

/// An open `/proc/PID/maps`: its text and the file position.
pub struct MapsFile {
    /// The text, made as it is read.
    text: MapsText,
    /// Read position.
    pos: usize,
}

impl File for MapsFile {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Errno> {
        let n = self.text.read_at(self.pos, buf)?;
        self.pos += n;
        Ok(n)
    }

    fn read_at(&mut self, offset: usize, buf: &mut [u8]) -> Result<usize, Errno> {
        self.text.read_at(offset, buf)
    }

    fn lseek(&mut self, offset: i64, whence: u32) -> Result<usize, Errno> {
        // Its length is known only once read to the end: no SEEK_END (as seq_file).
        if whence == 2 {
            return Err(Errno::EINVAL);
        }
        super::seek(&mut self.pos, 0, offset, whence)
    }

    fn stat(&self) -> Stat {
        PROC_STAT
    }

    fn heap_bytes(&self) -> usize {
        PAGE_SIZE
    }
}

/// What `fstat` says of every `/proc` file: a read-only regular file of size 0.
const PROC_STAT: Stat = Stat {
    ino: 0,
    mode: S_IFREG | 0o444,
    size: 0,
    rdev: 0,
    mtime: 0,
};

/// A `/proc` file whose contents were generated when it was opened.
pub struct GeneratedFile {
    data: Vec<u8>,
    pos: usize,
}

impl File for GeneratedFile {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Errno> {
        let n = copy_at(&self.data, self.pos, buf);
        self.pos += n;
        Ok(n)
    }

    fn read_at(&mut self, offset: usize, buf: &mut [u8]) -> Result<usize, Errno> {
        Ok(copy_at(&self.data, offset, buf))
    }

    fn lseek(&mut self, offset: i64, whence: u32) -> Result<usize, Errno> {
        super::seek(&mut self.pos, self.data.len(), offset, whence)
    }

    fn stat(&self) -> Stat {
        PROC_STAT
    }

    fn heap_bytes(&self) -> usize {
        self.data.capacity()
    }
}

/// The text of `/proc/PID/maps`: it is made a window of about a page at a time,
/// from the areas that follow the previous window (Linux's `seq_file`), so an open file
/// holds one window whatever the number of areas (a process may have 65,530), and
/// reading it whole costs time linear in the areas. A read before the current window
/// starts over from the first area. The process is named by pid: a file left open does
/// not keep a dead process alive, and reads nothing once it is gone.
pub struct MapsText {
    pid: Pid,
    /// Lines of the areas in `[.., next_area)` not yet read past.
    window: Vec<u8>,
    /// File offset of `window[0]`.
    window_at: usize,
    /// Where the areas of the next window start.
    next_area: usize,
}

impl MapsText {
    fn new(pid: Pid) -> MapsText {
        MapsText {
            pid,
            window: Vec::new(),
            window_at: 0,
            next_area: 0,
        }
    }

    /// Reads at file offset `offset`.
    pub fn read_at(&mut self, offset: usize, buf: &mut [u8]) -> Result<usize, Errno> {
        if offset < self.window_at {
            *self = MapsText::new(self.pid);
        }
        while offset >= self.window_at + self.window.len() {
            self.window_at += self.window.len();
            self.window.clear();
            if !self.fill()? {
                return Ok(0);
            }
        }
        let rest = &self.window[offset - self.window_at..];
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        Ok(n)
    }

    /// Makes the next window: lines of the areas from `next_area` until a page is
    /// full. `false` at the end (no area left, or the process is gone).
    fn fill(&mut self) -> Result<bool, Errno> {
        let Some(p) = proc::find(self.pid) else {
            return Ok(false);
        };
        let mm = p.mm();
        let vm = mm.lock();
        let Some(vm) = &*vm else { return Ok(false) };
        for a in vm.areas_from(VirtAddr(self.next_area)) {
            if self.window.len() >= PAGE_SIZE {
                break;
            }
            maps_line(&mut Fallible(&mut self.window), &a).map_err(|_| Errno::ENOMEM)?;
            self.next_area = a.range.end.0;
        }
        Ok(!self.window.is_empty())
    }
}

/// Text appended to a byte buffer with fallible growth (a failed reservation is a
/// formatting error, which the caller turns into `ENOMEM`).
struct Fallible<'a>(&'a mut Vec<u8>);

impl Write for Fallible<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.0.try_reserve(s.len()).map_err(|_| core::fmt::Error)?;
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// One line of `maps` for area `a`.
fn maps_line(out: &mut impl Write, a: &AreaInfo) -> core::fmt::Result {
    let bit = |on: bool, c: char| if on { c } else { '-' };
    let shared = matches!(a.kind, AreaKind::SharedAnon | AreaKind::SharedFile { .. });
    writeln!(
        out,
        "{:08x}-{:08x} {}{}{}{} {}",
        a.range.start.0,
        a.range.end.0,
        bit(a.prot.contains(Prot::READ), 'r'),
        bit(a.prot.contains(Prot::WRITE), 'w'),
        bit(a.prot.contains(Prot::EXEC), 'x'),
        if shared { 's' } else { 'p' },
        if a.grows_down { "[stack]" } else { "" },
    )
}
