//! [`Sv39Mmu`]: the [`Mmu`] of a user address space on RISC-V Sv39, over the
//! [`paging`](crate::paging) table code, the [`tlb`](crate::tlb) flush batch and an ASID.
//!
//! The kernel supplies only the machine: a [`PagingMemory`] (where table pages come from
//! and how they are reached) and a [`TlbOps`] (which hart runs, the fences). Host tests
//! supply a simulated memory and per-hart simulated TLBs, so the table the kernel runs is
//! the table the tests run.
//!
//! # The PTE encoding of a user page
//!
//! | policy view ([`PteInfo`]) | Sv39 leaf |
//! |---|---|
//! | `READ`, `WRITE`, `EXEC` | `R`, `W` (with `D`), `X`, always `U` and `A` |
//! | copy-on-write | `RSW0` (the first software bit) |
//! | retained but inaccessible (`PROT_NONE`) | `X` without `U`, and `RSW1` |
//!
//! Sv39 has no "present but inaccessible" leaf. A page kept by `PROT_NONE` becomes an
//! execute-only supervisor leaf: without `U` every user access faults; without `R`/`W`
//! every kernel load and store faults too (`sstatus.MXR` is never set), so a system call
//! copying to or from it gets `EFAULT`; and the kernel never executes user memory.
//! `RSW1` tells it apart from a real mapping (as Linux's `PAGE_NONE` keeps the frame in
//! the PTE). `A` is set up front and `D` with `W`, so the hardware never has to update an
//! entry (Svade: it would fault instead).
//!
//! # Flush, then free
//!
//! Every removal goes through one [`FlushBatch`] aimed at this space's ASID on the harts
//! that have run it: leaves are cleared, the batch flushes (page by page up to
//! [`FLUSH_PAGE_THRESHOLD`](crate::tlb::FLUSH_PAGE_THRESHOLD) pages, else the whole ASID,
//! and the whole ASID whenever a table page was emptied, since a hart may cache non-leaf
//! entries), and only then are emptied table pages given back to the [`PagingMemory`]
//! and the removed frames reported to the caller, who may free them at once.

use crate::addr::{PAGE_SIZE, PhysAddr, VirtAddr, VirtRange};
use crate::paging::{
    Deferred, PageSize, PageTable, PagingError, PagingMemory, Pte, PteFlags as Sv39Flags,
};
use crate::tlb::{AsidContext, Flush, FlushBatch, FlushTarget, PendingFlush, TlbOps};

use super::hal::{CopyPte, Mmu, OutOfMemory, PagePerms, PteInfo, PteState, SwapEntry, TlbFlush};

/// The software bit that marks a retained, inaccessible (`PROT_NONE`) leaf.
const PROT_NONE_BIT: Sv39Flags = Sv39Flags::RSW1;
/// The software bit that marks a copy-on-write leaf.
const COW_BIT: Sv39Flags = Sv39Flags::RSW0;
/// The `READ`, `WRITE` and `EXEC` bits of the policy's flags.
const RWX_MASK: u8 = PagePerms::READ.bits() | PagePerms::WRITE.bits() | PagePerms::EXEC.bits();

/// [`hw_flags`] for every combination of `READ`, `WRITE`, `EXEC` (index bits 0-2, as in
/// [`PagePerms`]) and copy-on-write (index bit 3).
const HW_FLAGS: [Sv39Flags; 16] = {
    let mut table = [Sv39Flags::empty(); 16];
    let mut i = 0;
    while i < 16 {
        table[i] = encode(i & 1 != 0, i & 2 != 0, i & 4 != 0, i & 8 != 0);
        i += 1;
    }
    table
};

