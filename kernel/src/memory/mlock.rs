//! Locked memory on this machine: reclaim's question "does a locked area map this
//! frame?", the `Mlocked` total of `/proc/meminfo`, and faulting a locked range in
//! (which may have to read pages back from swap and reclaim memory on the way).
//!
//! The lock itself is an area's ([`pagoda_mm::vm::Lock`], `mm/src/vm/mlock.rs`); see
//! `docs/swap.md`, "Locked memory".

#![deny(unsafe_code)]

use core::sync::atomic::Ordering;

use pagoda_mm::addr::{PAGE_SIZE, PhysAddr, VirtAddr};
use pagoda_mm::vm::{FaultError, mapped_by_locked_area};

use super::reclaim::{self, KernelSpaces};
use super::uspace::{KernelFrames, UserSpace};
use crate::errno::Errno;
use crate::proc;

/// Whether a locked area of any process maps the frame `pa`: reclaim keeps it. No walk
/// while no live process has ever locked anything.
pub fn mapped_locked(pa: PhysAddr) -> bool {
    mapped_by_locked_area(&KernelFrames, pa, &mut KernelSpaces::waiting())
}

/// `Mlocked` (and `Unevictable`) of `/proc/meminfo`: the pages present in locked areas
/// of every process, the zero page not counted. A frame two processes both map from
/// locked areas (shared memory locked by both) counts twice; Linux counts it once.
pub fn mlocked_pages() -> usize {
    let mut pages = 0;
    proc::for_each_process(|p| {
        let mm = p.mm();
        let vm = mm.lock();
        if let Some(vm) = vm.as_ref() {
            pages += vm.locked_resident_pages();
        }
    });
    pages
}

/// Pages faulted in per step, the address space unlocked between steps: 2 MiB, one page
/// table's worth (a few hundred thousand instructions at most).
pub const POPULATE_STEP_PAGES: usize = (2 << 20) / PAGE_SIZE;

/// Faults in `[start, end)` of the current process for a lock or a populated mapping
/// (`mlock`, `mlockall`, `MAP_LOCKED`, `MAP_POPULATE`), a step at a time with its space
/// unlocked between steps: a page in swap is read back (sleeping, no lock held), memory
/// is reclaimed when none is free, the task gives way once a scheduler tick has passed,
/// and a fatal signal ends it.
///
/// `ignore_errors` (`mlockall`, the mappings): pages that cannot be faulted in are
/// skipped and running out of memory just stops. Otherwise (`mlock`) such a page is
/// `ENOMEM` and running out of memory `EAGAIN`, as Linux's `mlock` reports them. A fatal
/// signal is `EINTR`.
pub fn fault_in(start: VirtAddr, end: VirtAddr, ignore_errors: bool) -> Result<(), Errno> {
    let me = proc::current();
    let mut at = start;
    let mut slice_start = crate::timer::now_ns();
    loop {
        if me.killed.load(Ordering::Acquire) {
            return Err(Errno::EINTR);
        }
        let step = with_space(|vm| vm.fault_in(at, end, POPULATE_STEP_PAGES, ignore_errors))?;
        let failed = match step {
            Ok(None) => return Ok(()),
            Ok(Some(next)) => {
                at = next;
                None
            }
            Err((va, FaultError::SwappedOut(entry))) => {
                at = va;
                super::swap::swap_in(va.0, entry).err()
            }
            Err((va, e)) => {
                at = va;
                Some(e)
            }
        };
        match failed {
            None => {}
            Some(FaultError::OutOfMemory) => {
                if reclaim::reclaim(reclaim::BATCH) == 0 {
                    return if ignore_errors {
                        Ok(())
                    } else {
                        Err(Errno::EAGAIN)
                    };
                }
            }
            // A page that cannot come in (a failed swap read): skipped, or ENOMEM.
            Some(_) if ignore_errors => at = VirtAddr(at.0 + PAGE_SIZE),
            Some(_) => return Err(Errno::ENOMEM),
        }
        // As after a fault: below the low watermark kswapd0 is woken, further down this
        // task reclaims a batch itself (no lock held).
        reclaim::after_fault();
        if crate::timer::now_ns() - slice_start >= crate::timer::TICK_NS {
            proc::sched::preempt();
            slice_start = crate::timer::now_ns();
        }
    }
}

/// Runs `f` on the current process's address space.
fn with_space<R>(f: impl FnOnce(&mut UserSpace) -> R) -> Result<R, Errno> {
    proc::sched::with_current(|me| {
        let me = me.ok_or(Errno::ESRCH)?;
        let mm = me.vm.lock();
        let mut vm = mm.lock();
        let vm = vm.as_mut().ok_or(Errno::ESRCH)?;
        Ok(f(vm))
    })
}
