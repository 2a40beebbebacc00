//! The seams between the virtual-memory policy and the machine: page tables, TLB, frames
//! and files.
//!
//! The policy layer ([`AddressSpace`](super::AddressSpace)) never touches hardware. It asks
//! an [`Mmu`] to install, change and remove leaf PTEs of one address space, tells a
//! [`TlbFlush`] sink exactly which stale translations must go, takes frames from a
//! [`FrameSource`] that keeps a reference count per frame, and fills file pages through
//! [`VmFile`]. The kernel implements these with its Sv39 page tables, ASIDs and buddy
//! allocator; the host tests implement them with plain maps and vectors.
//!
//! ## The flush rule
//!
//! RISC-V (like every other architecture Linux supports on this point) lets a TLB keep a
//! translation after its PTE changed, but the privileged specification allows the
//! `sfence.vma` to be *lazy* when a PTE gains rights: when an invalid PTE becomes valid or
//! a valid leaf gains permissions, a hart that still holds the old view simply takes a
//! page fault, and the fault handler executes a local `sfence.vma` and retries. So the
//! policy layer requests a flush only when a present, accessible PTE loses a right or
//! changes its frame (unmap, write-protect for copy-on-write, `mprotect` downgrade, copy
//! on a copy-on-write break). Upgrades request nothing; the resulting stale-entry fault is
//! reported as [`FaultOutcome::Spurious`](super::FaultOutcome::Spurious).
//!
//! A frame whose mapping was removed is released (its reference dropped) only *after* the
//! flush that makes it unreachable has completed on every hart that may hold the
//! translation, so no hart can reach a frame that has been handed to someone else. For
//! removals the [`Mmu`] owns that order ([`Mmu::unmap_range`] hands each frame back only
//! after its flush, and frees emptied table pages after the same flush); for changes that
//! keep the frame (a downgrade, a copy-on-write break) the policy asks [`TlbFlush`], whose
//! calls return only when the flush is done everywhere, before it drops the old frame.

use alloc::sync::Arc;

use crate::addr::{PhysAddr, VirtAddr, VirtRange};
use crate::tlb::PendingFlush;

/// Allocation failed: no physical memory (or no memory for page-table pages).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutOfMemory;

/// Reading a file page failed (device or file-system error); the fault becomes `SIGBUS`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoError;

bitflags::bitflags! {
    /// Hardware permission bits of one user leaf PTE, as the policy layer requests them.
    ///
    /// Every user mapping carries [`PagePerms::USER`]. [`PagePerms::WRITE`] is never passed
    /// without [`PagePerms::READ`] (Sv39 reserves W-without-R). A value with none of
    /// `READ`, `WRITE`, `EXEC` is a *retained, inaccessible* mapping (`PROT_NONE` after
    /// the page was populated): the MMU must keep the frame recorded in the PTE but make
    /// every user and kernel access through it fault (for example by clearing `V` and
    /// keeping a software "present" bit, as Linux's `PAGE_NONE`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct PagePerms: u8 {
        /// Loads allowed.
        const READ = 1 << 0;
        /// Stores allowed.
        const WRITE = 1 << 1;
        /// Instruction fetches allowed.
        const EXEC = 1 << 2;
        /// Accessible from U-mode.
        const USER = 1 << 3;
    }
}

impl PagePerms {
    /// Whether the PTE can be used by the hardware at all (any of R, W, X).
    #[inline]
    pub fn is_accessible(self) -> bool {
        self.intersects(PagePerms::READ | PagePerms::WRITE | PagePerms::EXEC)
    }
}

