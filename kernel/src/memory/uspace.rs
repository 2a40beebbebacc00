//! User address spaces: `pagoda-mm`'s policy ([`AddressSpace`]) and its Sv39 user table
//! ([`Sv39Mmu`]) over this machine's hooks.
//!
//! The user page table, its PTE encoding (copy-on-write and `PROT_NONE` in the software
//! bits) and its flush-then-free protocol live in `pagoda_mm::vm::sv39`, tested on the
//! host. What stays here is what only the machine knows:
//! * [`UserTableMemory`]: table pages from [`frames::alloc_table`], reached through the
//!   direct map; [`tlb::HartTlb`] performs the fences;
//! * [`activate`]: `satp` with the space's ASID;
//! * [`KernelFrames`] implements [`FrameSource`] with the buddy allocator, reference
//!   counts in the frame metadata, one shared zero page, and the zeroing and copying
//!   loops of the fault path, and the owner words of the reverse map in the frame
//!   metadata; [`fill_frame`] copies file bytes into a frame (the initramfs files'
//!   [`VmFile`](pagoda_mm::vm::VmFile), in `fs`).

use core::cell::Cell;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, Ordering};

use pagoda_mm::addr::{PAGE_SIZE, PhysAddr, VirtAddr};
use pagoda_mm::frame::FrameUse;
use pagoda_mm::layout::{USER_END, phys_to_virt};
use pagoda_mm::paging::{PagingMemory, TablePage};
use pagoda_mm::tlb::{Flush, TlbOps};
use pagoda_mm::vm::{
    Access, AddressSpace, FaultError, FaultOutcome, FrameSource, Mmu, OutOfMemory, PteFlags,
    Sv39Mmu, SwapEntry, VmConfig,
};
use spin::Once;

use super::{frames, kspace, tlb};

/// The page table of a process: pagoda-mm's Sv39 user table on this machine.
pub type UserMmu = Sv39Mmu<UserTableMemory, tlb::HartTlb>;

/// A process's address space.
pub type UserSpace = AddressSpace<UserMmu, KernelFrames>;

/// Words in one page.
const PAGE_WORDS: usize = PAGE_SIZE / 8;
/// Words [`zero_page`] stores per loop iteration: four 64-byte lines, so that the loop's
/// own two instructions (pointer step and branch) come once per 256 bytes (zeroing 4 KiB
/// takes 544 instructions, against 640 with one line per iteration).
const ZERO_WORDS: usize = 32;
/// Words [`copy_page`] moves per loop iteration: one 64-byte line (a 256-byte block
/// measured slower: the compiler then moves it through a `memcpy` call).
const COPY_WORDS: usize = 8;

/// Zeroes the frame at `pa`, [`ZERO_WORDS`] stores per iteration (the generic `memset`
/// moves a word at a time; this is on the demand-zero fault path, and zeroes fresh table
/// pages).
pub(super) fn zero_page(pa: PhysAddr) {
    let dst = frame_ptr(pa) as *mut u64;
    for line in 0..PAGE_WORDS / ZERO_WORDS {
        for word in 0..ZERO_WORDS {
            // SAFETY: `pa` is a frame the caller owns, direct-mapped and page aligned, so
            // every word of it is valid and aligned. Volatile keeps the compiler from
            // turning the loop back into a call to the word-at-a-time `memset`.
            unsafe { dst.add(line * ZERO_WORDS + word).write_volatile(0) };
        }
    }
}

/// Copies the frame at `src` into the frame at `dst`, [`COPY_WORDS`] words per iteration
/// (on the copy-on-write fault path). Never inlined: inlined into the fault handler, the
/// unrolled loop competes for registers with the handler's live values and spills (a
/// copy-on-write fault measured 2,903 instructions inlined against 2,340 as a call).
#[inline(never)]
fn copy_page(dst: PhysAddr, src: PhysAddr) {
    let d = frame_ptr(dst) as *mut [u64; COPY_WORDS];
    let s = frame_ptr(src) as *const [u64; COPY_WORDS];
    for i in 0..PAGE_WORDS / COPY_WORDS {
        // SAFETY: both are allocated, direct-mapped, page-aligned frames and distinct (the
        // destination is fresh and the caller's alone).
        unsafe { d.add(i).write(s.add(i).read()) };
    }
}

/// The direct-map pointer to the frame at `pa`.
fn frame_ptr(pa: PhysAddr) -> *mut u8 {
    phys_to_virt(pa).as_usize() as *mut u8
}

/// Page-table pages of one user table: from [`frames::alloc_table`] (which keeps the
/// kernel's reserve for itself), reached through the direct map, and counted.
#[derive(Debug, Default)]
pub struct UserTableMemory {
    /// Table pages the table holds (root included): its share of the out-of-memory
    /// killer's badness, as Linux counts `mm_pgtables_bytes`.
    pages: Cell<usize>,
}

impl UserTableMemory {
    /// Page-table pages this space holds now (root included).
    pub fn pages(&self) -> usize {
        self.pages.get()
    }
}

// SAFETY: pages come zeroed from `frames::alloc_table` (frames: 4 KiB aligned, ours until
// freed) and the direct map makes every RAM page readable and writable at a fixed
// address; `Sv39Mmu` frees a page only after the flush that drops every cached walk
// through it (its flush-then-free protocol), or when its space is in no hart's `satp`.
unsafe impl PagingMemory for UserTableMemory {
    #[inline]
    fn alloc_table(&self) -> Option<PhysAddr> {
        let pa = frames::alloc_table(true)?;
        self.pages.set(self.pages.get() + 1);
        Some(pa)
    }