/// The leaf flags of a user page with rights `r`, `w`, `x` and copy-on-write `cow` (see
/// the module docs).
const fn encode(r: bool, w: bool, x: bool, cow: bool) -> Sv39Flags {
    let mut hw = Sv39Flags::A.bits();
    if r || w || x {
        hw |= Sv39Flags::U.bits();
        // Write implies read (the policy never asks for W without R; Sv39 forbids it).
        if r || w {
            hw |= Sv39Flags::R.bits();
        }
        if w {
            hw |= Sv39Flags::W.bits() | Sv39Flags::D.bits();
        }
        if x {
            hw |= Sv39Flags::X.bits();
        }
    } else {
        hw |= Sv39Flags::X.bits() | PROT_NONE_BIT.bits();
    }
    if cow {
        hw |= COW_BIT.bits();
    }
    Sv39Flags::from_bits_truncate(hw)
}

/// The leaf flags for the policy's `flags` and copy-on-write bit: a table lookup (this
/// runs for every page of a fork).
#[inline]
fn hw_flags(flags: PagePerms, cow: bool) -> Sv39Flags {
    let rwx = (flags.bits() & RWX_MASK) as usize;
    HW_FLAGS[rwx | (cow as usize) << 3]
}

/// The policy's view of a leaf of `size` (an inaccessible `PROT_NONE` leaf reports no
/// permission).
#[inline]
fn info(pa: PhysAddr, hw: Sv39Flags, size: PageSize) -> PteInfo {
    // Sv39's R, W, X (bits 1-3) are the policy's READ, WRITE, EXEC (bits 0-2), in order.
    const _: () = assert!(
        Sv39Flags::R.bits() >> 1 == PagePerms::READ.bits() as u64
            && Sv39Flags::W.bits() >> 1 == PagePerms::WRITE.bits() as u64
            && Sv39Flags::X.bits() >> 1 == PagePerms::EXEC.bits() as u64
    );
    let rwx = if hw.contains(PROT_NONE_BIT) {
        0
    } else {
        (hw.bits() >> 1) as u8 & RWX_MASK
    };
    PteInfo {
        pa,
        flags: PagePerms::from_bits_truncate(rwx) | PagePerms::USER,
        cow: hw.contains(COW_BIT),
        accessed: hw.contains(Sv39Flags::A),
        dirty: hw.contains(Sv39Flags::D),
        huge: size != PageSize::Size4K,
        shared: false,
    }
}

/// [`info`] of a leaf entry of `size`.
#[inline]
fn info_of(pte: Pte, size: PageSize) -> PteInfo {
    info(pte.pa(), pte.flags(), size)
}

/// Fork's decision `c` for the leaf `pte` as the table code takes it: the flags the
/// parent's leaf keeps and the child's entry.
#[inline]
fn copy_entries(pte: Pte, c: CopyPte) -> (Sv39Flags, Option<Pte>) {
    let (cpa, cflags, ccow) = c.child;
    let parent = match c.parent {
        Some((flags, cow)) => hw_flags(flags, cow),
        None => pte.flags().difference(Sv39Flags::V),
    };
    (parent, Some(Pte::leaf(cpa, hw_flags(cflags, ccow))))
}

/// The page table of one user address space: an Sv39 [`PageTable`] that shares the
/// kernel half, the space's [`AsidContext`], and the machine's [`TlbOps`].
pub struct Sv39Mmu<M: PagingMemory, T: TlbOps> {
    table: PageTable<M>,
    ctx: AsidContext,
    tlb: T,
    /// `teardown` ran: the space's TLB entries are gone everywhere and it is in no
    /// hart's `satp`, so its table pages may be freed without another flush.
    torn_down: bool,
}

impl<M: PagingMemory, T: TlbOps> Sv39Mmu<M, T> {
    /// A new, empty user table in `mem` sharing `kernel`'s half, flushing through `tlb`.
    pub fn new<K: PagingMemory>(
        mem: M,
        tlb: T,
        kernel: &PageTable<K>,
    ) -> Result<Self, OutOfMemory> {
        let mut table = PageTable::new_user(mem, kernel).map_err(|_| OutOfMemory)?;
        // A leaf copied out of a table fork shared becomes read-only, copy-on-write (as
        // fork makes every private PTE; for the zero page the mark changes nothing).
        table.enable_sharing(Sv39Flags::W, COW_BIT);
        Ok(Sv39Mmu {
            table,
            ctx: AsidContext::new(),
            tlb,
            torn_down: false,
        })
    }