/// What a leaf PTE holds, as reported by [`Mmu::query`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PteInfo {
    /// The frame mapped.
    pub pa: PhysAddr,
    /// Its permissions.
    pub flags: PagePerms,
    /// The copy-on-write software bit: the frame may be shared with another address space
    /// and a write must copy it (or take it over when its reference count is 1).
    pub cow: bool,
    /// The hardware accessed bit (A).
    pub accessed: bool,
    /// The hardware dirty bit (D).
    pub dirty: bool,
    /// A 2 MiB leaf ([`HUGE_PAGE_SIZE`](crate::layout::HUGE_PAGE_SIZE)): `pa` is the first
    /// of its 512 frames, which are one huge frame with one reference count (its head's).
    pub huge: bool,
    /// The PTE lies in a leaf table that fork shares with other spaces, detached from
    /// this one ([`Mmu::share_range`]): the space must [`attach`](Mmu::attach) it before
    /// acting on what the PTE says (a copy-on-write decision counts references per
    /// table). Reported by [`query`](Mmu::query) only.
    pub shared: bool,
}

/// What the page table holds for one page ([`Mmu::query`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PteState {
    /// Nothing: a fault fills the page from its area.
    Absent,
    /// A present PTE.
    Present(PteInfo),
    /// Not present but remembered: the page's contents are in a swap slot
    /// ([`Mmu::remember`]).
    Remembered(SwapEntry),
}

/// A swap slot as a "not present, remembered" PTE holds it (Linux's `swp_entry_t`): the
/// swap area (0..32) and the slot in it (below 2^56), encoded in a non-zero token below
/// 2^62 (bit 0 set, area in bits 1-5, slot from bit 6), which fits the bits of a
/// non-present Sv39 PTE the hardware ignores.
///
/// Whoever supplies the frames counts the references to a slot: one per remembered PTE
/// ([`FrameSource::dup_remembered`] when `fork` copies one,
/// [`FrameSource::drop_remembered`] when `munmap`, `madvise(MADV_DONTNEED)` or teardown
/// removes one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SwapEntry(u64);

impl SwapEntry {
    /// Swap areas (Linux's `MAX_SWAPFILES` is 32 too).
    pub const AREAS: u8 = 32;
    /// Slots per area.
    pub const SLOTS: u64 = 1 << 56;

    /// The entry for `slot` of swap area `area`; `None` if either is out of range.
    pub const fn new(area: u8, slot: u64) -> Option<SwapEntry> {
        if area >= Self::AREAS || slot >= Self::SLOTS {
            return None;
        }
        Some(SwapEntry(1 | (area as u64) << 1 | slot << 6))
    }

    /// The entry a token holds, if it is one ([`token`](Self::token)'s inverse).
    pub const fn from_token(token: u64) -> Option<SwapEntry> {
        if token & 1 == 0 || token >> 62 != 0 {
            return None;
        }
        Some(SwapEntry(token))
    }

    /// The entry of a token this layer stored (no check: the page table holds no other
    /// remembered token).
    #[inline]
    pub(crate) const fn from_stored(token: u64) -> SwapEntry {
        SwapEntry(token)
    }

    /// The token stored in the PTE.
    pub const fn token(self) -> u64 {
        self.0
    }

    /// The swap area.
    pub const fn area(self) -> u8 {
        (self.0 >> 1) as u8 & (Self::AREAS - 1)
    }

    /// The slot in the area.
    pub const fn slot(self) -> u64 {
        self.0 >> 6
    }
}

impl PteState {
    /// The present PTE, if there is one.
    #[inline]
    pub fn present(self) -> Option<PteInfo> {
        match self {
            PteState::Present(pte) => Some(pte),
            PteState::Absent | PteState::Remembered(_) => None,
        }
    }
}

/// What `fork` does with one PTE ([`Mmu::copy_range`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CopyPte {
    /// The parent's new permissions and copy-on-write bit (`None`: unchanged).
    pub parent: Option<(PagePerms, bool)>,
    /// The frame, permissions and copy-on-write bit the child maps at the same address.
    pub child: (PhysAddr, PagePerms, bool),
}

