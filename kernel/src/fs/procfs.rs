//! `/proc`: processes and memory counters as text, generated when a file is opened
//! (`maps`: as it is read), in the format Linux uses (so the same parsers, `ps`, `top`,
//! `free`, `uptime`, read both). `/proc` and `/proc/PID` are directories that list what
//! is here; `/proc/self` names the caller's process.
//!
//! | file | contents |
//! |---|---|
//! | `/proc/meminfo` | `MemTotal`, `MemFree`, `MemAvailable`, swap, the replacement lists, locked pages (`Unevictable`, `Mlocked`), frames by use, slab and page tables |
//! | `/proc/swaps` | the swap area, its size and use |
//! | `/proc/stat` | time each hart ran tasks and idled (all of it as `user`: see below), `btime`, `processes`, `procs_running` |
//! | `/proc/uptime`, `/proc/loadavg` | time since boot and idle time; Linux's load averages (sampled every 5 s), runnable/total threads, last pid |
//! | `/proc/cpuinfo` | one paragraph per online hart: processor, hart id, MMU mode |
//! | `/proc/mounts` | the root (the initramfs, read-only), `/proc`, `/dev`, each tmpfs |
//! | `/proc/PID/stat`, `statm` | Linux's fields, in order (see [`pid_stat`] for those always 0 here) |
//! | `/proc/PID/cmdline`, `comm` | the arguments of `execve` (cut at 4 KiB), the command name |
//! | `/proc/PID/exe`, `cwd` | links to the program and the working directory |
//! | `/proc/PID/fd/N` | a link per open descriptor: the file's path, or `pipe:[N]` |
//! | `/proc/self/status`, `/proc/PID/status` | name, true state, pid, parent, ids, `VmSize`, `VmLck`, `VmRSS`, `VmSwap`, fault counters |
//! | `/proc/vmstat` | global fault, copy-on-write, swap, reclaim and TLB counters |
//! | `/proc/slabinfo` | per heap size class: objects in use, slab capacity, slabs; then pagoda's own columns: cached objects, peaks |
//! | `/proc/buddyinfo` | free blocks of each order (0 to 18) on the buddy lists |
//! | `/proc/sys/fs/file-nr` | open file descriptions, 0, and `fs.file-max` |
//! | `/proc/self/maps`, `/proc/PID/maps` | the process's memory areas |

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt::Write;

use pagoda_mm::addr::{PAGE_SIZE, PhysAddr, VirtAddr};
use pagoda_mm::frame::FrameUse;
use pagoda_mm::layout::HUGE_PAGE_SIZE;
use pagoda_mm::vm::{AreaInfo, AreaKind, Prot, VmFile};

use super::{DT_DIR, DT_LNK, DT_REG, DirEntry, File, FileRef, S_IFDIR, S_IFREG, Stat, copy_at};
use crate::errno::Errno;
use crate::proc::{self, Pid, Process};

/// An upper bound of the text of a file generated whole (`slabinfo`, the longest, has a
/// line of under 200 bytes per heap size class).
const GENERATED_MAX: usize = 8 * PAGE_SIZE;

/// The target of a magic link, `/proc/PID/exe` (the program the process runs) or
/// `/proc/PID/cwd` (its working directory), when `path` is one (`self` for the caller;
/// `ENOENT` for a process that does not exist); `None` for any other path.
pub fn exe_link(path: &str) -> Result<Option<String>, Errno> {
    let Some((who, link)) = path
        .strip_prefix("/proc/")
        .and_then(|rest| rest.split_once('/'))
    else {
        return Ok(None);
    };
    if let Some(fd) = link.strip_prefix("fd/") {
        let Some(file) = fd_file(who, fd)? else {
            return Ok(None);
        };
        let mut buf = [0u8; 256];
        let mut w = ByteWriter {
            buf: &mut buf,
            len: 0,
        };
        // A description longer than the buffer is cut.
        let _ = file.lock().describe(&mut w);
        let len = w.len;
        let text = core::str::from_utf8(&buf[..len]).unwrap_or("");
        return super::concat(&[text]).map(Some);
    }
    if link != "exe" && link != "cwd" {
        return Ok(None);
    }
    let p = process(who)?;
    let inner = p.group.lock();
    let target = if link == "exe" {
        &inner.exe
    } else {
        &inner.cwd
    };
    super::concat(&[target]).map(Some)
}

/// The open file behind `/proc/WHO/fd/FD` (`ENOENT` if the process or the descriptor
/// does not exist); `None` if `fd` is not a number.
fn fd_file(who: &str, fd: &str) -> Result<Option<FileRef>, Errno> {
    let Ok(fd) = fd.parse::<usize>() else {
        return Ok(None);
    };
    let p = process(who)?;
    let file = p.group.lock().fds.get(fd).map_err(|_| Errno::ENOENT)?;
    Ok(Some(file))
}

