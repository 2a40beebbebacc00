//! User address spaces: `pagoda-mm`'s policy ([`AddressSpace`]) and its Sv39 user table
//! ([`Sv39Mmu`]) over this machine's hooks.
//!
//! The user page table, its PTE encoding (copy-on-write and `PROT_NONE` in the software
//! bits) and its flush-then-free protocol live in `pagoda_mm::vm::sv39`, tested on the
//! host. What stays here is what only the machine knows:
//! * [`UserTableMemory`] (in [`super::frames`]): table pages from
//!   [`frames::alloc_table`], reached through the direct map; [`tlb::HartTlb`] performs
//!   the fences;
//! * [`activate`]: `satp` with the space's ASID;
//! * [`KernelFrames`] implements [`FrameSource`] with the buddy allocator, reference
//!   counts in the frame metadata, one shared zero page, and the zeroing and copying
//!   loops of the fault path, and the owner words of the reverse map in the frame
//!   metadata; [`fill_frame`] copies file bytes into a frame (the initramfs files'
//!   [`VmFile`](pagoda_mm::vm::VmFile), in `fs`).

use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};

use pagoda_mm::addr::{PAGE_SIZE, PhysAddr, VirtAddr};
use pagoda_mm::frame::FrameUse;
use pagoda_mm::layout::{HUGE_PAGE_ORDER, HUGE_PAGE_PAGES, USER_END};
use pagoda_mm::swap::List;
use pagoda_mm::tlb::{Flush, TlbOps};
use pagoda_mm::vm::{
    Access, AddressSpace, FaultError, FaultOutcome, FrameSource, Mmu, OutOfMemory, PagePerms,
    Sv39Mmu, SwapEntry, Thp, VmConfig, huge_head_of, owner_is_private,
};
use spin::Once;

pub use super::frames::UserTableMemory;

use super::machine;
use super::{frames, kspace, tlb};

/// The page table of a process: pagoda-mm's Sv39 user table on this machine.
pub type UserMmu = Sv39Mmu<UserTableMemory, tlb::HartTlb>;

/// A process's address space.
pub type UserSpace = AddressSpace<UserMmu, KernelFrames>;

/// A new, empty user page table sharing the kernel half.
pub fn new_mmu() -> Result<UserMmu, OutOfMemory> {
    let kernel = kspace::table().lock();
    let zero = KernelFrames.zero_page();
    Sv39Mmu::new(UserTableMemory::new(zero), tlb::HartTlb, &kernel)
}

/// Makes `mmu` the calling hart's translation: `satp` with the space's ASID (flushing
/// first if the ASID was recycled, or the space's entries this hart may hold went stale
/// while it was away).
pub fn activate(mmu: &UserMmu, hart: usize) {
    let switch = tlb::asids().asid_for(mmu.context(), hart);
    if switch.flush_all {
        tlb::HartTlb.flush_local(&Flush::All);
    } else if switch.flush_asid {
        // The space changed while this hart was away: what it cached of it is stale.
        tlb::HartTlb.flush_local(&Flush::Asid(switch.asid));
    }
    machine::load_user_table(mmu, switch.asid);
}

/// Records that `hart`, whose `satp` no longer holds `mmu` (the caller loaded another
/// table first), stopped running it: shootdowns of the space stop reaching the hart,
/// which flushes the space's ASID before it runs it again.
pub fn left(mmu: &UserMmu, hart: usize) {
    mmu.context().leave(hart);
}

/// The shared zero page, allocated once.
static ZERO_PAGE: Once<PhysAddr> = Once::new();

/// User frames from the kernel's buddy allocator.
#[derive(Clone, Copy, Debug, Default)]
pub struct KernelFrames;

impl FrameSource for KernelFrames {
    #[inline(always)]
    fn alloc_zeroed(&self, owner: u64) -> Result<PhysAddr, OutOfMemory> {
        let pa = self.alloc_uninit(owner)?;
        machine::zero_page(pa);
        Ok(pa)
    }