/// The page table of one address space, user half only: 4 KiB leaves, and 2 MiB leaves
/// where the policy asks ([`map_huge`](Self::map_huge)), which the range methods
/// (`next_mapped`, `update_range`, `copy_range`, `unmap_range`, `teardown`) report once,
/// at their first address, with [`PteInfo::huge`] (the policy splits a 2 MiB leaf before
/// a range cuts it).
///
/// Every `va` passed is page aligned and below [`USER_END`](crate::layout::USER_END). The
/// methods never touch frame reference counts (the policy layer owns those). Those that
/// remove PTEs ([`unmap`](Self::unmap), [`unmap_range`](Self::unmap_range),
/// [`teardown`](Self::teardown)) flush the removed translations on every hart before they
/// hand a frame back; the others never flush (the policy layer asks the [`TlbFlush`]
/// supertrait for exactly the flushes needed).
pub trait Mmu: TlbFlush {
    /// Installs the leaf PTE for `va` → `pa` with `flags` and the copy-on-write bit,
    /// replacing any PTE already there. Allocates intermediate page-table pages as needed;
    /// `Err(OutOfMemory)` if that fails, in which case nothing changed.
    ///
    /// When `flags` contains [`PagePerms::EXEC`] the implementation must make instruction
    /// fetches observe the frame's current contents (RISC-V: `fence.i` on the harts that
    /// may run the space), since the frame was just written through another mapping.
    fn map(
        &mut self,
        va: VirtAddr,
        pa: PhysAddr,
        flags: PagePerms,
        cow: bool,
    ) -> Result<(), OutOfMemory>;

    /// Installs a 2 MiB leaf `va` → `pa` (both aligned to
    /// [`HUGE_PAGE_SIZE`](crate::layout::HUGE_PAGE_SIZE)) with `flags` and the
    /// copy-on-write bit, where the 2 MiB slot is empty or holds a 2 MiB leaf (replaced:
    /// the caller flushes the range before it drops the old frame). `Ok(false)` and
    /// nothing changed if 4 KiB entries are there, or if this table has no 2 MiB leaves
    /// (the default); `Err(OutOfMemory)` if a table page was needed and none could be
    /// had. The `EXEC` rule of [`map`](Self::map) applies.
    fn map_huge(
        &mut self,
        va: VirtAddr,
        pa: PhysAddr,
        flags: PagePerms,
        cow: bool,
    ) -> Result<bool, OutOfMemory> {
        let _ = (va, pa, flags, cow);
        Ok(false)
    }

    /// Whether [`map_huge`](Self::map_huge) at `va` (aligned) would find its slot empty:
    /// nothing at all mapped or remembered in the 2 MiB range. `false` for a table
    /// without 2 MiB leaves (the default).
    fn huge_slot_free(&self, va: VirtAddr) -> bool {
        let _ = va;
        false
    }

    /// Replaces the 2 MiB leaf covering `va`, if any, by 512 4 KiB leaves over the same
    /// frames with the same permissions and copy-on-write bit. Every address keeps its
    /// translation: nothing is flushed. `Err(OutOfMemory)` (nothing changed) if the
    /// table page for the 4 KiB entries could not be had.
    fn split_huge(&mut self, va: VirtAddr) -> Result<(), OutOfMemory> {
        let _ = va;
        Ok(())
    }

    /// Removes the leaf PTE for `va`, flushes its translation on every hart that may hold
    /// it, and returns the frame it mapped (`None` if nothing was mapped): the caller may
    /// free the frame at once. Freeing now-empty page-table pages is up to the
    /// implementation (after the same flush).
    fn unmap(&mut self, va: VirtAddr) -> Option<PhysAddr>;

    /// Replaces the permissions and copy-on-write bit of the PTE mapping `va`, keeping its
    /// frame. No effect if `va` is not mapped.
    fn protect(&mut self, va: VirtAddr, flags: PagePerms, cow: bool);

    /// What the table holds for `va`: a present PTE, a remembered entry, or nothing. The
    /// present PTE's frame is the one of `va`'s own 4 KiB page, also inside a 2 MiB leaf
    /// (whose first frame is that address rounded down to 2 MiB).
    fn query(&self, va: VirtAddr) -> PteState;

    /// Clears the hardware accessed bit (A) of the present PTE at `va`; whether it was
    /// set, i.e. whether the page was used since the bit was last cleared (or since it
    /// was mapped: new leaves carry A). No flush: a hart may keep using a cached
    /// translation without setting the bit again, so a page in use can look unused for a
    /// while; reclaim then takes it and the next access faults it back, which is correct,
    /// only slower (Linux's `ptep_clear_young` on RISC-V does the same).
    fn take_accessed(&mut self, va: VirtAddr) -> bool;

