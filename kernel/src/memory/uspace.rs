//! User address spaces: the `pagoda-mm` policy ([`AddressSpace`]) over this machine's
//! Sv39 tables, ASIDs, TLB and frame allocator.
//!
//! * [`UserMmu`] implements [`Mmu`]: one user [`PageTable`] sharing the kernel half and
//!   its [`AsidContext`]. A page kept but made inaccessible by `PROT_NONE` stays in the
//!   table as an execute-only supervisor leaf marked with `RSW1` (see
//!   `UserMmu::hw_flags`), as Linux's `PAGE_NONE` keeps it in the PTE.
//! * The copy-on-write mark is the PTE's first software bit (`RSW0`).
//! * TLB flushes go to the space's ASID on every hart that has run it.
//! * Page-table pages a removal empties are not freed at once: they wait for the next
//!   flush of the space, which then covers the whole ASID (a hart may cache non-leaf
//!   entries, which a per-page `sfence.vma` does not drop).
//! * [`KernelFrames`] implements [`FrameSource`] with the buddy allocator, reference
//!   counts in the frame metadata, and one shared zero page.
//! * [`InitramfsFile`] implements [`VmFile`] over a file of the initramfs.

use core::cell::Cell;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, Ordering};

use pagoda_mm::addr::{PAGE_SIZE, PhysAddr, VirtAddr, VirtRange};
use pagoda_mm::frame::FrameUse;
use pagoda_mm::layout::{USER_END, phys_to_virt};
use pagoda_mm::paging::{PageSize, PageTable, PagingError, PagingMemory, Pte, PteFlags, TablePage};
use pagoda_mm::tlb::{AsidContext, Flush, FlushBatch, FlushTarget, HartMask, TlbOps, TlbStats};
use pagoda_mm::vm::{
    Access, AddressSpace, CopyPte, FaultError, FaultOutcome, FrameSource, IoError, Mmu,
    OutOfMemory, PteFlags as VmFlags, PteInfo, TlbFlush, VmConfig, VmFile,
};
use spin::Once;

use super::{frames, kspace, tlb};

/// A process's address space.
pub type UserSpace = AddressSpace<UserMmu, KernelFrames>;

/// Up to this many pages a flush names each page; above, it drops the whole ASID.
const FLUSH_PAGES_MAX: usize = 16;

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
/// (on the copy-on-write fault path).
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

/// Page-table pages of one user table, from [`frames::alloc_table`]. Freed pages (all zero) are
/// chained through their first word (a value with `V` clear, so a stale walk through a
/// cached pointer to the page finds nothing) until the next flush of the space releases
/// them, the link cleared again, to the hart's pool of zeroed table pages.
#[derive(Debug, Default)]
pub struct UserTables {
    deferred: Cell<usize>,
    /// Table pages the table holds (root included): its share of the out-of-memory
    /// killer's badness, as Linux counts `mm_pgtables_bytes`.
    pages: Cell<usize>,
}

impl Drop for UserTables {
    /// The table is gone (its root was freed last, after the final flush of its space in
    /// [`UserMmu`]'s `Drop`): nothing can walk these pages any more.
    fn drop(&mut self) {
        release_chain(self.deferred.get());
    }
}

impl UserTables {
    /// Takes the chain of pages waiting for a flush (0: none).
    fn take_deferred(&self) -> usize {
        self.deferred.replace(0)
    }
}

/// Frees a chain made by [`UserTables::free_table`] (after the flush that makes it safe).
/// Out of line: most flushes (a fault, an `mprotect`) have no chain to release.
#[inline(never)]
fn release_chain(mut pa: usize) {
    while pa != 0 {
        let link = frame_ptr(PhysAddr(pa)) as *mut usize;
        // SAFETY: every page of the chain is a freed table page, still ours, whose first
        // word `free_table` set to the next page of the chain (the rest of it is zero).
        let next = unsafe { link.read() };
        // SAFETY: as above; clearing the link makes the whole page zero again.
        unsafe { link.write(0) };
        // SAFETY: the page came from `frames::alloc_table`, is all zero now, and nothing uses it:
        // no table links to it and the flush before this call dropped every cached walk.
        unsafe { frames::free_table(PhysAddr(pa)) };
        pa = next;
    }
}