    #[inline]
    fn alloc_uninit(&self, owner: u64) -> Result<PhysAddr, OutOfMemory> {
        if !frames::user_may_allocate() {
            return Err(OutOfMemory);
        }
        let pa = frames::alloc_owned(0, FrameUse::UserAnon, owner)
            .map(|p| p.addr())
            .map_err(|_| OutOfMemory)?;
        if owner_is_private(owner) && super::reclaim::tracking() {
            // A private page, and swap is on: reclaim may swap it out.
            super::reclaim::add(pa, List::Inactive);
        }
        Ok(pa)
    }

    fn copy_frame(&self, dst: PhysAddr, src: PhysAddr) {
        machine::copy_page(dst, src);
    }

    #[inline(always)]
    fn get(&self, pa: PhysAddr) {
        frames::get_user(pa.pfn());
    }

    // Out of line: the loops that drop a page each (exit, munmap) keep their registers
    // (inlined into exit's per-leaf callback, which the recursive table walk calls,
    // the callback saved eleven registers per page: exit of a 1 MiB process cost
    // 40 instructions more per page).
    #[inline(never)]
    fn put(&self, pa: PhysAddr) -> bool {
        match frames::release(pa.pfn()) {
            Ok(true) => true,
            Ok(false) => {
                // A PTE of a page in the swap cache went: the cache may be all that is
                // left holding it (fork's child exiting with 64 MiB shared: 330,000
                // instructions when this always looked the frame up).
                if in_swap_cache(pa) {
                    super::swap::unmapped(pa);
                }
                false
            }
            Err(_) => false,
        }
    }

    fn refcount(&self, pa: PhysAddr) -> usize {
        frames::FRAMES
            .meta(pa.pfn())
            .map_or(0, |m| match m.frame_use() {
                // A 4 KiB page of a huge frame: the huge frame's count.
                FrameUse::Tail => self.refcount(huge_head_of(pa)),
                _ => m.refcount() as usize,
            })
    }

    #[inline]
    fn zero_page(&self) -> PhysAddr {
        *ZERO_PAGE.get().unwrap_or(&PhysAddr(0))
    }

    fn owner(&self, pa: PhysAddr) -> u64 {
        frames::FRAMES
            .meta(pa.pfn())
            .map_or(0, |m| match m.frame_use() {
                // A 4 KiB page of a huge frame: the huge frame's owner, at its index.
                FrameUse::Tail => {
                    let head = huge_head_of(pa);
                    self.owner(head) + ((pa.0 - head.0) / PAGE_SIZE) as u64
                }
                _ => m.owner(),
            })
    }

    fn dup_remembered(&self, entry: SwapEntry) {
        super::swap::dup(entry);
    }

    fn drop_remembered(&self, entry: SwapEntry) {
        super::swap::put(entry);
    }

    fn take_exclusive(&self, pa: PhysAddr) -> bool {
        // Asked on every copy-on-write copy: without swap it costs one load.
        in_swap_cache(pa) && super::swap::take_exclusive(pa)
    }

    fn alloc_huge(&self, owner: u64, zeroed: bool) -> Result<PhysAddr, OutOfMemory> {
        if !frames::user_may_allocate() {
            return Err(OutOfMemory);
        }
        let pa = frames::alloc_owned(HUGE_PAGE_ORDER, FrameUse::UserHuge, owner)
            .map(|p| p.addr())
            .map_err(|_| OutOfMemory)?;
        if zeroed {
            for i in 0..HUGE_PAGE_PAGES {
                machine::zero_page(PhysAddr(pa.0 + i * PAGE_SIZE));
            }
        }
        if owner_is_private(owner) && super::reclaim::tracking() {
            // Listed by its head: reclaim splits it when it finds it cold, then swaps
            // its pages out like any others (docs/huge-pages.md).
            super::reclaim::add(pa, List::Inactive);
        }
        Ok(pa)
    }

    #[inline]
    fn huge_zero_page(&self) -> Option<PhysAddr> {
        HUGE_ZERO_PAGE.get().copied()
    }