    /// Makes the page at `va` *remembered*: replaces what the table holds there by a
    /// non-present entry holding `entry`, flushes a replaced present PTE on every hart,
    /// and returns it (so its frame may be released at once). `Err(OutOfMemory)` if a
    /// table page was needed and none could be had; then nothing changed.
    fn remember(&mut self, va: VirtAddr, entry: SwapEntry) -> Result<Option<PteInfo>, OutOfMemory>;

    /// As [`remember`](Self::remember), but the flush of a replaced present PTE may be
    /// left owed in `pending` rather than done: the caller issues it
    /// ([`PendingFlush::issue`]) before it frees the returned frame or writes it out.
    /// Tables that cannot record a flush for later flush at once (this default).
    fn remember_deferred(
        &mut self,
        va: VirtAddr,
        entry: SwapEntry,
        pending: &mut PendingFlush,
    ) -> Result<Option<PteInfo>, OutOfMemory> {
        let _ = pending;
        self.remember(va, entry)
    }

    /// Visits every remembered entry in `[start, end)` in ascending address order, and
    /// clears it if `take` (a remembered entry is never in a TLB: nothing is flushed).
    fn remembered_range(
        &mut self,
        start: VirtAddr,
        end: VirtAddr,
        take: bool,
        f: impl FnMut(VirtAddr, SwapEntry),
    );

    /// The lowest mapped page in `[from, end)` with its PTE, or `None`. Implementations
    /// should skip empty page-table subtrees, so that walking a sparse range is cheap.
    fn next_mapped(&self, from: VirtAddr, end: VirtAddr) -> Option<(VirtAddr, PteInfo)>;

    /// Visits every PTE in `[start, end)` in one pass, in ascending address order: `f`
    /// sees each one's address and value and returns the permissions and copy-on-write
    /// bit to give it, or `None` to leave it as it is (no flush is requested, as for
    /// [`protect`](Self::protect)). The
    /// default uses [`next_mapped`](Self::next_mapped) and [`protect`](Self::protect); an
    /// implementation should override it with one walk of its table (`fork` and
    /// `mprotect` of large areas are dominated by this call).
    fn update_range(
        &mut self,
        start: VirtAddr,
        end: VirtAddr,
        mut f: impl FnMut(VirtAddr, PteInfo) -> Option<(PagePerms, bool)>,
    ) {
        let mut cursor = start;
        while let Some((va, pte)) = self.next_mapped(cursor, end) {
            if let Some((flags, cow)) = f(va, pte) {
                self.protect(va, flags, cow);
            }
            cursor = VirtAddr(va.0 + crate::addr::PAGE_SIZE);
        }
    }

    /// Removes every PTE of a space that no hart translates with any more (it is in no
    /// hart's `satp`), calling `f` on each only after the TLB flush that makes its frame
    /// reusable, so `f` may release frames at once. The space stays valid and empty. The
    /// default is [`unmap_range`](Self::unmap_range) over the whole user half; an
    /// implementation can flush the whole space first and visit each PTE once.
    fn teardown(&mut self, f: impl FnMut(VirtAddr, PteInfo)) {
        self.unmap_range(VirtAddr(0), crate::layout::USER_END, f);
    }