// SAFETY: pages come from `frames::alloc_table` (zeroed; from the frame allocator) and are
// reached through the direct map; a page handed to `free_table` (all zero, by the table
// code's contract) is zero again, link cleared, when it goes back to `frames::free_table`, only
// after the flush that drops every cached translation through it (see `UserMmu::flush`).
unsafe impl PagingMemory for UserTables {
    #[inline]
    fn alloc_table(&self) -> Option<PhysAddr> {
        let pa = frames::alloc_table(true)?;
        self.pages.set(self.pages.get() + 1);
        Some(pa)
    }

    unsafe fn free_table(&self, pa: PhysAddr) {
        self.pages.set(self.pages.get().saturating_sub(1));
        // SAFETY: `pa` is a table page no table links to any more (the caller's contract),
        // so its first word is ours to reuse as the chain link.
        unsafe { (frame_ptr(pa) as *mut usize).write(self.deferred.get()) };
        self.deferred.set(pa.0);
    }

    fn table_ptr(&self, pa: PhysAddr) -> NonNull<TablePage> {
        NonNull::new(frame_ptr(pa) as *mut TablePage).unwrap_or(NonNull::dangling())
    }
}

/// Counters of the flushes that [`UserMmu`] leaves to its own flush calls.
static UNCOUNTED: TlbStats = TlbStats::new();

/// The page-table code's per-operation flushes are skipped for user tables: the policy
/// layer asks for exactly the flushes it needs through [`TlbFlush`].
struct PolicyFlushes;