    fn split_huge(&self, head: PhysAddr) {
        let owner = self.owner(head);
        // Off the lists while its size changes (they count 512 pages for a huge head).
        let listed = super::reclaim::take_off(head);
        let split =
            frames::FRAMES.split_block(head.pfn(), FrameUse::UserAnon, |i| owner + i as u64);
        if split.is_ok() {
            THP_SPLIT_PAGE.fetch_add(1, Ordering::Relaxed);
        }
        if split.is_ok() && owner_is_private(owner) && super::reclaim::tracking() {
            // Ordinary frames now: reclaim may take any of them.
            for i in 0..HUGE_PAGE_PAGES {
                super::reclaim::add(PhysAddr(head.0 + i * PAGE_SIZE), List::Inactive);
            }
        } else if let Some(list) = listed {
            super::reclaim::add(head, list);
        }
    }
}

/// Huge frames split into 512 ordinary frames (`thp_split_page` in `/proc/vmstat`; the
/// splits of a 2 MiB leaf whose frame stays whole are only in `thp_split_pmd`).
pub static THP_SPLIT_PAGE: AtomicU64 = AtomicU64::new(0);

/// The shared zero huge frame, allocated at boot if a 2 MiB block was free.
static HUGE_ZERO_PAGE: Once<PhysAddr> = Once::new();

/// Whether the frame at `pa` is in the swap cache. Swap-cache frames exist only while
/// swap is on (when reclaim tracks pages), so without swap this is one load and no
/// metadata lookup: it is asked on every unmapped shared page and every copy-on-write
/// copy.
#[inline]
fn in_swap_cache(pa: PhysAddr) -> bool {
    super::reclaim::tracking()
        && frames::FRAMES
            .meta(pa.pfn())
            .is_some_and(|m| m.frame_use() == FrameUse::SwapCache)
}

/// Fills the frame at `dst` (fresh, the caller's alone) with `bytes` (at most a page)
/// followed by zeros: a file page's contents.
pub fn fill_frame(dst: PhysAddr, bytes: &[u8]) {
    machine::fill_frame(dst, bytes);
}

/// Copies bytes of a page-cache frame (a tmpfs page, held by the caller's reference)
/// from byte `offset` on into `buf`, which must fit in the frame.
pub fn read_cached(pa: PhysAddr, offset: usize, buf: &mut [u8]) {
    machine::read_frame(pa, offset, buf);
}

/// Copies `bytes` into a page-cache frame (held by the caller's reference) from byte
/// `offset` on; they must fit in the frame.
pub fn write_cached(pa: PhysAddr, offset: usize, bytes: &[u8]) {
    machine::write_frame(pa, offset, bytes);
}

/// Zeroes `len` bytes of a page-cache frame (held by the caller's reference) from byte
/// `offset` on (cut at the frame's end): the tail past a file's new end.
pub fn zero_cached(pa: PhysAddr, offset: usize, len: usize) {
    machine::zero_frame_range(pa, offset, len);
}

/// Allocates the shared zero page, and the shared zero huge frame if a 2 MiB block is
/// free (without one, reads of untouched huge-page ranges map 4 KiB zero pages). Called
/// once at boot, before the first user space.
pub fn init() -> Result<(), OutOfMemory> {
    let pa = KernelFrames.alloc_zeroed(0)?;
    ZERO_PAGE.call_once(|| pa);
    if let Ok(huge) = frames::alloc_owned(HUGE_PAGE_ORDER, FrameUse::Kernel, 0) {
        let huge = huge.addr();
        for i in 0..HUGE_PAGE_PAGES {
            machine::zero_page(PhysAddr(huge.0 + i * PAGE_SIZE));
        }
        HUGE_ZERO_PAGE.call_once(|| huge);
    }
    Ok(())
}

/// The limits every process gets.
pub const CONFIG: VmConfig = VmConfig::LINUX_DEFAULT;