    /// The space's ASID and the harts that have run it (for the ASID allocator).
    pub fn context(&self) -> &AsidContext {
        &self.ctx
    }

    /// The `satp` value that runs this table with `asid`.
    pub fn satp(&self, asid: u16) -> usize {
        self.table.satp(asid)
    }

    /// The memory the table pages live in.
    pub fn memory(&self) -> &M {
        self.table.memory()
    }

    /// The machine's TLB hooks.
    pub fn tlb(&self) -> &T {
        &self.tlb
    }

    /// Drops a stale translation of the page at `va` on the calling hart only (after a
    /// [spurious fault](super::FaultOutcome::Spurious): other harts fault and flush for
    /// themselves).
    pub fn flush_local(&self, va: VirtAddr) {
        let page = VirtAddr(va.0 & !(PAGE_SIZE - 1));
        self.tlb.flush_local(&Flush::Pages {
            asid: Some(self.ctx.asid()),
            pages: &[page],
        });
    }

    /// Puts `entry` in the PTE at `va`; the present leaf it replaced, which the caller
    /// must flush, or `None`.
    fn replace_by_entry(
        &mut self,
        va: VirtAddr,
        entry: SwapEntry,
    ) -> Result<Option<PteInfo>, OutOfMemory> {
        let old = self
            .table
            .remember(va, entry.token())
            .map_err(|_| OutOfMemory)?;
        Ok(old.is_leaf().then(|| info_of(old, PageSize::Size4K)))
    }

    /// A flush batch for this space's ASID on the harts that ran it.
    #[inline]
    fn batch(&self) -> FlushBatch<'_, T, Deferred> {
        FlushBatch::new(&self.tlb, FlushTarget::Space(&self.ctx))
    }

    /// Flushes the whole ASID on every hart that ran this space.
    fn flush_space(&self) {
        let mut batch = self.batch();
        batch.flush_space();
        batch.flush(|_| {});
    }
}

impl<M: PagingMemory, T: TlbOps> Drop for Sv39Mmu<M, T> {
    /// The table pages are freed when the table drops, right after this: stale entries of
    /// the ASID must go first, unless `teardown` already flushed them.
    fn drop(&mut self) {
        if !self.torn_down {
            self.flush_space();
        }
    }
}

impl<M: PagingMemory, T: TlbOps> TlbFlush for Sv39Mmu<M, T> {
    fn flush_page(&mut self, va: VirtAddr) {
        let mut batch = self.batch();
        batch.flush_page(va);
        batch.flush(|_| {});
    }
    fn flush_range(&mut self, range: VirtRange) {
        let mut batch = self.batch();
        batch.flush_range(range);
        batch.flush(|_| {});
    }
    fn flush_all(&mut self) {
        self.flush_space();
    }
}

impl<M: PagingMemory, T: TlbOps> Mmu for Sv39Mmu<M, T> {
    #[inline]
    fn map(
        &mut self,
        va: VirtAddr,
        pa: PhysAddr,
        flags: PagePerms,
        cow: bool,
    ) -> Result<(), OutOfMemory> {
        // One walk, whether the leaf is new or replaces one (a copy-on-write break).
        self.table
            .set_leaf(va, pa, hw_flags(flags, cow))
            .map(drop)
            .map_err(|_| OutOfMemory)
    }

    fn map_huge(
        &mut self,
        va: VirtAddr,
        pa: PhysAddr,
        flags: PagePerms,
        cow: bool,
    ) -> Result<bool, OutOfMemory> {
        match self.table.set_huge_leaf(va, pa, hw_flags(flags, cow)) {
            Ok(_) => Ok(true),
            Err(PagingError::OutOfMemory) => Err(OutOfMemory),
            Err(_) => Ok(false),
        }
    }

