//! Memory system calls: the `pagoda-mm` address-space operations of the current process.
//!
//! Faulting a range in (`MAP_POPULATE`, `MAP_LOCKED`, `mlock`, `mlockall`) is done here
//! a step at a time, the space unlocked between steps ([`mlock::fault_in`]): it may read
//! pages back from swap and reclaim memory, which sleeps.

use pagoda_mm::addr::VirtAddr;
use pagoda_mm::layout::USER_END;
use pagoda_mm::vm::abi::{MAP_ANONYMOUS, MAP_POPULATE};
use pagoda_mm::vm::{MmapFile, SwapEntry};

use super::{Errno, SysResult};
use crate::memory::mlock;
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
    let flags = flags & !MAP_POPULATE;
    let (start, populate) = with_vm(|vm| vm.mmap_deferred(addr, len, prot, flags, file, offset))?
        .map_err(Errno::from_vm)?;
    if populate {
        // As Linux's mm_populate after mmap: what cannot be faulted in is left for later.
        let end = VirtAddr(start.0.saturating_add(len));
        let _ = mlock::fault_in(start, end, true);
    }
    Ok(start.0)
}

pub fn munmap(addr: usize, len: usize) -> SysResult {
    with_vm(|vm| vm.munmap(addr, len))?
        .map(|()| 0)
        .map_err(Errno::from_vm)
}

/// `mremap(old_address, old_size, new_size, flags, new_address)`: `AddressSpace::mremap`
/// has the semantics and errors; a locked area's grown part is then faulted in a piece
/// at a time, as after a locked `mmap` (what cannot come in is left for later).
pub fn mremap(
    old_addr: usize,
    old_len: usize,
    new_len: usize,
    flags: usize,
    new_addr: usize,
) -> SysResult {
    // A moved or split area takes kernel heap: none while memory is down to the reserve.
    if !crate::memory::frames::user_may_allocate() {
        return Err(Errno::ENOMEM);
    }
    let remapped = with_vm(|vm| vm.mremap(old_addr, old_len, new_len, flags, new_addr))?
        .map_err(Errno::from_vm)?;
    if let Some(range) = remapped.populate {
        let _ = mlock::fault_in(range.start, range.end, true);
    }
    Ok(remapped.addr.0)
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

/// `mlock(addr, len)`: [`mlock2`] without flags.
pub fn mlock(addr: usize, len: usize) -> SysResult {
    mlock2(addr, len, 0)
}

/// `mlock2(addr, len, flags)`: locks the areas of the range (`AddressSpace::mlock` has
/// the errors), then, unless `MLOCK_ONFAULT`, faults every page in, pages in swap
/// included: a page that cannot come in is `ENOMEM` (a `PROT_NONE` area: it stays locked,
/// as on Linux), no memory left `EAGAIN`.
///
/// `RLIMIT_MEMLOCK` is not checked: every pagoda process runs as root, and Linux lets a
/// process with `CAP_IPC_LOCK` lock any amount (the space's `memlock_limit` is `None`).
pub fn mlock2(addr: usize, len: usize, flags: usize) -> SysResult {
    // A split area takes kernel heap: none while memory is down to the reserve.
    if !crate::memory::frames::user_may_allocate() {
        return Err(Errno::ENOMEM);
    }
    let range = with_vm(|vm| vm.mlock(addr, len, flags))?.map_err(Errno::from_vm)?;
    if range.start != range.end {
        mlock::fault_in(range.start, range.end, false)?;
    }
    Ok(0)
}

/// `munlock(addr, len)`: unlocks the areas of the range.
pub fn munlock(addr: usize, len: usize) -> SysResult {
    if !crate::memory::frames::user_may_allocate() {
        return Err(Errno::ENOMEM);
    }
    with_vm(|vm| vm.munlock(addr, len))?
        .map(|()| 0)
        .map_err(Errno::from_vm)
}

/// `mlockall(flags)`: with `MCL_CURRENT` (without `MCL_ONFAULT`) every area is then
/// faulted in, failures ignored as Linux ignores them.
pub fn mlockall(flags: usize) -> SysResult {
    let populate = with_vm(|vm| vm.mlockall(flags))?.map_err(Errno::from_vm)?;
    if populate {
        let _ = mlock::fault_in(VirtAddr(0), USER_END, true);
    }
    Ok(0)
}

/// `munlockall()`.
pub fn munlockall() -> SysResult {
    with_vm(|vm| vm.munlockall()).map(|()| 0)
}

/// Residency bytes gathered per step of [`mincore`] (the space is locked for a step,
/// then the bytes are copied out with it unlocked).
const MINCORE_STEP: usize = 256;

/// `mincore(addr, len, vec)`: one byte per page of the range, 1 if it is resident (a
/// page in swap counts only while the swap cache still holds it). `EINVAL` for a
/// misaligned `addr`, `ENOMEM` for a range leaving the user half, `EFAULT` for a vector
/// that does (checked before any page; an unwritable one fails at the copy), `ENOMEM`
/// at the first page no area covers, after the bytes before it were written.
pub fn mincore(addr: usize, len: usize, vec: usize) -> SysResult {
    let pages = UserSpace::mincore_pages(addr, len).map_err(Errno::from_vm)?;
    if vec.checked_add(pages).is_none_or(|e| e > USER_END.0) {
        return Err(Errno::EFAULT);
    }
    let mut buf = [0u8; MINCORE_STEP];
    let mut done = 0;
    while done < pages {
        let n = (pages - done).min(MINCORE_STEP);
        let va = VirtAddr(addr + done * pagoda_mm::addr::PAGE_SIZE);
        let got =
            with_vm(|vm| vm.mincore(va, &mut buf[..n], in_swap_cache))?.map_err(Errno::from_vm)?;
        super::uaccess::copy_to_user(vec + done, &buf[..got])?;
        done += got;
    }
    Ok(0)
}

/// Whether a swapped-out page is still in memory, in the swap cache.
fn in_swap_cache(entry: SwapEntry) -> bool {
    crate::memory::swap::is_cached(entry)
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