    unsafe fn free_table(&self, pa: PhysAddr) {
        self.pages.set(self.pages.get().saturating_sub(1));
        // SAFETY: the table code's contract: `pa` came from `alloc_table`, is all zero and
        // nothing reaches it any more.
        unsafe { frames::free_table(pa) };
    }

    #[inline]
    fn table_ptr(&self, pa: PhysAddr) -> NonNull<TablePage> {
        NonNull::new(frame_ptr(pa) as *mut TablePage).unwrap_or(NonNull::dangling())
    }
}

/// A new, empty user page table sharing the kernel half.
pub fn new_mmu() -> Result<UserMmu, OutOfMemory> {
    let kernel = kspace::table().lock();
    Sv39Mmu::new(UserTableMemory::default(), tlb::HartTlb, &kernel)
}

/// Makes `mmu` the calling hart's translation: `satp` with the space's ASID (flushing
/// first if the ASID was recycled).
pub fn activate(mmu: &UserMmu, hart: usize) {
    let switch = tlb::asids().asid_for(mmu.context(), hart);
    if switch.flush_all {
        tlb::HartTlb.flush_local(&Flush::All);
    }
    let satp = mmu.satp(switch.asid);
    // SAFETY: the table maps the kernel half exactly as the kernel table does (its root
    // entries are shared), so the running code and stack stay mapped.
    unsafe { core::arch::asm!("csrw satp, {0}", in(reg) satp) };
}

/// The shared zero page, allocated once.
static ZERO_PAGE: Once<PhysAddr> = Once::new();

/// User frames from the kernel's buddy allocator.
#[derive(Clone, Copy, Debug, Default)]
pub struct KernelFrames;

impl FrameSource for KernelFrames {
    #[inline]
    fn alloc_zeroed(&self, owner: u64) -> Result<PhysAddr, OutOfMemory> {
        let pa = self.alloc_uninit(owner)?;
        zero_page(pa);
        Ok(pa)
    }

    #[inline]
    fn alloc_uninit(&self, owner: u64) -> Result<PhysAddr, OutOfMemory> {
        if !frames::user_may_allocate() {
            return Err(OutOfMemory);
        }
        frames::alloc_owned(0, FrameUse::UserAnon, owner)
            .map(|p| p.addr())
            .map_err(|_| OutOfMemory)
    }

    fn copy_frame(&self, dst: PhysAddr, src: PhysAddr) {
        copy_page(dst, src);
    }

    #[inline]
    fn get(&self, pa: PhysAddr) {
        // The policy only references frames it holds: an error would be its bug, and
        // the count then stays as it was (a leak, never a use after free).
        let _ = frames::FRAMES.get(pa.pfn());
    }

    #[inline]
    fn put(&self, pa: PhysAddr) -> bool {
        matches!(frames::release(pa.pfn()), Ok(true))
    }

    fn refcount(&self, pa: PhysAddr) -> usize {
        frames::FRAMES
            .meta(pa.pfn())
            .map_or(0, |m| m.refcount() as usize)
    }

    #[inline]
    fn zero_page(&self) -> PhysAddr {
        *ZERO_PAGE.get().unwrap_or(&PhysAddr(0))
    }

    fn owner(&self, pa: PhysAddr) -> u64 {
        frames::FRAMES.meta(pa.pfn()).map_or(0, |m| m.owner())
    }

    /// No swap device yet: nothing makes a remembered PTE, so there is no slot to count.
    fn dup_remembered(&self, _: SwapEntry) {}

    /// No swap device yet: nothing makes a remembered PTE, so there is no slot to count.
    fn drop_remembered(&self, _: SwapEntry) {}
}

/// Fills the frame at `dst` (fresh, the caller's alone) with `bytes` (at most a page)
/// followed by zeros: a file page's contents.
pub fn fill_frame(dst: PhysAddr, bytes: &[u8]) {
    let len = bytes.len().min(PAGE_SIZE);
    // SAFETY: `dst` is a frame the caller owns, direct-mapped; `bytes` is at most a page
    // and does not overlap it (file bytes live in the initramfs or the kernel image,
    // which no frame the allocator hands out overlaps).
    unsafe {
        core::ptr::copy_nonoverlapping(bytes.as_ptr(), frame_ptr(dst), len);
        core::ptr::write_bytes(frame_ptr(dst).add(len), 0, PAGE_SIZE - len);
    }
}

/// Allocates the shared zero page. Called once at boot, before the first user space.
pub fn init() -> Result<(), OutOfMemory> {
    let pa = KernelFrames.alloc_zeroed(0)?;
    ZERO_PAGE.call_once(|| pa);
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

/// A new, empty user address space.
pub fn new_space() -> Result<UserSpace, OutOfMemory> {
    let config = VmConfig {
        eager: EAGER.load(Ordering::Relaxed),
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
    kspace::leave_user_table();
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
            .is_some_and(|p| p.flags.contains(PteFlags::WRITE));
        if !writable {
            space.handle_fault(VirtAddr(at), Access::Write)?;
        }
        let pte = space
            .mmu()
            .query(VirtAddr(at))
            .present()
            .ok_or(FaultError::Unmapped)?;
        let src = &bytes[at - va..at - va + chunk];
        // SAFETY: the page is mapped writable in `space`, so its frame is private to it;
        // the direct map reaches it whatever table is active.
        unsafe {
            core::ptr::copy_nonoverlapping(
                src.as_ptr(),
                frame_ptr(pte.pa).add(at % PAGE_SIZE),
                chunk,
            )
        };
        at += chunk;
    }
    Ok(())
}