    /// Fork's copy of `[start, end)` into `child` (a space with nothing mapped there):
    /// for each PTE, `f` returns what the parent keeps and what the child maps at the
    /// same address ([`CopyPte`]), or `None` to skip it. If a child entry cannot be
    /// installed, `undo` gets that decision back (to drop what `f` took for it) and the
    /// copy stops with the error; entries copied before stay. No flush is requested. The
    /// default uses [`update_range`](Self::update_range) and [`map`](Self::map); an
    /// implementation should override it with one walk that fills the child's tables
    /// directly (fork of a large space is dominated by this call).
    fn copy_range(
        &mut self,
        child: &mut Self,
        start: VirtAddr,
        end: VirtAddr,
        mut f: impl FnMut(VirtAddr, PteInfo) -> Option<CopyPte>,
        mut undo: impl FnMut(VirtAddr, &CopyPte),
    ) -> Result<(), OutOfMemory>
    where
        Self: Sized,
    {
        let mut result = Ok(());
        self.update_range(start, end, |va, pte| {
            if result.is_err() {
                return None;
            }
            let c = f(va, pte)?;
            let (pa, flags, cow) = c.child;
            match child.map(va, pa, flags, cow) {
                Ok(()) => c.parent,
                Err(e) => {
                    undo(va, &c);
                    result = Err(e);
                    None
                }
            }
        });
        result
    }

    /// Fork's [`copy_range`](Self::copy_range) that may share leaf tables instead of
    /// copying them: each leaf table wholly inside `[start, end)` (an implementation
    /// chooses which; none by default) is detached from this space and given to `child`
    /// the same way, so that neither space's harts reach it and each space's first
    /// access [`attach`](Self::attach)es its own (`docs/virtual-memory.md`, "Shared page
    /// tables"); `f` is called only for the PTEs of the rest. Only for a range whose
    /// areas are private and copied copy-on-write: a PTE copied out of a shared table
    /// becomes read-only and copy-on-write, and its frame gains a reference, at that
    /// time. Flushes this space's translations if it detached a table. Returns how many
    /// tables it shared.
    fn share_range(
        &mut self,
        child: &mut Self,
        start: VirtAddr,
        end: VirtAddr,
        f: impl FnMut(VirtAddr, PteInfo) -> Option<CopyPte>,
        undo: impl FnMut(VirtAddr, &CopyPte),
    ) -> Result<usize, OutOfMemory>
    where
        Self: Sized,
    {
        self.copy_range(child, start, end, f, undo).map(|()| 0)
    }

    /// Makes the leaf table holding `va`'s PTE this space's own again if fork shared
    /// it ([`PteInfo::shared`]): links it back, or links a write-protected copy whose
    /// frames each gain a reference. Nothing to flush. `Err(OutOfMemory)` (nothing
    /// changed) if the copy's table page could not be had. The default has nothing to
    /// do.
    fn attach(&mut self, va: VirtAddr) -> Result<(), OutOfMemory> {
        let _ = va;
        Ok(())
    }

    /// [`attach`](Self::attach) for every shared leaf table covering part of
    /// `[start, end)`: the step before a range operation that cannot fail
    /// ([`update_range`](Self::update_range), [`unmap_range`](Self::unmap_range)).
    fn attach_range(&mut self, start: VirtAddr, end: VirtAddr) -> Result<(), OutOfMemory> {
        let _ = (start, end);
        Ok(())
    }

    /// Removes every PTE in `[start, end)`, calling `f` with each one's address and value
    /// (in address order) only after the flush that makes its frame unreachable has
    /// completed on every hart, so `f` may release the frame at once (flush, then free).
    /// The default walks with [`next_mapped`](Self::next_mapped) and
    /// [`unmap`](Self::unmap); an implementation should override it with one walk of its
    /// table and one batched flush (munmap and teardown of a large space are dominated by
    /// this call).
    fn unmap_range(
        &mut self,
        start: VirtAddr,
        end: VirtAddr,
        mut f: impl FnMut(VirtAddr, PteInfo),
    ) {
        let mut cursor = start;
        while let Some((va, pte)) = self.next_mapped(cursor, end) {
            self.unmap(va);
            f(va, pte);
            cursor = VirtAddr(va.0 + crate::addr::PAGE_SIZE);
        }
    }
}

/// Where the policy layer sends TLB-flush requests for its address space.
///
/// Each request names translations of *this* address space that may be cached on any hart
/// that ran it; when the call returns, no hart may use them any more (see the module's
/// flush rule). The implementation chooses how (per-page `sfence.vma` with the space's
/// ASID, a full flush above a threshold, remote shootdowns to the harts that ran it).
pub trait TlbFlush {
    /// Flushes the translation of the page at `va`.
    fn flush_page(&mut self, va: VirtAddr);
    /// Flushes every translation of pages in `range` (page-aligned bounds).
    fn flush_range(&mut self, range: VirtRange);
    /// Flushes every translation of the address space.
    fn flush_all(&mut self);
}