    fn huge_slot_free(&self, va: VirtAddr) -> bool {
        self.table.huge_slot_empty(va)
    }

    fn split_huge(&mut self, va: VirtAddr) -> Result<(), OutOfMemory> {
        match self.table.split_huge(va) {
            Err(PagingError::OutOfMemory) => Err(OutOfMemory),
            // The 4 KiB table is new: no hart caches an entry of it, and every address
            // kept its translation.
            _ => Ok(()),
        }
    }

    fn unmap(&mut self, va: VirtAddr) -> Option<PhysAddr> {
        let mut removed = None;
        self.unmap_range(va, VirtAddr(va.0 + PAGE_SIZE), |_, pte| {
            removed = Some(pte.pa)
        });
        removed
    }

    fn protect(&mut self, va: VirtAddr, flags: PagePerms, cow: bool) {
        if let Ok(entry) = self.table.entry(va) {
            // Always a legal, complete leaf (A, and D with W), so this cannot fail.
            let _ = entry.set_flags(hw_flags(flags, cow));
        }
    }

    fn take_accessed(&mut self, va: VirtAddr) -> bool {
        if let Some((_, _, true)) = self.table.lookup_shared(va) {
            // Detached since fork: no hart of this space reached it since.
            return false;
        }
        let Ok(entry) = self.table.entry(va) else {
            return false;
        };
        entry
            .update_flags(|f| f.difference(Sv39Flags::A))
            .is_ok_and(|old| old.flags().contains(Sv39Flags::A))
    }

    #[inline(always)]
    fn query(&self, va: VirtAddr) -> PteState {
        match self.table.lookup_shared(va) {
            None => PteState::Absent,
            Some((pte, size, shared)) => match pte.remembered_token() {
                Some(token) => PteState::Remembered(SwapEntry::from_stored(token)),
                None if size == PageSize::Size4K => PteState::Present(PteInfo {
                    shared,
                    ..info_of(pte, size)
                }),
                None => {
                    // The frame of this very page: its 4 KiB part of the 2 MiB leaf.
                    let offset = va.0 & (size.bytes() - 1) & !(PAGE_SIZE - 1);
                    PteState::Present(info(PhysAddr(pte.pa().0 + offset), pte.flags(), size))
                }
            },
        }
    }

    /// One walk to the page's entry; a replaced leaf is flushed on every hart before it
    /// is returned. The table then looks for remembered entries in its range walks
    /// (`unmap_range` clears them, `copy_range` leaves the child without them: the
    /// policy copies them with [`remembered_range`](Mmu::remembered_range)).
    fn remember(&mut self, va: VirtAddr, entry: SwapEntry) -> Result<Option<PteInfo>, OutOfMemory> {
        let old = self.replace_by_entry(va, entry)?;
        if old.is_some() {
            self.flush_page(va);
        }
        Ok(old)
    }

    fn remember_deferred(
        &mut self,
        va: VirtAddr,
        entry: SwapEntry,
        pending: &mut PendingFlush,
    ) -> Result<Option<PteInfo>, OutOfMemory> {
        let old = self.replace_by_entry(va, entry)?;
        if old.is_some() {
            // The harts running the space are owed a flush; the others flush before they
            // run it again (marked now, after the change, as for an immediate flush).
            pending.add(&self.ctx);
        }
        Ok(old)
    }

    fn remembered_range(
        &mut self,
        start: VirtAddr,
        end: VirtAddr,
        take: bool,
        mut f: impl FnMut(VirtAddr, SwapEntry),
    ) {
        let Some(len) = end.0.checked_sub(start.0) else {
            return;
        };
        // Only tokens this layer wrote are in the table: each is a swap entry.
        let _ = self.table.remembered_range(start, len, take, |va, token| {
            f(va, SwapEntry::from_stored(token))
        });
    }

