//! One entry of a table: reading and changing a leaf in place ([`LeafEntry`]), what an
//! unmap reports ([`Unmapped`]), and the entry-level checks and atomic updates every
//! walk uses.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::addr::{PhysAddr, VirtAddr, is_aligned};

use super::error::PagingError;
use super::pte::{PHYS_LIMIT, PageSize, Pte, PteFlags};

/// `flags` checked as leaf flags (`V` is added by the table code).
#[inline]
pub(super) fn leaf_flags(flags: PteFlags) -> Result<PteFlags, PagingError> {
    if flags.is_valid_leaf() {
        Ok(flags)
    } else {
        Err(PagingError::InvalidFlags)
    }
}

/// Checks a physical range: page-aligned and below Sv39's physical limit.
#[inline]
pub(super) fn check_phys(pa: PhysAddr, len: usize) -> Result<(), PagingError> {
    if !pa.is_page_aligned() {
        return Err(PagingError::Misaligned);
    }
    match pa.0.checked_add(len) {
        Some(end) if end <= PHYS_LIMIT => Ok(()),
        _ => Err(PagingError::OutOfRange),
    }
}

#[inline]
pub(super) fn load(slot: &AtomicU64) -> Pte {
    Pte::from_bits(slot.load(Ordering::Acquire))
}

/// Clears a leaf's slot, last seen holding `old`, and returns its final value. The only concurrent change to a leaf
/// is the hardware setting `A` or `D`; `D` matters (a written page must be written back)
/// and can appear only on a writable leaf that lacks it, so only then is an atomic swap
/// needed; otherwise a load and a store do. (`A` may be lost: the leaf is going away.)
#[inline]
pub(super) fn take_leaf(slot: &AtomicU64, old: Pte) -> Pte {
    let flags = old.flags();
    if flags.contains(PteFlags::W) && !flags.contains(PteFlags::D) {
        Pte::from_bits(slot.swap(0, Ordering::AcqRel))
    } else {
        slot.store(0, Ordering::Release);
        old
    }
}

/// Sets a leaf's flags (a legal leaf, without `V`) starting from its value `old`, keeping
/// the `A`/`D` bits the hardware may set concurrently.
#[inline]
pub(super) fn set_leaf_flags(slot: &AtomicU64, mut old: Pte, flags: PteFlags) {
    let hw = PteFlags::A.union(PteFlags::D);
    loop {
        let new = old.with_flags(flags.union(old.flags().intersection(hw)));
        match slot.compare_exchange(old.bits(), new.bits(), Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return,
            Err(now) => old = Pte::from_bits(now),
        }
    }
}

/// A leaf removed from a table (or the unmapped piece of a split huge leaf).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unmapped {
    /// First virtual address the leaf mapped.
    pub va: VirtAddr,
    /// First byte of the frame it mapped.
    pub pa: PhysAddr,
    /// Its size.
    pub size: PageSize,
    /// Its flags when it was removed (so `D` tells whether it was written).
    pub flags: PteFlags,
}

/// Something taken out of a page table whose reuse must wait for the TLB flush: what a
/// page-table operation's [`FlushBatch`] holds back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deferred {
    /// A leaf's frame (or the piece of a split huge leaf that was unmapped).
    Frame(Unmapped),
    /// A page-table page that became empty.
    Table(PhysAddr),
}

/// One leaf entry, to read or change in place (copy-on-write, accessed/dirty scans).
///
/// Every change is one atomic read-modify-write, so `A`/`D` bits set concurrently by the
/// hardware are kept. A change that removes permissions or replaces the frame must be
/// followed by a TLB flush of [`va`](Self::va) (record it in a
/// [`FlushBatch`]) before the old frame is reused.
pub struct LeafEntry<'a> {
    pub(super) slot: &'a AtomicU64,
    pub(super) va: VirtAddr,
    pub(super) size: PageSize,
}

impl LeafEntry<'_> {
    /// First virtual address of the leaf.
    #[inline]
    pub fn va(&self) -> VirtAddr {
        self.va
    }

    /// The leaf's size.
    #[inline]
    pub fn size(&self) -> PageSize {
        self.size
    }

    /// The entry's current value.
    #[inline]
    pub fn pte(&self) -> Pte {
        load(self.slot)
    }

    /// Replaces the flags with `f(old flags without V)`, atomically; returns the old entry.
    /// `f` may run more than once (if the hardware sets `A`/`D` meanwhile). Refused with
    /// [`PagingError::InvalidFlags`], changing nothing, if the result is not a legal leaf.
    pub fn update_flags(
        &self,
        mut f: impl FnMut(PteFlags) -> PteFlags,
    ) -> Result<Pte, PagingError> {
        let mut old = self.pte();
        loop {
            let flags = leaf_flags(f(old.flags().difference(PteFlags::V)))?;
            let new = old.with_flags(flags);
            match self.slot.compare_exchange(
                old.bits(),
                new.bits(),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Ok(old),
                Err(now) => old = Pte::from_bits(now),
            }
        }
    }

    /// Replaces all the flags (without `V`) with `flags`, keeping the `A` and `D` bits the
    /// hardware may have set; checked once, then one atomic compare-and-swap (retried only
    /// if the hardware changed the entry meanwhile). Refused with
    /// [`PagingError::InvalidFlags`], changing nothing, if `flags` is not a legal leaf.
    #[inline]
    pub fn set_flags(&self, flags: PteFlags) -> Result<(), PagingError> {
        let flags = leaf_flags(flags.difference(PteFlags::V))?;
        set_leaf_flags(self.slot, self.pte(), flags);
        Ok(())
    }

    /// Points the leaf at frame `pa` with `flags` (breaking copy-on-write); returns the
    /// old entry. `pa` must be aligned to the leaf size and below the physical limit.
    pub fn set_frame(&self, pa: PhysAddr, flags: PteFlags) -> Result<Pte, PagingError> {
        let flags = leaf_flags(flags)?;
        check_phys(pa, self.size.bytes())?;
        if !is_aligned(pa.0, self.size.bytes()) {
            return Err(PagingError::Misaligned);
        }
        let old = self
            .slot
            .swap(Pte::leaf(pa, flags).bits(), Ordering::AcqRel);
        Ok(Pte::from_bits(old))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::PAGE_SIZE;

    #[test]
    fn phys_checks() {
        assert_eq!(check_phys(PhysAddr(1), 0), Err(PagingError::Misaligned));
        assert_eq!(
            check_phys(PhysAddr(PHYS_LIMIT - PAGE_SIZE), PAGE_SIZE),
            Ok(())
        );
        assert_eq!(
            check_phys(PhysAddr(PHYS_LIMIT), PAGE_SIZE),
            Err(PagingError::OutOfRange)
        );
        assert_eq!(
            check_phys(PhysAddr(usize::MAX & !0xfff), PAGE_SIZE),
            Err(PagingError::OutOfRange)
        );
    }
}