/// Physical frames with per-frame reference counts.
///
/// A frame returned by an allocation has reference count 1. The policy layer holds one
/// reference per PTE that maps the frame and one per shared-memory object slot holding it;
/// [`FrameSource::put`] frees the frame when the count reaches zero. The shared zero page
/// ([`FrameSource::zero_page`]) is never counted: the policy layer never calls `get`/`put`
/// on it and never writes to it. The methods take `&self`: the kernel's allocator is
/// global and internally synchronised, and reference counts are atomic.
pub trait FrameSource {
    /// Allocates a frame filled with zeros whose owner word is `owner` (the object it
    /// belongs to and its page index there, see [`MemObject`](super::MemObject); 0 for
    /// none): a frame is born with its owner, so the reverse map costs the fault path
    /// one store into metadata the allocation touches anyway.
    fn alloc_zeroed(&self, owner: u64) -> Result<PhysAddr, OutOfMemory>;
    /// Allocates a frame with unspecified contents (the caller overwrites all of it),
    /// with owner word `owner` as for [`alloc_zeroed`](Self::alloc_zeroed).
    fn alloc_uninit(&self, owner: u64) -> Result<PhysAddr, OutOfMemory>;
    /// Copies the 4 KiB of frame `src` into frame `dst`.
    fn copy_frame(&self, dst: PhysAddr, src: PhysAddr);
    /// Adds a reference to an allocated frame. A 4 KiB page inside a huge frame
    /// ([`alloc_huge`](Self::alloc_huge)) counts on the huge frame, here and in
    /// [`put`](Self::put), [`refcount`](Self::refcount) and [`owner`](Self::owner) (whose
    /// page index is then the huge frame's plus the page's place in it).
    fn get(&self, pa: PhysAddr);
    /// Drops a reference; returns `true` if it was the last one and the frame was freed.
    fn put(&self, pa: PhysAddr) -> bool;
    /// The current reference count of an allocated frame.
    fn refcount(&self, pa: PhysAddr) -> usize;
    /// The shared, always-zero, read-only frame mapped for reads of untouched memory.
    fn zero_page(&self) -> PhysAddr;
    /// The owner word an allocated frame was given at its allocation (the reverse map
    /// reads it).
    fn owner(&self, pa: PhysAddr) -> u64;
    /// Adds a reference to the swap slot of `entry` (`fork` copied a remembered PTE).
    fn dup_remembered(&self, entry: SwapEntry);
    /// Drops a reference to the swap slot of `entry` (a remembered PTE was removed).
    fn drop_remembered(&self, entry: SwapEntry);
    /// Allocates a huge frame: 512 contiguous frames aligned to 2 MiB with one reference
    /// count (the first frame's), zeroed if `zeroed`, with owner word `owner` for the
    /// first frame (the others' are `owner + i`, once split). `Err(OutOfMemory)` when no
    /// such block is free, or when the source gives no huge frames (the default): the
    /// caller falls back to 4 KiB frames.
    fn alloc_huge(&self, owner: u64, zeroed: bool) -> Result<PhysAddr, OutOfMemory> {
        let _ = (owner, zeroed);
        Err(OutOfMemory)
    }
    /// The shared, always-zero, read-only huge frame mapped for reads of untouched
    /// memory, if the source has one (never counted, like [`zero_page`](Self::zero_page)).
    fn huge_zero_page(&self) -> Option<PhysAddr> {
        None
    }
    /// Turns the huge frame at `head`, whose only reference the caller holds, into 512
    /// ordinary frames with one reference each (owner words `owner + i`), for a 2 MiB
    /// leaf that became 512 4 KiB leaves.
    fn split_huge(&self, head: PhysAddr) {
        let _ = head;
    }
    /// A write fault on a copy-on-write PTE mapping `pa`, whose count says another holder
    /// exists: if every other holder is a cache that can let go (the swap cache, holding
    /// a clean copy no swap entry names any more), it lets go and `true` says the
    /// caller's PTE now holds the only reference (the page is taken over, not copied).
    fn take_exclusive(&self, pa: PhysAddr) -> bool;
}