    fn next_mapped(&self, from: VirtAddr, end: VirtAddr) -> Option<(VirtAddr, PteInfo)> {
        self.table
            .next_leaf(from, end)
            .map(|(va, pte, size)| (va, info_of(pte, size)))
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
            .copy_leaves(&mut child.table, start, len, |va, pte, size| {
                f(va, info_of(pte, size)).map(|c| copy_entries(pte, c))
            })
            .map_err(|_| OutOfMemory)
    }

    fn share_range(
        &mut self,
        child: &mut Self,
        start: VirtAddr,
        end: VirtAddr,
        mut f: impl FnMut(VirtAddr, PteInfo) -> Option<CopyPte>,
        _undo: impl FnMut(VirtAddr, &CopyPte),
    ) -> Result<usize, OutOfMemory> {
        let Some(len) = end.0.checked_sub(start.0) else {
            return Ok(0);
        };
        let shared = self
            .table
            .copy_leaves_shared(&mut child.table, start, len, |va, pte, size| {
                f(va, info_of(pte, size)).map(|c| copy_entries(pte, c))
            })
            .map_err(|_| OutOfMemory)?;
        if shared > 0 {
            // Translations through the tables just detached may be cached.
            self.flush_space();
        }
        Ok(shared)
    }

    fn attach(&mut self, va: VirtAddr) -> Result<(), OutOfMemory> {
        let page = VirtAddr(va.0 & !(PAGE_SIZE - 1));
        self.attach_range(page, VirtAddr(page.0 + PAGE_SIZE))
    }

    fn attach_range(&mut self, start: VirtAddr, end: VirtAddr) -> Result<(), OutOfMemory> {
        let Some(len) = end.0.checked_sub(start.0) else {
            return Ok(());
        };
        self.table.attach_range(start, len).map_err(|_| OutOfMemory)
    }

    fn teardown(&mut self, mut f: impl FnMut(VirtAddr, PteInfo)) {
        // No hart has this space in `satp` (the caller's contract), so after this flush
        // no hart holds or can create a translation of it: every frame and table page
        // may be released during the walk itself.
        self.flush_space();
        self.torn_down = true;
        self.table.clear(|u| f(u.va, info(u.pa, u.flags, u.size)));
    }

    fn update_range(
        &mut self,
        start: VirtAddr,
        end: VirtAddr,
        mut f: impl FnMut(VirtAddr, PteInfo) -> Option<(PagePerms, bool)>,
    ) {
        let Some(len) = end.0.checked_sub(start.0) else {
            return;
        };
        let _ = self.table.for_each_leaf(start, len, |leaf| {
            if let Some((flags, cow)) = f(leaf.va(), info_of(leaf.pte(), leaf.size())) {
                // Always a legal, complete leaf (A, and D with W), so this cannot fail.
                let _ = leaf.set_flags(hw_flags(flags, cow));
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
        let mut batch = FlushBatch::new(&self.tlb, FlushTarget::Space(&self.ctx));
        // One walk; the batch flushes before it frees a table page or hands `f` a frame.
        // The policy splits a 2 MiB leaf that straddles an end of the range first
        // (`split_huge`), so no split (the only way this can fail) happens here.
        let _ = self.table.unmap_range(start, len, &mut batch, |u| {
            f(u.va, info(u.pa, u.flags, u.size))
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_round_trips() {
        for i in 0..16u8 {
            let (flags, cow) = (PagePerms::from_bits_truncate(i & 7), i & 8 != 0);
            if flags.contains(PagePerms::WRITE) && !flags.contains(PagePerms::READ) {
                continue;
            }
            let hw = hw_flags(flags, cow);
            assert!(hw.is_valid_leaf(), "{hw:?}");
            let back = info(PhysAddr(0), hw, PageSize::Size4K);
            assert_eq!((back.flags, back.cow), (flags | PagePerms::USER, cow));
            assert_eq!(hw.contains(Sv39Flags::U), flags.is_accessible());
        }
    }
}