impl TlbOps for PolicyFlushes {
    fn this_hart(&self) -> usize {
        crate::smp::hart_id()
    }
    fn sfence_local(&self, _: &Flush<'_>) {}
    fn sfence_remote(&self, _: &HartMask, _: &Flush<'_>) {}
    fn stats(&self) -> &TlbStats {
        &UNCOUNTED
    }
}

/// The hardware side of one user address space.
pub struct UserMmu {
    table: PageTable<UserTables>,
    ctx: AsidContext,
    /// `teardown` ran: the space's TLB entries are gone everywhere and it is in no
    /// hart's `satp`, so its table pages may be freed without another flush.
    torn_down: bool,
}

/// The software bit that marks a retained, inaccessible (`PROT_NONE`) leaf.
const PROT_NONE_BIT: PteFlags = PteFlags::RSW1;
/// The `READ`, `WRITE` and `EXEC` bits of the policy's flags.
const RWX_MASK: u8 = VmFlags::READ.bits() | VmFlags::WRITE.bits() | VmFlags::EXEC.bits();

/// [`UserMmu::hw_flags`] for every combination of `READ`, `WRITE`, `EXEC` (index bits
/// 0-2, as in [`VmFlags`]) and copy-on-write (index bit 3).
const HW_FLAGS: [PteFlags; 16] = {
    let mut table = [PteFlags::empty(); 16];
    let mut i = 0;
    while i < 16 {
        let (r, w, x, cow) = (i & 1 != 0, i & 2 != 0, i & 4 != 0, i & 8 != 0);
        let mut hw = PteFlags::A.bits();
        if r || w || x {
            hw |= PteFlags::U.bits();
            // Write implies read (the policy never asks for W without R; Sv39 forbids it).
            if r || w {
                hw |= PteFlags::R.bits();
            }
            if w {
                hw |= PteFlags::W.bits() | PteFlags::D.bits();
            }
            if x {
                hw |= PteFlags::X.bits();
            }
        } else {
            hw |= PteFlags::X.bits() | PROT_NONE_BIT.bits();
        }
        if cow {
            hw |= PteFlags::RSW0.bits();
        }
        table[i] = PteFlags::from_bits_truncate(hw);
        i += 1;
    }
    table
};

impl UserMmu {
    /// A new, empty user table sharing the kernel half.
    pub fn new() -> Result<UserMmu, OutOfMemory> {
        let kernel = kspace::table().lock();
        let table = PageTable::new_user(UserTables::default(), &kernel).map_err(|_| OutOfMemory)?;
        Ok(UserMmu {
            table,
            ctx: AsidContext::new(),
            torn_down: false,
        })
    }

    /// Page-table pages this space holds now (root included).
    pub fn table_pages(&self) -> usize {
        self.table.memory().pages.get()
    }

    /// The hardware flags for the policy's `flags`.
    ///
    /// An inaccessible page (`PROT_NONE` after it was populated) must keep its frame yet
    /// fault on every access, and Sv39 has no such leaf. It becomes an execute-only
    /// supervisor leaf: without `U` every user access faults; without `R`/`W` every kernel
    /// load and store faults too (`sstatus.MXR` is never set), so a system call copying
    /// to or from it gets `EFAULT`; and the kernel never executes user memory. `RSW1`
    /// tells it apart from a real mapping.
    ///
    /// A table lookup (this runs for every page of a fork).
    #[inline]
    fn hw_flags(flags: VmFlags, cow: bool) -> PteFlags {
        let rwx = (flags.bits() & RWX_MASK) as usize;
        HW_FLAGS[rwx | (cow as usize) << 3]
    }

    /// Flushes `pages` (or the whole ASID) on every hart that ran this space, then frees
    /// the table pages that waited for it.
    fn flush(&mut self, pages: Option<VirtRange>) {
        let deferred = self.table.memory().take_deferred();
        let harts = self.ctx.harts().snapshot();
        let asid = self.ctx.asid();
        let mut list = [VirtAddr(0); FLUSH_PAGES_MAX];
        let flush = match pages {
            Some(r) if deferred == 0 && r.end.0 - r.start.0 <= FLUSH_PAGES_MAX * PAGE_SIZE => {
                let n = (r.end.0 - r.start.0).div_ceil(PAGE_SIZE);
                for (i, slot) in list.iter_mut().enumerate().take(n) {
                    *slot = VirtAddr(r.start.0 + i * PAGE_SIZE);
                }
                Flush::Pages {
                    asid: Some(asid),
                    pages: &list[..n],
                }
            }
            _ => Flush::Asid(asid),
        };
        if !harts.is_empty() {
            tlb::HartTlb.flush_harts(&harts, &flush);
        }
        if deferred != 0 {
            release_chain(deferred);
        }
    }

    /// Makes this the hart's translation: `satp` with the space's ASID (flushing first if
    /// the ASID was recycled).
    pub fn activate(&self, hart: usize) {
        let switch = tlb::asids().asid_for(&self.ctx, hart);
        if switch.flush_all {
            tlb::HartTlb.flush_local(&Flush::All);
        }
        let satp = self.table.satp(switch.asid);
        // SAFETY: the table maps the kernel half exactly as the kernel table does (its
        // root entries are shared), so the running code and stack stay mapped.
        unsafe { core::arch::asm!("csrw satp, {0}", in(reg) satp) };
    }
}

impl Drop for UserMmu {
    fn drop(&mut self) {
        // Nothing runs on the table any more; stale entries of its ASID must still go
        // before its table pages are reused, unless `teardown` already flushed them.
        if self.torn_down {
            release_chain(self.table.memory().take_deferred());
        } else {
            self.flush(None);
        }
    }
}

impl TlbFlush for UserMmu {
    fn flush_page(&mut self, va: VirtAddr) {
        self.flush(Some(va..VirtAddr(va.0 + PAGE_SIZE)));
    }
    fn flush_range(&mut self, range: VirtRange) {
        self.flush(Some(range));
    }
    fn flush_all(&mut self) {
        self.flush(None);
    }
}

impl Mmu for UserMmu {
    fn map(
        &mut self,
        va: VirtAddr,
        pa: PhysAddr,
        flags: VmFlags,
        cow: bool,
    ) -> Result<(), OutOfMemory> {
        let hw = Self::hw_flags(flags, cow);
        match self.table.map(va, pa, PageSize::Size4K, hw) {
            Ok(()) => Ok(()),
            // "map replaces": point the existing leaf at the new frame.
            Err(PagingError::AlreadyMapped) => self
                .table
                .entry(va)
                .and_then(|e| e.set_frame(pa, hw))
                .map(drop)
                .map_err(|_| OutOfMemory),
            Err(_) => Err(OutOfMemory),
        }
    }

    fn unmap(&mut self, va: VirtAddr) -> Option<PhysAddr> {
        let mut batch = FlushBatch::new(&PolicyFlushes, FlushTarget::Space(&self.ctx));
        self.table.unmap(va, &mut batch).ok().map(|u| u.pa)
    }

    fn protect(&mut self, va: VirtAddr, flags: VmFlags, cow: bool) {
        let hw = Self::hw_flags(flags, cow);
        if let Ok(entry) = self.table.entry(va) {
            // Always a legal, complete leaf (A, and D with W), so this cannot fail.
            let _ = entry.set_flags(hw);
        }
    }

    fn query(&self, va: VirtAddr) -> Option<PteInfo> {
        let (pa, flags, _) = self.table.translate(va)?;
        Some(info(PhysAddr(pa.0 & !(PAGE_SIZE - 1)), flags))
    }

    fn next_mapped(&self, from: VirtAddr, end: VirtAddr) -> Option<(VirtAddr, PteInfo)> {
        self.table
            .next_leaf(from, end)
            .map(|(va, pte, _)| (va, info(pte.pa(), pte.flags())))
    }

    fn copy_range(
        &mut self,
        child: &mut Self,
        start: VirtAddr,
        end: VirtAddr,
        mut f: impl FnMut(VirtAddr, PteInfo) -> Option<CopyPte>,
        _undo: impl FnMut(VirtAddr, &CopyPte),
    ) -> Result<(), OutOfMemory> {
        let Some(len) = end.0.checked_sub(start.0) else {
            return Ok(());
        };
        // One walk; the child's leaf tables are filled directly. `copy_leaves` makes a
        // child table before the decision that needs it and the stores after it cannot
        // fail, so `undo` is never needed here.
        self.table
            .copy_leaves(&mut child.table, start, len, |va, pte| {
                let c = f(va, info(pte.pa(), pte.flags()))?;
                let (cpa, cflags, ccow) = c.child;
                let parent = match c.parent {
                    Some((flags, cow)) => Self::hw_flags(flags, cow),
                    None => pte.flags().difference(PteFlags::V),
                };
                Some((parent, Some(Pte::leaf(cpa, Self::hw_flags(cflags, ccow)))))
            })
            .map_err(|_| OutOfMemory)
    }

    fn teardown(&mut self, mut f: impl FnMut(VirtAddr, PteInfo)) {
        // No hart has this space in `satp` (the scheduler and exit switch away first), so
        // after this flush no hart holds or can create a translation of it: every frame
        // may be released during the walk itself.
        self.flush(None);
        self.torn_down = true;
        self.table.clear(|u| f(u.va, info(u.pa, u.flags)));
    }

    fn update_range(
        &mut self,
        start: VirtAddr,
        end: VirtAddr,
        mut f: impl FnMut(VirtAddr, PteInfo) -> Option<(VmFlags, bool)>,
    ) {
        let Some(len) = end.0.checked_sub(start.0) else {
            return;
        };
        let _ = self.table.for_each_leaf(start, len, |leaf| {
            let pte = leaf.pte();
            if let Some((flags, cow)) = f(leaf.va(), info(pte.pa(), pte.flags())) {
                // Always a legal, complete leaf (A, and D with W), so this cannot fail.
                let _ = leaf.set_flags(Self::hw_flags(flags, cow));
            }
        });
    }

    fn unmap_range(
        &mut self,
        start: VirtAddr,
        end: VirtAddr,
        mut f: impl FnMut(VirtAddr, PteInfo),
    ) {
        let Some(len) = end.0.checked_sub(start.0) else {
            return;
        };
        let mut batch = FlushBatch::new(&PolicyFlushes, FlushTarget::Space(&self.ctx));
        // One walk; a table page it empties waits in `UserTables` for the policy's flush.
        // User leaves are all 4 KiB, so no split (the only way this can fail) happens.
        let _ = self
            .table
            .unmap_range(start, len, &mut batch, |u| f(u.va, info(u.pa, u.flags)));
    }
}

/// The policy's view of a hardware leaf (an inaccessible `PROT_NONE` leaf reports no
/// permission at all).
#[inline]
fn info(pa: PhysAddr, hw: PteFlags) -> PteInfo {
    // Sv39's R, W, X (bits 1-3) are the policy's READ, WRITE, EXEC (bits 0-2), in order.
    const _: () = assert!(
        PteFlags::R.bits() >> 1 == VmFlags::READ.bits() as u64
            && PteFlags::W.bits() >> 1 == VmFlags::WRITE.bits() as u64
            && PteFlags::X.bits() >> 1 == VmFlags::EXEC.bits() as u64
    );
    let rwx = if hw.contains(PROT_NONE_BIT) {
        0
    } else {
        (hw.bits() >> 1) as u8 & RWX_MASK
    };
    let flags = VmFlags::from_bits_truncate(rwx) | VmFlags::USER;
    PteInfo {
        pa,
        flags,
        cow: hw.contains(PteFlags::RSW0),
        accessed: hw.contains(PteFlags::A),
        dirty: hw.contains(PteFlags::D),
    }
}

/// The shared zero page, allocated once.
static ZERO_PAGE: Once<PhysAddr> = Once::new();

/// User frames from the kernel's buddy allocator.
#[derive(Clone, Copy, Debug, Default)]
pub struct KernelFrames;

impl FrameSource for KernelFrames {
    #[inline]
    fn alloc_zeroed(&self) -> Result<PhysAddr, OutOfMemory> {
        let pa = self.alloc_uninit()?;
        zero_page(pa);
        Ok(pa)
    }

    #[inline]
    fn alloc_uninit(&self) -> Result<PhysAddr, OutOfMemory> {
        if !frames::user_may_allocate() {
            return Err(OutOfMemory);
        }
        frames::alloc(0, FrameUse::UserAnon)
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
}

/// Allocates the shared zero page. Called once at boot, before the first user space.
pub fn init() -> Result<(), OutOfMemory> {
    let pa = KernelFrames.alloc_zeroed()?;
    ZERO_PAGE.call_once(|| pa);
    Ok(())
}

/// A file of the initramfs as the backing of private mappings.
#[derive(Debug)]
pub struct InitramfsFile {
    data: &'static [u8],
}

impl InitramfsFile {
    /// The file whose contents are `data`.
    pub fn new(data: &'static [u8]) -> InitramfsFile {
        InitramfsFile { data }
    }
}

impl VmFile for InitramfsFile {
    fn size(&self) -> u64 {
        self.data.len() as u64
    }

    fn read_page(&self, offset: u64, len: usize, dst: PhysAddr) -> Result<(), IoError> {
        let start = usize::try_from(offset)
            .map_err(|_| IoError)?
            .min(self.data.len());
        let end = start
            .saturating_add(len.min(PAGE_SIZE))
            .min(self.data.len());
        let bytes = &self.data[start..end];
        // SAFETY: `dst` is a fresh frame of the caller's, direct-mapped; `bytes` is at most
        // a page and lies in the initramfs, which no frame overlaps.
        unsafe {
            core::ptr::copy_nonoverlapping(bytes.as_ptr(), frame_ptr(dst), bytes.len());
            core::ptr::write_bytes(frame_ptr(dst).add(bytes.len()), 0, PAGE_SIZE - bytes.len());
        }
        Ok(())
    }
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
    Ok(AddressSpace::new(UserMmu::new()?, KernelFrames, config))
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
        let asid = space.mmu().ctx.asid();
        let page = VirtAddr(va & !(PAGE_SIZE - 1));
        tlb::HartTlb.flush_local(&Flush::Pages {
            asid: Some(asid),
            pages: &[page],
        });
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
            .is_some_and(|p| p.flags.contains(VmFlags::WRITE));
        if !writable {
            space.handle_fault(VirtAddr(at), Access::Write)?;
        }
        let pte = space
            .mmu()
            .query(VirtAddr(at))
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