/// `FrameSource` through a pointer to one (`&T`, `Arc<T>`): every call forwarded.
macro_rules! forward_frame_source {
    ($($ptr:ty),*) => {$(
        impl<T: FrameSource + ?Sized> FrameSource for $ptr {
            fn alloc_zeroed(&self, owner: u64) -> Result<PhysAddr, OutOfMemory> {
                (**self).alloc_zeroed(owner)
            }
            fn alloc_uninit(&self, owner: u64) -> Result<PhysAddr, OutOfMemory> {
                (**self).alloc_uninit(owner)
            }
            fn copy_frame(&self, dst: PhysAddr, src: PhysAddr) {
                (**self).copy_frame(dst, src)
            }
            fn get(&self, pa: PhysAddr) {
                (**self).get(pa)
            }
            fn put(&self, pa: PhysAddr) -> bool {
                (**self).put(pa)
            }
            fn refcount(&self, pa: PhysAddr) -> usize {
                (**self).refcount(pa)
            }
            fn zero_page(&self) -> PhysAddr {
                (**self).zero_page()
            }
            fn owner(&self, pa: PhysAddr) -> u64 {
                (**self).owner(pa)
            }
            fn dup_remembered(&self, entry: SwapEntry) {
                (**self).dup_remembered(entry)
            }
            fn drop_remembered(&self, entry: SwapEntry) {
                (**self).drop_remembered(entry)
            }
            fn take_exclusive(&self, pa: PhysAddr) -> bool {
                (**self).take_exclusive(pa)
            }
            fn alloc_huge(&self, owner: u64, zeroed: bool) -> Result<PhysAddr, OutOfMemory> {
                (**self).alloc_huge(owner, zeroed)
            }
            fn huge_zero_page(&self) -> Option<PhysAddr> {
                (**self).huge_zero_page()
            }
            fn split_huge(&self, head: PhysAddr) {
                (**self).split_huge(head)
            }
        }
    )*};
}

forward_frame_source!(&T, Arc<T>);

/// The budget the pages of in-memory files are charged to ([`MemObject::memory`]: a tmpfs
/// instance's size cap). A page is charged when the object allocates it (a write, or a
/// fault of a shared mapping) and given back when the object lets it go (truncation, or
/// the object's release).
///
/// [`MemObject::memory`]: super::MemObject::memory
pub trait PageAccount: Send + Sync {
    /// Takes one page from the budget; `false` (and nothing taken) when it is spent.
    fn charge_page(&self) -> bool;
    /// Gives `pages` pages back.
    fn uncharge_pages(&self, pages: u64);
}

/// A read-only file that can back mappings (the initramfs files).
///
/// Its pages are read into frames on first touch: into the file's
/// [`MemObject`](super::MemObject) for shared mappings (one frame per file page, seen by
/// every mapper), into a private frame of the faulting space for private mappings. The
/// file never sees writes.
pub trait VmFile: Send + Sync {
    /// The file size in bytes.
    fn size(&self) -> u64;

    /// Fills the frame at `dst`: its first `len` bytes (`len <= PAGE_SIZE`) with the file
    /// bytes starting at `offset`, as far as the file extends, and every other byte of the
    /// 4 KiB frame with zeros. `offset` is page aligned.
    fn read_page(&self, offset: u64, len: usize, dst: PhysAddr) -> Result<(), IoError>;

    /// What names the file in a listing of mappings (`/proc/PID/maps`): `None` (the
    /// default) for a file without a name.
    fn identity(&self) -> Option<FileIdentity<'_>> {
        None
    }
}

/// A mapped file's name, as `/proc/PID/maps` shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileIdentity<'a> {
    /// The file system's device (`st_dev`).
    pub dev: u64,
    /// The inode number.
    pub ino: u64,
    /// The path.
    pub path: &'a str,
}
