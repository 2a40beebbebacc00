//! Memory system calls: the `pagoda-mm` address-space operations of the current process.

use pagoda_mm::addr::VirtAddr;
use pagoda_mm::vm::abi::{MAP_ANONYMOUS, MAP_LOCKED, MAP_NONBLOCK, MAP_POPULATE};
use pagoda_mm::vm::{MmapFile, VmError};

use super::{Errno, SysResult};
use crate::memory::uspace::UserSpace;
use crate::proc;

/// Runs `f` on the current process's address space.
fn with_vm<R>(f: impl FnOnce(&mut UserSpace) -> R) -> Result<R, Errno> {
    proc::sched::with_current(|me| {
        let me = me.ok_or(Errno::ESRCH)?;
        let mm = me.vm.lock();
        let mut vm = mm.lock();
        let vm = vm.as_mut().ok_or(Errno::ESRCH)?;
        Ok(f(vm))
    })
}

pub fn brk(addr: usize) -> SysResult {
    with_vm(|vm| vm.brk(addr).0)
}

/// The mapping view of descriptor `fd`: `None` if it is not open; `ENOMEM` if its
/// file's memory object could not be made.
fn mmap_file(fd: usize) -> Result<Option<MmapFile>, Errno> {
    let Ok(f) = proc::current().group.lock().fds.get(fd) else {
        return Ok(None);
    };
    let (backing, (readable, writable)) = {
        let file = f.lock();
        (file.mem_object()?, file.mmap_access())
    };
    Ok(Some(MmapFile {
        file: backing,
        readable,
        writable,
    }))
}

pub fn mmap(
    addr: usize,
    len: usize,
    prot: usize,
    flags: usize,
    fd: usize,
    offset: usize,
) -> SysResult {
    let file = if flags & MAP_ANONYMOUS != 0 {
        None
    } else {
        mmap_file(fd)?
    };
    // A new area lives in the kernel heap: none while memory is down to the reserve.
    if !crate::memory::frames::user_may_allocate() {
        return Err(Errno::ENOMEM);
    }
    // Population is done here, a piece at a time, not inside the mapping call: a large
    // populated mapping must neither hold the hart nor outlive a fatal signal.
    let populate = flags & MAP_LOCKED != 0 || flags & (MAP_POPULATE | MAP_NONBLOCK) == MAP_POPULATE;
    let flags = flags & !(MAP_LOCKED | MAP_POPULATE);
    let start =
        with_vm(|vm| vm.mmap(addr, len, prot, flags, file, offset))?.map_err(Errno::from_vm)?;
    if populate {
        populate_in_pieces(start, len);
    }
    Ok(start.0)
}

/// Bytes populated per piece: 2 MiB, one page table's worth (a few hundred thousand
/// instructions at most).
const POPULATE_PIECE: usize = 2 << 20;

/// Populates `[start, start + len)` of the current process a [`POPULATE_PIECE`] at a
/// time, its address space unlocked between pieces: it gives way to other tasks once a
/// scheduler tick has passed, and stops on a fatal signal or when memory runs out (the
/// mapping itself stands, as with Linux's `mm_populate`).
fn populate_in_pieces(start: VirtAddr, len: usize) {
    let me = proc::current();
    let end = start.0.saturating_add(len);
    let mut at = start.0;
    let mut slice_start = crate::timer::now_ns();
    while at < end && !me.killed.load(core::sync::atomic::Ordering::Acquire) {
        let stop = (at + POPULATE_PIECE).min(end);
        let piece = with_vm(|vm| vm.populate(VirtAddr(at), VirtAddr(stop)));
        if matches!(piece, Err(_) | Ok(Err(VmError::NoMem))) {
            return;
        }
        at = stop;
        if crate::timer::now_ns() - slice_start >= crate::timer::TICK_NS {
            proc::sched::preempt();
            slice_start = crate::timer::now_ns();
        }
    }
}

pub fn munmap(addr: usize, len: usize) -> SysResult {
    with_vm(|vm| vm.munmap(addr, len))?
        .map(|()| 0)
        .map_err(Errno::from_vm)
}

pub fn mprotect(addr: usize, len: usize, prot: usize) -> SysResult {
    // A split area takes kernel heap: none while memory is down to the reserve.
    if !crate::memory::frames::user_may_allocate() {
        return Err(Errno::ENOMEM);
    }
    with_vm(|vm| vm.mprotect(addr, len, prot))?
        .map(|()| 0)
        .map_err(Errno::from_vm)
}

pub fn madvise(addr: usize, len: usize, advice: usize) -> SysResult {
    with_vm(|vm| vm.madvise(addr, len, advice))?
        .map(|()| 0)
        .map_err(Errno::from_vm)
}

/// `msync(addr, len, flags)`: a mapped file's pages are its page cache (tmpfs) or
/// read-only (the initramfs), so there is nothing to write back; the arguments are
/// checked as Linux checks them: `EINVAL` for a misaligned `addr`, unknown flags or
/// both `MS_ASYNC` and `MS_SYNC`, `ENOMEM` if part of the range is not mapped.
pub fn msync(addr: usize, len: usize, flags: usize) -> SysResult {
    const MS_ASYNC: usize = 1;
    const MS_INVALIDATE: usize = 2;
    const MS_SYNC: usize = 4;
    if !addr.is_multiple_of(pagoda_mm::addr::PAGE_SIZE)
        || flags & !(MS_ASYNC | MS_INVALIDATE | MS_SYNC) != 0
        || flags & (MS_ASYNC | MS_SYNC) == MS_ASYNC | MS_SYNC
    {
        return Err(Errno::EINVAL);
    }
    let end = addr
        .checked_add(len.next_multiple_of(pagoda_mm::addr::PAGE_SIZE))
        .ok_or(Errno::ENOMEM)?;
    with_vm(|vm| {
        let mut at = addr;
        while at < end {
            match vm.area_containing(VirtAddr(at)) {
                Some(area) => at = area.range.end.0,
                None => return Err(Errno::ENOMEM),
            }
        }
        Ok(0)
    })?
}