/// `(who, smaps)` when `path` is `/proc/WHO/maps` (`false`) or `/proc/WHO/smaps`
/// (`true`).
fn maps_path(path: &str) -> Option<(&str, bool)> {
    let (who, file) = path.strip_prefix("/proc/")?.split_once('/')?;
    match file {
        "maps" => Some((who, false)),
        "smaps" => Some((who, true)),
        _ => None,
    }
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
    if let Some(dir) = directory(path)? {
        return Ok(Some(dir.stat()));
    }
    // /proc/PID/fd/N, followed: the open file itself.
    if let Some((who, fd)) = path
        .strip_prefix("/proc/")
        .and_then(|rest| rest.split_once("/fd/"))
        && let Some(file) = fd_file(who, fd)?
    {
        return Ok(Some(file.lock().stat()));
    }
    if let Some((who, _)) = maps_path(path) {
        process(who)?;
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
    if let Some(dir) = directory(path)? {
        super::check_open_mode(true, flags)?;
        return super::open(dir, flags).map(Some);
    }
    if let Some((who, smaps)) = maps_path(path) {
        let pid = process(who)?.tgid;
        let file = MapsFile {
            text: MapsText::new(pid, smaps),
            pos: 0,
        };
        super::check_open_mode(false, flags)?;
        return super::open(file, flags).map(Some);
    }
    let Some(data) = generate(path)? else {
        return Ok(None);
    };
    // The one writable file: a process's `oom_score_adj`.
    let adj_of = match path.strip_suffix("/oom_score_adj") {
        Some(dir) => Some(process(dir.trim_start_matches("/proc/"))?.tgid),
        None => {
            super::check_open_mode(false, flags)?;
            None
        }
    };
    let mut label = [0u8; LABEL_MAX];
    let n = path.len().min(LABEL_MAX);
    label[..n].copy_from_slice(&path.as_bytes()[..n]);
    let file = GeneratedFile {
        data,
        pos: 0,
        label,
        label_len: n,
        adj_of,
    };
    super::open(file, flags).map(Some)
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
        "swaps" => swaps(&mut out),
        "stat" => proc_stat(&mut out),
        "uptime" => uptime(&mut out),
        "loadavg" => loadavg(&mut out),
        "cpuinfo" => cpuinfo(&mut out),
        "mounts" => mounts(&mut out),
        "sys/fs/file-max" => writeln!(out, "{}", crate::fs::open_files().1),
        "sys/kernel/ostype" => writeln!(out, "{}", crate::syscall::UTS_SYSNAME),
        "sys/kernel/hostname" => writeln!(out, "{}", crate::syscall::UTS_NODENAME),
        "sys/kernel/osrelease" => writeln!(out, "{}", crate::syscall::UTS_RELEASE),
        "sys/kernel/threads-max" => writeln!(out, "{}", proc::max_tasks()),
        "sys/vm/max_map_count" => writeln!(out, "{}", crate::memory::uspace::CONFIG.max_map_count),
        "sys/vm/mmap_min_addr" => writeln!(out, "{}", crate::memory::uspace::CONFIG.mmap_min_addr),
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
                // Links: looked up as such by the caller.
                "exe" | "cwd" => return Ok(None),
                "status" => status(&mut out, &p),
                "stat" => pid_stat(&mut out, &p),
                "statm" => statm(&mut out, &p),
                "comm" => {
                    let inner = p.group.lock();
                    writeln!(out, "{}", inner.comm())
                }
                "oom_score_adj" => writeln!(
                    out,
                    "{}",
                    p.group
                        .oom_score_adj
                        .load(core::sync::atomic::Ordering::Relaxed)
                ),
                "oom_score" => writeln!(out, "{}", proc::oom::oom_score(&p)),
                "cmdline" => {
                    let args = p.group.lock().cmdline.clone();
                    let args = args.as_deref().map_or(&[][..], |a| a.as_slice());
                    let mut v = Vec::new();
                    v.try_reserve_exact(args.len()).map_err(|_| Errno::ENOMEM)?;
                    v.extend_from_slice(args);
                    return Ok(Some(v));
                }
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
    // how many processes once lived at the same time. Idle harts are asked to give
    // back their heap caches too (they do so a moment later, not for this reading).
    crate::memory::heap::trim();
    crate::proc::sched::poke_idle_harts();
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
    // tmpfs pages are page cache, as on Linux (`Cached` and `Shmem`), not `AnonPages`.
    let shmem = super::tmpfs::shmem_pages() as usize;
    line(out, "Buffers", 0)?;
    line(out, "Cached", kb(shmem))?;
    let (swap_total, swap_free, swap_cached) = crate::memory::swap::totals();
    // Without swap no page is aged (the lists are kept only while swap is on): every
    // private page counts as inactive, where Linux puts a new anonymous page.
    // Huge pages are anonymous pages too (`AnonHugePages` is a part of `AnonPages`).
    let huge = f.used_for(FrameUse::UserHuge);
    let anon = (f.used_for(FrameUse::UserAnon) + huge).saturating_sub(shmem);
    let (active, inactive) = if crate::memory::reclaim::tracking() {
        crate::memory::reclaim::lengths()
    } else {
        (0, anon)
    };
    let mlocked = crate::memory::mlock::mlocked_pages();
    line(out, "SwapCached", kb(swap_cached as usize))?;
    line(out, "Active(anon)", kb(active))?;
    line(out, "Inactive(anon)", kb(inactive))?;
    // Locked pages are the only user pages reclaim will not take.
    line(out, "Unevictable", kb(mlocked))?;
    line(out, "Mlocked", kb(mlocked))?;
    line(out, "SwapTotal", kb(swap_total as usize))?;
    line(out, "SwapFree", kb(swap_free as usize))?;
    line(out, "AnonPages", kb(anon))?;
    line(out, "AnonHugePages", kb(huge))?;
    line(out, "Shmem", kb(shmem))?;
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

/// Linux's `/proc/swaps`: the one swap area (the virtio disk), sizes in kB.
fn swaps(out: &mut String) -> core::fmt::Result {
    writeln!(out, "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority")?;
    let (total, free, _) = crate::memory::swap::totals();
    if total > 0 {
        writeln!(
            out,
            "{:<40}partition\t{}\t\t{}\t\t-2",
            crate::fs::dev::DISK,
            kb(total as usize),
            kb((total - free) as usize)
        )?;
    }
    Ok(())
}

fn vmstat(out: &mut String) -> core::fmt::Result {
    use core::sync::atomic::Ordering::Relaxed;
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
    writeln!(out, "pgmajfault {}", s.major_faults)?;
    writeln!(out, "thp_fault_alloc {}", s.thp_fault_alloc)?;
    writeln!(out, "thp_fault_fallback {}", s.thp_fault_fallback)?;
    writeln!(
        out,
        "thp_split_page {}",
        crate::memory::uspace::THP_SPLIT_PAGE.load(Relaxed)
    )?;
    writeln!(out, "thp_split_pmd {}", s.thp_splits)?;
    writeln!(
        out,
        "thp_swpout_fallback {}",
        crate::memory::reclaim::THP_SWPOUT_FALLBACK.load(Relaxed)
    )?;
    // pagoda's own: leaf page tables fork shared, and copied later by one side.
    writeln!(out, "pgtable_share {}", s.tables_shared)?;
    writeln!(
        out,
        "pgtable_share_copy {}",
        crate::memory::frames::TABLES_COPIED.load(Relaxed)
    )?;
    writeln!(out, "pswpin {}", crate::memory::swap::PSWPIN.load(Relaxed))?;
    writeln!(
        out,
        "pswpout {}",
        crate::memory::swap::PSWPOUT.load(Relaxed)
    )?;
    writeln!(
        out,
        "pgscan {}",
        crate::memory::reclaim::PGSCAN.load(Relaxed)
    )?;
    writeln!(
        out,
        "pgsteal {}",
        crate::memory::reclaim::PGSTEAL.load(Relaxed)
    )?;
    writeln!(out, "oom_kill {}", proc::oom::OOM_KILLS.load(Relaxed))?;
    writeln!(out, "tlb_pages {}", t.pages)?;
    writeln!(out, "tlb_asid {}", t.asid)?;
    writeln!(out, "tlb_all {}", t.all)?;
    writeln!(out, "tlb_remote_requests {}", t.remote_requests)
}

/// The memory of a process's address space, in pages, and its fault counters.
#[derive(Default)]
struct MemoryOf {
    /// Pages of all its areas (`VmSize`).
    size: usize,
    /// Pages of its locked areas (`VmLck`).
    locked: usize,
    /// Resident pages (`VmRSS`).
    rss: usize,
    /// Pages in swap (`VmSwap`).
    swapped: usize,
    stats: pagoda_mm::vm::VmStats,
}

/// Pages mapped, locked, resident and in swap, and the fault counters, of `p`'s address
/// space.
fn memory_of(p: &Process) -> MemoryOf {
    let mm = p.mm();
    let vm = mm.lock();
    match &*vm {
        Some(vm) => {
            let size = vm.mapped_bytes();
            MemoryOf {
                size: size / PAGE_SIZE,
                locked: vm.locked_bytes() / PAGE_SIZE,
                rss: vm.rss_pages(),
                swapped: vm.swap_entries(),
                stats: vm.stats(),
            }
        }
        None => MemoryOf::default(),
    }
}

/// The word Linux prints after a state letter in `status`.
fn state_name(letter: char) -> &'static str {
    match letter {
        'R' => "running",
        'Z' => "zombie",
        'T' => "stopped",
        _ => "sleeping",
    }
}

fn status(out: &mut String, p: &Process) -> core::fmt::Result {
    let (parent, name) = {
        let inner = p.group.lock();
        (inner.parent, String::from(inner.comm()))
    };
    let MemoryOf {
        size,
        locked,
        rss,
        swapped,
        stats,
    } = memory_of(p);
    let state = proc::state_letter(p);
    writeln!(out, "Name:\t{name}")?;
    writeln!(out, "State:\t{state} ({})", state_name(state))?;
    writeln!(out, "Tgid:\t{}", p.tgid)?;
    writeln!(out, "Pid:\t{}", p.pid)?;
    writeln!(out, "PPid:\t{parent}")?;
    writeln!(out, "TracerPid:\t0")?;
    // Every process runs as root: real, effective, saved and file-system ids.
    writeln!(out, "Uid:\t0\t0\t0\t0")?;
    writeln!(out, "Gid:\t0\t0\t0\t0")?;
    writeln!(out, "Groups:\t")?;
    writeln!(out, "Threads:\t{}", p.group.live())?;
    writeln!(out, "VmSize:\t{:>8} kB", kb(size))?;
    writeln!(out, "VmLck:\t{:>8} kB", kb(locked))?;
    writeln!(out, "VmRSS:\t{:>8} kB", kb(rss))?;
    writeln!(out, "VmSwap:\t{:>8} kB", kb(swapped))?;
    writeln!(out, "MinorFaults:\t{}", stats.minor_faults)?;
    writeln!(out, "CowCopies:\t{}", stats.cow_copies)?;
    writeln!(out, "CowTakeovers:\t{}", stats.cow_takeovers)?;
    writeln!(out, "ZeroPageMaps:\t{}", stats.zero_page_maps)
}

/// Linux's `USER_HZ`: the clock ticks of `/proc/stat` and `/proc/PID/stat`.
const USER_HZ: u64 = 100;
/// Nanoseconds per `USER_HZ` tick.
const NS_PER_USER_TICK: u64 = 1_000_000_000 / USER_HZ;

/// `/proc/PID/stat`: Linux's first 44 fields, in order. Fields pagoda has no notion of
/// are 0, as Linux prints them when they do not apply: `flags`, `cminflt`, `majflt`,
/// `cmajflt` (no major faults: files are in memory), `stime`/`cstime` (the scheduler
/// does not split user from kernel time: all of it is in `utime`/`cutime`), `nice`,
/// `itrealvalue`, `startcode`..`kstkeip`, `wchan`, `nswap`, `cnswap`, `processor`,
/// `rt_priority`, `policy`, the delay and guest times. The fields after `cguest_time`
/// (the argument and environment addresses, the exit code) are left out.
fn pid_stat(out: &mut String, p: &Process) -> core::fmt::Result {
    let (ppid, pgid, sid, comm) = {
        let inner = p.group.lock();
        (
            inner.parent,
            inner.pgid,
            inner.sid,
            String::from(inner.comm()),
        )
    };
    let (tty, tpgid) = super::tty::terminal_of(sid);
    let MemoryOf {
        size, rss, stats, ..
    } = memory_of(p);
    let ticks = |ns: u64| ns / NS_PER_USER_TICK;
    let utime = ticks(p.group.cpu_ns.load(core::sync::atomic::Ordering::Relaxed));
    let cutime = ticks(
        p.group
            .children_cpu_ns
            .load(core::sync::atomic::Ordering::Relaxed),
    );
    let (pending, blocked) = (
        p.group.pending.load(core::sync::atomic::Ordering::Relaxed)
            | p.pending.load(core::sync::atomic::Ordering::Relaxed),
        p.blocked.load(core::sync::atomic::Ordering::Relaxed),
    );
    let (ignored, caught) = proc::signal::dispositions(p);
    write!(
        out,
        "{} ({comm}) {} {ppid} {pgid} {sid} {tty} {tpgid} 0 {} 0 0 0 {utime} 0 {cutime} 0 20 0 {} 0 {} {} {} {} ",
        p.pid,
        proc::state_letter(p),
        stats.minor_faults,
        p.group.live(),
        ticks(p.group.start_ns),
        size * PAGE_SIZE,
        rss,
        u64::MAX,
    )?;
    writeln!(
        out,
        "0 0 0 0 0 {pending} {blocked} {ignored} {caught} 0 0 0 17 0 0 0 0 0 0"
    )
}

/// `/proc/PID/statm`, in pages: size, resident, shared (0: resident pages are not told
/// apart by kind), text (executable file mappings), lib (0, as Linux), data (writable
/// private mappings and the stack), dirty (0, as Linux).
fn statm(out: &mut String, p: &Process) -> core::fmt::Result {
    let MemoryOf { size, rss, .. } = memory_of(p);
    let (mut text, mut data) = (0, 0);
    {
        let mm = p.mm();
        let vm = mm.lock();
        if let Some(vm) = &*vm {
            for a in vm.areas() {
                let pages = (a.range.end.0 - a.range.start.0) / PAGE_SIZE;
                let private = matches!(a.kind, AreaKind::Anon | AreaKind::File { .. });
                if a.prot.contains(Prot::EXEC) && matches!(a.kind, AreaKind::File { .. }) {
                    text += pages;
                } else if private && a.prot.contains(Prot::WRITE) {
                    data += pages;
                }
            }
        }
    }
    writeln!(out, "{size} {rss} 0 {text} 0 {data} 0")
}

/// `/proc/stat`: per hart, the time it ran tasks (as `user`: user and kernel time are
/// not told apart) and the time it idled, in `USER_HZ` ticks; then the boot time, the
/// tasks created since boot and those runnable now. Lines and columns pagoda has no
/// counter for (`intr`, `ctxt`, `softirq`, ...) are left out or 0.
fn proc_stat(out: &mut String) -> core::fmt::Result {
    let now = crate::timer::now_ns();
    let harts: Vec<usize> = crate::smp::online_mask().snapshot().iter().collect();
    let line = |out: &mut String, name: &str, busy: u64, idle: u64| {
        writeln!(
            out,
            "{name} {} 0 0 {} 0 0 0 0 0 0",
            busy / NS_PER_USER_TICK,
            idle / NS_PER_USER_TICK
        )
    };
    let busy = |h: usize| proc::sched::busy_ns(h).min(now);
    let total_busy: u64 = harts.iter().map(|&h| busy(h)).sum();
    let total_idle: u64 = harts.iter().map(|&h| now - busy(h)).sum();
    line(out, "cpu ", total_busy, total_idle)?;
    for (i, &h) in harts.iter().enumerate() {
        line(out, &alloc::format!("cpu{i}"), busy(h), now - busy(h))?;
    }
    let boot = (crate::drivers::rtc::realtime_ns().saturating_sub(now)) / 1_000_000_000;
    writeln!(out, "btime {boot}")?;
    writeln!(out, "processes {}", proc::created())?;
    writeln!(out, "procs_running {}", proc::runnable())?;
    writeln!(out, "procs_blocked 0")
}

/// Hundredths of a second as `S.CC`.
fn centis(out: &mut String, ns: u64) -> core::fmt::Result {
    let c = ns / 10_000_000;
    write!(out, "{}.{:02}", c / 100, c % 100)
}

/// `/proc/uptime`: seconds since boot, and the idle time of all harts together.
fn uptime(out: &mut String) -> core::fmt::Result {
    let now = crate::timer::now_ns();
    let idle: u64 = crate::smp::online_mask()
        .snapshot()
        .iter()
        .map(|h| now - proc::sched::busy_ns(h).min(now))
        .sum();
    centis(out, now)?;
    out.write_str(" ")?;
    centis(out, idle)?;
    writeln!(out)
}

/// `/proc/loadavg`: the 1-, 5- and 15-minute load averages, runnable/total threads, the
/// last pid given out.
fn loadavg(out: &mut String) -> core::fmt::Result {
    use proc::sched::LOAD_FIXED_1;
    for avg in proc::sched::load_average() {
        let frac = (avg & (LOAD_FIXED_1 - 1)) * 100 / LOAD_FIXED_1;
        write!(out, "{}.{frac:02} ", avg / LOAD_FIXED_1)?;
    }
    writeln!(
        out,
        "{}/{} {}",
        proc::runnable(),
        proc::count(),
        proc::last_pid()
    )
}

/// `/proc/cpuinfo` as Linux prints it on RISC-V, for the online harts (the ISA string
/// and the machine ids are left out: pagoda does not read them).
fn cpuinfo(out: &mut String) -> core::fmt::Result {
    for (i, h) in crate::smp::online_mask().snapshot().iter().enumerate() {
        writeln!(out, "processor\t: {i}\nhart\t\t: {h}\nmmu\t\t: sv39\n")?;
    }
    Ok(())
}

/// `/proc/mounts`: what pagoda has, where it is, with Linux's file-system types. The
/// root's source is named `initramfs`, not Linux's `rootfs`, which BusyBox's `df` skips
/// (on Linux a real root is mounted over it).
const MOUNTS: &str =
    "initramfs / rootfs ro 0 0\nproc /proc proc ro 0 0\ndev /dev devtmpfs rw 0 0\n";

/// `/proc/mounts`: [`MOUNTS`], then each tmpfs mount with its size cap.
fn mounts(out: &mut String) -> core::fmt::Result {
    out.write_str(MOUNTS)?;
    let mut result = Ok(());
    super::tmpfs::for_each_mount(|at, size| {
        if result.is_ok() {
            result = writeln!(out, "tmpfs {at} tmpfs rw,size={}k 0 0", size / 1024);
        }
    });
    result
}

/// `/proc` or `/proc/PID` (`self` too) when `path` is one of them (`ENOENT` for a pid
/// that does not exist); `None` for any other path.
fn directory(path: &str) -> Result<Option<ProcDir>, Errno> {
    if path == "/proc" || path == "/proc/" {
        return Ok(Some(ProcDir {
            table: None,
            pid: None,
            fds: false,
            pos: 0,
        }));
    }
    let Some(who) = path.strip_prefix("/proc/") else {
        return Ok(None);
    };
    let who = who.strip_suffix('/').unwrap_or(who);
    if let Some(&(name, entries)) = SYS_DIRS.iter().find(|(name, _)| *name == who) {
        return Ok(Some(ProcDir {
            table: Some((name, entries)),
            pid: None,
            fds: false,
            pos: 0,
        }));
    }
    let (who, fds) = match who.strip_suffix("/fd") {
        Some(who) => (who, true),
        None => (who, false),
    };
    if who.contains('/') || !(who == "self" || who.bytes().all(|b| b.is_ascii_digit())) {
        return Ok(None);
    }
    let pid = process(who)?.tgid;
    Ok(Some(ProcDir {
        table: None,
        pid: Some(pid),
        fds,
        pos: 0,
    }))
}

/// `/proc/sys` and its directories, with what each holds.
const SYS_DIRS: [(&str, &[(&str, u8)]); 4] = [
    ("sys", &[("fs", DT_DIR), ("kernel", DT_DIR), ("vm", DT_DIR)]),
    ("sys/fs", &[("file-max", DT_REG), ("file-nr", DT_REG)]),
    (
        "sys/kernel",
        &[
            ("hostname", DT_REG),
            ("osrelease", DT_REG),
            ("ostype", DT_REG),
            ("threads-max", DT_REG),
        ],
    ),
    (
        "sys/vm",
        &[("max_map_count", DT_REG), ("mmap_min_addr", DT_REG)],
    ),
];

/// The files of `/proc` itself, listed before the processes.
const ROOT_FILES: [(&str, u8); 12] = [
    ("self", DT_LNK),
    ("meminfo", DT_REG),
    ("swaps", DT_REG),
    ("stat", DT_REG),
    ("uptime", DT_REG),
    ("loadavg", DT_REG),
    ("cpuinfo", DT_REG),
    ("mounts", DT_REG),
    ("vmstat", DT_REG),
    ("slabinfo", DT_REG),
    ("buddyinfo", DT_REG),
    ("sys", DT_DIR),
];

/// The files of `/proc/PID`.
const PID_FILES: [(&str, u8); 12] = [
    ("stat", DT_REG),
    ("oom_score", DT_REG),
    ("oom_score_adj", DT_REG),
    ("statm", DT_REG),
    ("status", DT_REG),
    ("cmdline", DT_REG),
    ("comm", DT_REG),
    ("maps", DT_REG),
    ("smaps", DT_REG),
    ("exe", DT_LNK),
    ("cwd", DT_LNK),
    ("fd", DT_DIR),
];

/// Inode numbers of `/proc` entries (made from the pid and the entry), above the
/// archive's and `/dev`'s.
const PROC_INO: u64 = 0x3_0000_0000;

/// `/proc` or `/proc/PID` open as a directory. The position of `/proc` is an index into
/// its files, then [`ROOT_FILES`]`.len() + 2` plus the next pid to list, so that
/// processes coming and going between calls neither repeat nor hide the others.
struct ProcDir {
    /// A directory of [`SYS_DIRS`] (its path under `/proc`, its entries), else `None`.
    table: Option<(&'static str, &'static [(&'static str, u8)])>,
    pid: Option<Pid>,
    /// `/proc/PID/fd`: one link per open descriptor.
    fds: bool,
    pos: usize,
}

impl File for ProcDir {
    fn read(&mut self, _buf: &mut [u8]) -> Result<usize, Errno> {
        Err(Errno::EISDIR)
    }

    fn lseek(&mut self, offset: i64, whence: u32) -> Result<usize, Errno> {
        // The position is where the listing goes on (rewinddir seeks to 0).
        super::seek(&mut self.pos, 0, offset, whence)
    }

    fn stat(&self) -> Stat {
        Stat {
            ino: self.ino(),
            mode: S_IFDIR | 0o555,
            dev: super::DEV_PROC,
            ..Stat::default()
        }
    }

    fn read_dir(&mut self, emit: &mut dyn FnMut(&DirEntry<'_>) -> bool) -> Result<(), Errno> {
        let ino = self.ino();
        let files: &[(&str, u8)] = match (self.pid, self.fds) {
            _ if self.table.is_some() => self.table.map_or(&[], |(_, entries)| entries),
            (_, true) => &[],
            (Some(_), false) => &PID_FILES,
            (None, false) => &ROOT_FILES,
        };
        loop {
            let mut name_buf = [0u8; 20];
            let (name, kind, next): (&str, u8, usize) = match self.pos {
                0 => (".", DT_DIR, 1),
                1 => ("..", DT_DIR, 2),
                i if i < files.len() + 2 => (files[i - 2].0, files[i - 2].1, i + 1),
                i if self.pid.is_none() && self.table.is_none() => {
                    let base = files.len() + 2;
                    let Some(pid) = proc::next_process(i - base) else {
                        return Ok(());
                    };
                    let mut w = ByteWriter {
                        buf: &mut name_buf,
                        len: 0,
                    };
                    let _ = write!(w, "{pid}");
                    let len = w.len;
                    let name = core::str::from_utf8(&name_buf[..len]).unwrap_or("?");
                    (name, DT_DIR, base + pid + 1)
                }
                i if self.fds => {
                    let Some(fd) = self.pid.and_then(proc::find).and_then(|p| {
                        let inner = p.group.lock();
                        inner.fds.next_open(i - 2)
                    }) else {
                        return Ok(());
                    };
                    let mut w = ByteWriter {
                        buf: &mut name_buf,
                        len: 0,
                    };
                    let _ = write!(w, "{fd}");
                    let len = w.len;
                    let name = core::str::from_utf8(&name_buf[..len]).unwrap_or("?");
                    (name, DT_LNK, fd + 3)
                }
                _ => return Ok(()),
            };
            let entry = DirEntry {
                ino: ino + self.pos as u64,
                kind,
                name,
            };
            if !emit(&entry) {
                return Ok(());
            }
            self.pos = next;
        }
    }

    fn dir_path(&self) -> Result<String, Errno> {
        let mut s = String::new();
        s.try_reserve(LABEL_MAX).map_err(|_| Errno::ENOMEM)?;
        self.describe(&mut s).map_err(|_| Errno::ENOMEM)?;
        Ok(s)
    }

    fn describe(&self, out: &mut dyn Write) -> core::fmt::Result {
        out.write_str("/proc")?;
        if let Some((name, _)) = self.table {
            return write!(out, "/{name}");
        }
        if let Some(pid) = self.pid {
            write!(out, "/{pid}")?;
        }
        if self.fds {
            out.write_str("/fd")?;
        }
        Ok(())
    }
}

impl ProcDir {
    /// Its inode number, distinct for every directory (`find` tells loops by them):
    /// `/proc/PID` at `PROC_INO + 64 * PID` (`/proc` itself at pid 0), its `fd` at 63
    /// above, the `/proc/sys` directories just below `PROC_INO`.
    fn ino(&self) -> u64 {
        if let Some((name, _)) = self.table {
            let index = SYS_DIRS.iter().position(|(n, _)| *n == name).unwrap_or(0);
            return PROC_INO - 1 - index as u64;
        }
        PROC_INO + (self.pid.unwrap_or(0) as u64) * 64 + if self.fds { 63 } else { 0 }
    }
}

/// Formats into a fixed buffer (a pid's name in a listing, without allocating).
struct ByteWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl Write for ByteWriter<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let end = self.len + s.len();
        let dst = self.buf.get_mut(self.len..end).ok_or(core::fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
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

    fn describe(&self, out: &mut dyn Write) -> core::fmt::Result {
        let file = if self.text.smaps { "smaps" } else { "maps" };
        write!(out, "/proc/{}/{file}", self.text.pid)
    }
}

/// What `fstat` says of every `/proc` file: a read-only regular file of size 0.
const PROC_STAT: Stat = Stat {
    ino: 0,
    mode: S_IFREG | 0o444,
    size: 0,
    rdev: 0,
    mtime: 0,
    dev: super::DEV_PROC,
    nlink: None,
    uid: 0,
    gid: 0,
    blocks: None,
    times: None,
};

/// A `/proc` file whose contents were generated when it was opened.
pub struct GeneratedFile {
    data: Vec<u8>,
    pos: usize,
    /// Its path (the first [`LABEL_MAX`] bytes), for `/proc/PID/fd`.
    label: [u8; LABEL_MAX],
    label_len: usize,
    /// For `/proc/PID/oom_score_adj`: the process a write sets it for.
    adj_of: Option<proc::Pid>,
}

/// Bytes of a generated file's path kept for `/proc/PID/fd` (`/proc/4194304/status`
/// fits).
const LABEL_MAX: usize = 32;

impl File for GeneratedFile {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Errno> {
        let n = copy_at(&self.data, self.pos, buf);
        self.pos += n;
        Ok(n)
    }

    fn read_at(&mut self, offset: usize, buf: &mut [u8]) -> Result<usize, Errno> {
        Ok(copy_at(&self.data, offset, buf))
    }

    /// `oom_score_adj` only: a decimal number from -1000 to 1000 (surrounding blanks and
    /// a newline allowed, as Linux's `kstrtoint` after `strstrip`), else `EINVAL`; a
    /// process gone meanwhile is `ESRCH`.
    fn write(&mut self, buf: &[u8]) -> Result<usize, Errno> {
        let pid = self.adj_of.ok_or(Errno::EBADF)?;
        let text = core::str::from_utf8(buf).map_err(|_| Errno::EINVAL)?;
        let adj: i32 = text.trim().parse().map_err(|_| Errno::EINVAL)?;
        if !(proc::oom::OOM_SCORE_ADJ_MIN..=proc::oom::OOM_SCORE_ADJ_MAX).contains(&adj) {
            return Err(Errno::EINVAL);
        }
        let p = proc::find(pid).ok_or(Errno::ESRCH)?;
        p.group
            .oom_score_adj
            .store(adj, core::sync::atomic::Ordering::Relaxed);
        Ok(buf.len())
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

    fn describe(&self, out: &mut dyn Write) -> core::fmt::Result {
        out.write_str(core::str::from_utf8(&self.label[..self.label_len]).unwrap_or("/proc"))
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
    /// `smaps`: each area's line followed by its sizes.
    smaps: bool,
    /// Lines of the areas in `[.., next_area)` not yet read past.
    window: Vec<u8>,
    /// File offset of `window[0]`.
    window_at: usize,
    /// Where the areas of the next window start.
    next_area: usize,
    /// `smaps`: the area whose resident pages are being counted, across reads.
    counting: Option<Counting>,
}

/// An area of `smaps` whose resident pages are still being counted: a read looks up at
/// most [`RESIDENT_BUDGET`] pages (the kernel runs with interrupts masked, and the
/// caller holds the open file's lock, so it must neither run long nor yield). A read
/// that stops in the middle hands out one byte of the area's first lines, held back for
/// this, so that every read returns something; there are more such bytes than reads a
/// user half full of one area needs.
struct Counting {
    area: AreaInfo,
    /// The next page to look up.
    va: usize,
    rss: usize,
    /// Resident pages inside 2 MiB leaves (`AnonHugePages`).
    huge: usize,
    swap: usize,
    /// The area's `Size` to `MMUPageSize` lines, not yet in the window from `released`.
    held: Vec<u8>,
    released: usize,
}

impl MapsText {
    fn new(pid: Pid, smaps: bool) -> MapsText {
        MapsText {
            pid,
            smaps,
            counting: None,
            window: Vec::new(),
            window_at: 0,
            next_area: 0,
        }
    }

    /// Reads at file offset `offset`.
    pub fn read_at(&mut self, offset: usize, buf: &mut [u8]) -> Result<usize, Errno> {
        if offset < self.window_at {
            *self = MapsText::new(self.pid, self.smaps);
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
        let mut budget = RESIDENT_BUDGET;
        if let Some(c) = self.counting.as_mut() {
            if !count_resident(&mm, c, &mut budget) {
                if c.released + 1 < c.held.len() {
                    self.window.try_reserve(1).map_err(|_| Errno::ENOMEM)?;
                    self.window.push(c.held[c.released]);
                    c.released += 1;
                    return Ok(true);
                }
                // Out of held bytes (not with a 256 GiB user half): finish here.
                let mut unbounded = usize::MAX;
                count_resident(&mm, c, &mut unbounded);
            }
            if let Some(c) = self.counting.take() {
                self.finish(&c)?;
            }
        }
        // The areas of this window and the files they map, collected with the space
        // locked.
        let mut areas: Vec<(AreaInfo, Option<Arc<dyn VmFile>>)> = Vec::new();
        let brk = {
            let mut vm = mm.lock();
            let Some(vm) = vm.as_mut() else {
                return Ok(!self.window.is_empty());
            };
            // brk(0) is refused (below the initial break): it only reads the break.
            let brk = vm.brk(0).0;
            let mut bytes = 0;
            for a in vm.areas_from(VirtAddr(self.next_area)) {
                if bytes >= PAGE_SIZE || areas.try_reserve(1).is_err() {
                    break;
                }
                bytes += if self.smaps {
                    SMAPS_AREA_BYTES
                } else {
                    MAPS_LINE_BYTES
                };
                let file = vm.file_at(a.range.start);
                areas.push((a, file));
            }
            brk
        };
        for (a, file) in areas {
            maps_line(&mut Fallible(&mut self.window), &a, brk, file.as_deref())
                .map_err(|_| Errno::ENOMEM)?;
            self.next_area = a.range.end.0;
            if !self.smaps {
                continue;
            }
            let mut held = Vec::new();
            smaps_head(&mut Fallible(&mut held), &a).map_err(|_| Errno::ENOMEM)?;
            let mut c = Counting {
                va: a.range.start.0,
                area: a,
                rss: 0,
                huge: 0,
                swap: 0,
                held,
                released: 0,
            };
            if !count_resident(&mm, &mut c, &mut budget) {
                self.counting = Some(c);
                break;
            }
            self.finish(&c)?;
        }
        Ok(!self.window.is_empty())
    }

    /// Puts a counted area's held lines and its `Rss` and `Swap` in the window.
    fn finish(&mut self, c: &Counting) -> Result<(), Errno> {
        let mut out = Fallible(&mut self.window);
        out.write_str(core::str::from_utf8(&c.held[c.released..]).unwrap_or(""))
            .and_then(|()| writeln!(out, "Rss:            {:>8} kB", kb(c.rss)))
            .and_then(|()| writeln!(out, "AnonHugePages:  {:>8} kB", kb(c.huge)))
            .and_then(|()| writeln!(out, "Swap:           {:>8} kB", kb(c.swap)))
            .map_err(|_| Errno::ENOMEM)
    }
}

/// About the bytes of one `maps` line, and of one area in `smaps` (a window holds about
/// a page of either).
const MAPS_LINE_BYTES: usize = 80;
const SMAPS_AREA_BYTES: usize = 200;
/// Pages looked up with the address space locked at a time.
const RESIDENT_PIECE: usize = 512;
/// Most pages one read of `smaps` looks up (about 50 ms); see [`Counting`].
const RESIDENT_BUDGET: usize = 1 << 20;

/// Goes on counting the resident and swapped pages of `c`'s area, looking each page up
/// in the page table, [`RESIDENT_PIECE`] pages per lock of the space, until the area is
/// done (`true`) or `budget` pages were looked up (`false`). The shared zero page is not
/// counted, as in `VmRSS` and Linux's `smaps`.
fn count_resident(mm: &proc::Mm, c: &mut Counting, budget: &mut usize) -> bool {
    use pagoda_mm::vm::{FrameSource, Mmu, PteState};
    let zero = crate::memory::uspace::KernelFrames.zero_page();
    let huge_zero = crate::memory::uspace::KernelFrames.huge_zero_page();
    let end = c.area.range.end.0;
    while c.va < end {
        if *budget == 0 {
            return false;
        }
        let pages = RESIDENT_PIECE.min(*budget).min((end - c.va) / PAGE_SIZE);
        let stop = c.va + pages * PAGE_SIZE;
        {
            let vm = mm.lock();
            let Some(vm) = vm.as_ref() else { return true };
            for page in (c.va..stop).step_by(PAGE_SIZE) {
                match vm.mmu().query(VirtAddr(page)) {
                    PteState::Present(pte)
                        if pte.huge
                            && Some(PhysAddr(pte.pa.0 & !(HUGE_PAGE_SIZE - 1))) == huge_zero => {}
                    PteState::Present(pte) if pte.pa != zero => {
                        c.rss += 1;
                        c.huge += usize::from(pte.huge);
                    }
                    PteState::Remembered(_) => c.swap += 1,
                    PteState::Present(_) | PteState::Absent => {}
                }
            }
        }
        *budget -= pages;
        c.va = stop;
    }
    true
}

/// The lines `smaps` gives after an area's line before its counts: `Size`,
/// `KernelPageSize`, `MMUPageSize` (then `Rss` and `Swap`, the fields pagoda can count;
/// `Pss` and the shared/private split are left out).
fn smaps_head(out: &mut impl Write, a: &AreaInfo) -> core::fmt::Result {
    let size = (a.range.end.0 - a.range.start.0) / 1024;
    writeln!(out, "Size:           {size:>8} kB")?;
    writeln!(out, "KernelPageSize: {:>8} kB", PAGE_SIZE / 1024)?;
    writeln!(out, "MMUPageSize:    {:>8} kB", PAGE_SIZE / 1024)
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

/// Column where `maps` puts a mapping's name (Linux's padding on 64-bit machines).
const MAPS_NAME_COLUMN: usize = 73;

/// One line of `maps` for area `a`, with Linux's columns: range, permissions, file
/// offset, the mapped file's device (`major:minor`, hex) and inode, then the name from
/// column 73: the file's path, `[heap]` (the area ending at the program break `brk`),
/// `[stack]`, or `/dev/zero (deleted)` for shared anonymous memory, as Linux shows it.
/// A file without a name (a tmpfs file: the page cache of its inode does not know its
/// path) shows its device and inode only.
fn maps_line(
    out: &mut impl Write,
    a: &AreaInfo,
    brk: usize,
    file: Option<&dyn VmFile>,
) -> core::fmt::Result {
    let bit = |on: bool, c: char| if on { c } else { '-' };
    let shared = matches!(a.kind, AreaKind::SharedAnon | AreaKind::SharedFile { .. });
    let offset = match a.kind {
        AreaKind::File { offset, .. } | AreaKind::SharedFile { offset } => offset,
        AreaKind::Anon | AreaKind::SharedAnon => 0,
    };
    let heap = matches!(a.kind, AreaKind::Anon)
        && a.range.start.0 < brk
        && a.range.end.0 == brk.next_multiple_of(PAGE_SIZE);
    let identity = file.and_then(|f| f.identity());
    let (dev, ino) = identity.map_or((0, 0), |id| (id.dev, id.ino));
    let name = match identity {
        Some(id) => id.path,
        None if a.grows_down => "[stack]",
        None if heap => "[heap]",
        None if matches!(a.kind, AreaKind::SharedAnon) => "/dev/zero (deleted)",
        None => "",
    };
    let mut line: arrayvec::ArrayString<128> = arrayvec::ArrayString::new();
    write!(
        line,
        "{:08x}-{:08x} {}{}{}{} {:08x} {:02x}:{:02x} {}",
        a.range.start.0,
        a.range.end.0,
        bit(a.prot.contains(Prot::READ), 'r'),
        bit(a.prot.contains(Prot::WRITE), 'w'),
        bit(a.prot.contains(Prot::EXEC), 'x'),
        if shared { 's' } else { 'p' },
        offset,
        dev >> 8,
        dev & 0xff,
        ino,
    )?;
    out.write_str(&line)?;
    if !name.is_empty() {
        let pad = MAPS_NAME_COLUMN.saturating_sub(line.len()).max(1);
        write!(out, "{:pad$}{name}", "")?;
    }
    out.write_str("\n")
}