/// Eager mode (`vm=eager` on the command line): populate at map time, copy at fork.
static EAGER: AtomicBool = AtomicBool::new(false);

/// Switches every address space created from now on to eager mode (the benchmarks'
/// baseline, as the seed's kernel worked).
pub fn set_eager(on: bool) {
    EAGER.store(on, Ordering::Relaxed);
}

/// Whether fork shares leaf page tables (`fork=share`, the default) or copies their
/// entries (`fork=copy`).
static SHARE_TABLES: AtomicBool = AtomicBool::new(true);

/// Sets whether forks from now on share leaf page tables.
pub fn set_share_tables(on: bool) {
    SHARE_TABLES.store(on, Ordering::Relaxed);
}

/// The huge-page mode of new address spaces (`thp=` on the command line): 0 always,
/// 1 madvise, 2 never.
static THP: AtomicU8 = AtomicU8::new(0);

/// Sets the huge-page mode of every address space created from now on.
pub fn set_thp(mode: Thp) {
    let code = match mode {
        Thp::Always => 0,
        Thp::Madvise => 1,
        Thp::Never => 2,
    };
    THP.store(code, Ordering::Relaxed);
}

/// The huge-page mode new address spaces get.
pub fn thp() -> Thp {
    match THP.load(Ordering::Relaxed) {
        0 => Thp::Always,
        1 => Thp::Madvise,
        _ => Thp::Never,
    }
}

/// A new, empty user address space.
pub fn new_space() -> Result<UserSpace, OutOfMemory> {
    let config = VmConfig {
        eager: EAGER.load(Ordering::Relaxed),
        share_tables: SHARE_TABLES.load(Ordering::Relaxed),
        thp: thp(),
        ..CONFIG
    };
    Ok(AddressSpace::new(new_mmu()?, KernelFrames, config))
}

/// Switches this hart back to the kernel's own table (no user half), as a task leaves
/// the hart: no hart keeps a table in `satp` that it is not running, so a space that
/// dies is in no hart's `satp` (its table pages may then be reused at once; a hart's
/// page walker could otherwise still read them, even speculatively). No flush: the
/// kernel's mappings are global and the same in every table, and the space's own TLB
/// entries stay tagged with its ASID (flushed when its pages change, and before its ASID
/// is used again).
pub fn activate_kernel() {
    machine::leave_user_table();
}

/// Resolves a fault at `va` in `space`; a stale local translation is flushed here.
pub fn handle_fault(space: &mut UserSpace, va: usize, access: Access) -> Result<(), FaultError> {
    let outcome = space.handle_fault(VirtAddr(va), access)?;
    if outcome == FaultOutcome::Spurious {
        space.mmu().flush_local(VirtAddr(va));
    }
    Ok(())
}

/// Writes `bytes` at user address `va` of `space` (which need not be the active one),
/// faulting pages in as a write would. For `execve`'s initial stack.
pub fn write_bytes(space: &mut UserSpace, va: usize, bytes: &[u8]) -> Result<(), FaultError> {
    let end = va
        .checked_add(bytes.len())
        .filter(|&e| e <= USER_END.as_usize());
    let end = end.ok_or(FaultError::Unmapped)?;
    let mut at = va;
    while at < end {
        let page_end = ((at / PAGE_SIZE) + 1) * PAGE_SIZE;
        let chunk = page_end.min(end) - at;
        let writable = space
            .mmu()
            .query(VirtAddr(at))
            .present()
            .is_some_and(|p| p.flags.contains(PagePerms::WRITE));
        if !writable {
            space.handle_fault(VirtAddr(at), Access::Write)?;
        }
        let pte = space
            .mmu()
            .query(VirtAddr(at))
            .present()
            .ok_or(FaultError::Unmapped)?;
        let src = &bytes[at - va..at - va + chunk];
        // The page is mapped writable in `space`, so its frame is private to it.
        machine::write_frame(pte.pa, at % PAGE_SIZE, src);
        at += chunk;
    }
    Ok(())
}
