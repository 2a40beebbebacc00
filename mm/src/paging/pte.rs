//! The Sv39 page-table entry, its flags, the leaf sizes and the table page.
//!
//! ```text
//!  63    54 53                     10 9   8 7 6 5 4 3 2 1 0
//! ┌────────┬─────────────────────────┬─────┬─┬─┬─┬─┬─┬─┬─┬─┐
//! │reserved│ PPN (44 bits)           │ RSW │D│A│G│U│X│W│R│V│
//! └────────┴─────────────────────────┴─────┴─┴─┴─┴─┴─┴─┴─┴─┘
//! ```
//!
//! An entry is one of four things, and [`Pte`] names each:
//! - **empty**: all zero (this library always writes empty entries as all-zero);
//! - **remembered**: V clear but not zero: not present (the hardware faults and ignores
//!   the other bits), holding a 63-bit token for whoever brings the page back (room for a
//!   swap entry; [`Pte::remembered`]), only at level 0;
//! - **table**: V set, R W X clear; the PPN is the next-level table page;
//! - **leaf**: V set and R or X set; the PPN is the first frame of a 4 KiB, 2 MiB or
//!   1 GiB page, aligned to that size (the level the leaf sits at decides the size).
//!
//! The reserved bits 63..54 (Svpbmt, Svnapot) are always written as zero.

use core::sync::atomic::AtomicU64;

use bitflags::bitflags;

use crate::addr::{PAGE_SHIFT, PAGE_SIZE, PhysAddr};
use crate::layout::{GIGAPAGE_SIZE, MEGAPAGE_SIZE};

/// Entries in one table page (each level of Sv39 indexes 9 bits).
pub const PTES_PER_TABLE: usize = 512;

/// Levels of the Sv39 tree: 2 is the root, 0 holds 4 KiB leaves.
pub const LEVELS: usize = 3;

/// Bit position of the PPN field in an entry.
const PPN_SHIFT: u32 = 10;
/// Width of the PPN field (Sv39 physical addresses have 56 bits).
const PPN_BITS: u32 = 44;
/// The PPN field, in place.
const PPN_MASK: u64 = ((1 << PPN_BITS) - 1) << PPN_SHIFT;

/// Bits of the token a remembered entry holds ([`Pte::remembered`]): all but `V`.
pub const REMEMBERED_TOKEN_BITS: u32 = 63;

/// One past the highest physical address an Sv39 entry can name (2^56).
pub const PHYS_LIMIT: usize = 1 << (PPN_BITS as usize + PAGE_SHIFT);

/// `satp.MODE` for Sv39, in place.
pub const SATP_MODE_SV39: usize = 8 << 60;
/// Bit position of `satp.ASID` (its width is [`crate::tlb::MAX_ASID_BITS`]).
pub const SATP_ASID_SHIFT: u32 = 44;

bitflags! {
    /// The ten flag bits of an Sv39 entry (bits 9..0).
    ///
    /// `V` is managed by the table code: callers pass the other bits and every leaf this
    /// library writes has `V` set. A leaf must have `R` or `X`; `W` without `R` is a
    /// reserved encoding (see [`PteFlags::is_valid_leaf`]).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
    pub struct PteFlags: u64 {
        /// Valid: the entry is a table pointer or a leaf.
        const V = 1 << 0;
        /// Readable.
        const R = 1 << 1;
        /// Writable (requires `R`).
        const W = 1 << 2;
        /// Executable.
        const X = 1 << 3;
        /// Accessible from user mode (and not, unless `sstatus.SUM`, from supervisor mode).
        const U = 1 << 4;
        /// Global: present in every address space; TLB entries survive per-ASID flushes.
        const G = 1 << 5;
        /// Accessed since the bit was last cleared.
        const A = 1 << 6;
        /// Written since the bit was last cleared.
        const D = 1 << 7;
        /// First software bit (RSW bit 8), ignored by the hardware; the VM layer uses it
        /// to mark a copy-on-write page.
        const RSW0 = 1 << 8;
        /// Second software bit (RSW bit 9), ignored by the hardware; free for the VM layer.
        const RSW1 = 1 << 9;
    }
}

impl PteFlags {
    /// The permission bits that [`PageTable::protect_range`](super::PageTable::protect_range)
    /// replaces; all other bits of a leaf are kept.
    pub const PERMISSIONS: Self = Self::R.union(Self::W).union(Self::X).union(Self::U);

    /// Whether `self` (ignoring `V`) is a legal leaf: `R` or `X` set, and `W` only with `R`.
    #[inline]
    pub const fn is_valid_leaf(self) -> bool {
        let rx = self.intersects(Self::R.union(Self::X));
        let w_without_r = self.contains(Self::W) && !self.contains(Self::R);
        rx && !w_without_r
    }
}

/// The size of a leaf, named by the level it sits at (4 KiB at level 0, 2 MiB at level 1,
/// 1 GiB at level 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PageSize {
    /// A 4 KiB page, a level-0 leaf.
    Size4K = 0,
    /// A 2 MiB megapage, a level-1 leaf.
    Size2M = 1,
    /// A 1 GiB gigapage, a level-2 leaf.
    Size1G = 2,
}

impl PageSize {
    /// Every size, largest first (the order in which a range mapping tries them).
    pub const LARGEST_FIRST: [PageSize; LEVELS] = [Self::Size1G, Self::Size2M, Self::Size4K];

    /// Bytes covered by a leaf of this size.
    #[inline]
    pub const fn bytes(self) -> usize {
        match self {
            Self::Size4K => PAGE_SIZE,
            Self::Size2M => MEGAPAGE_SIZE,
            Self::Size1G => GIGAPAGE_SIZE,
        }
    }

    /// The table level a leaf of this size sits at.
    #[inline]
    pub const fn level(self) -> usize {
        self as usize
    }

    /// The size of a leaf at `level` (0, 1 or 2).
    #[inline]
    pub(crate) const fn at_level(level: usize) -> Self {
        match level {
            0 => Self::Size4K,
            1 => Self::Size2M,
            _ => Self::Size1G,
        }
    }

    /// Number of 4 KiB pages covered by a leaf of this size.
    #[inline]
    pub const fn pages(self) -> usize {
        self.bytes() / PAGE_SIZE
    }
}

/// A page-table entry value (a copy; the entries themselves live in a [`TablePage`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(transparent)]
pub struct Pte(u64);

impl Pte {
    /// The empty entry (all zero).
    pub const EMPTY: Self = Self(0);

    /// A leaf for frame `pa` with `flags`; `V` is added. The caller has checked that `pa`
    /// is below [`PHYS_LIMIT`] and that `flags` is a valid leaf.
    #[inline]
    pub const fn leaf(pa: PhysAddr, flags: PteFlags) -> Self {
        Self(Self::ppn_field(pa) | flags.union(PteFlags::V).bits())
    }

    /// A *remembered* entry: not present (`V` clear, so the hardware ignores the rest and
    /// faults), holding `token` in bits 63..1 for the software that will bring the page
    /// back (a swap entry). `None` unless `0 < token < 2^63`.
    #[inline]
    pub const fn remembered(token: u64) -> Option<Self> {
        if token == 0 || token >> REMEMBERED_TOKEN_BITS != 0 {
            return None;
        }
        Some(Self(token << 1))
    }

    /// The token of a remembered entry (`V` clear, not empty), `None` for any other.
    #[inline]
    pub const fn remembered_token(self) -> Option<u64> {
        if self.is_valid() || self.0 == 0 {
            return None;
        }
        Some(self.0 >> 1)
    }

    /// A level-1 entry for the leaf table at `pa` that fork shares between trees and
    /// that is *detached* from this one: not valid (the hardware faults on every address
    /// it covers), `R` set as the mark, the table in the PPN field. Only level 1 holds
    /// such entries (`share` in `table`); below, the shared table's own entries.
    #[inline]
    pub(crate) const fn detached(pa: PhysAddr) -> Self {
        Self(Self::ppn_field(pa) | PteFlags::R.bits())
    }

    /// Whether this level-1 entry is [`detached`](Self::detached).
    #[inline]
    pub(crate) const fn is_detached(self) -> bool {
        self.0 & (PteFlags::V.bits() | PteFlags::R.bits()) == PteFlags::R.bits()
    }

    /// A pointer to the next-level table page at `pa`.
    #[inline]
    pub(crate) const fn table(pa: PhysAddr) -> Self {
        Self(Self::ppn_field(pa) | PteFlags::V.bits())
    }

    #[inline]
    const fn ppn_field(pa: PhysAddr) -> u64 {
        ((pa.0 >> PAGE_SHIFT) as u64) << PPN_SHIFT & PPN_MASK
    }

    /// An entry from its raw bits (as read by hardware).
    #[inline]
    pub const fn from_bits(bits: u64) -> Self {
        Self(bits)
    }

    /// The raw bits.
    #[inline]
    pub const fn bits(self) -> u64 {
        self.0
    }

    /// The flag bits (9..0).
    #[inline]
    pub const fn flags(self) -> PteFlags {
        PteFlags::from_bits_truncate(self.0)
    }

    /// The physical address in the PPN field (the frame of a leaf, the page of a table).
    #[inline]
    pub const fn pa(self) -> PhysAddr {
        PhysAddr((((self.0 & PPN_MASK) >> PPN_SHIFT) as usize) << PAGE_SHIFT)
    }

    /// Whether `V` is set.
    #[inline]
    pub const fn is_valid(self) -> bool {
        self.0 & PteFlags::V.bits() != 0
    }

    /// Whether the entry is a leaf (`V` and at least one of `R W X`).
    #[inline]
    pub const fn is_leaf(self) -> bool {
        self.is_valid()
            && self.0 & (PteFlags::R.bits() | PteFlags::W.bits() | PteFlags::X.bits()) != 0
    }

    /// Whether the entry points to a next-level table (`V` and none of `R W X`).
    #[inline]
    pub const fn is_table(self) -> bool {
        self.is_valid() && !self.is_leaf()
    }

    /// The same entry with its flag bits replaced by `flags` (`V` kept as it was).
    #[inline]
    pub const fn with_flags(self, flags: PteFlags) -> Self {
        let v = self.0 & PteFlags::V.bits();
        Self((self.0 & !PteFlags::all().bits()) | flags.difference(PteFlags::V).bits() | v)
    }
}

impl core::fmt::Debug for Pte {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Pte")
            .field("pa", &self.pa())
            .field("flags", &self.flags())
            .finish()
    }
}

/// One table page: 512 entries.
///
/// Entries are atomics because the hardware walker reads them concurrently with the
/// kernel and, with hardware A/D updating (Svadu), writes them too: this library changes a
/// live leaf with one atomic read-modify-write, so an `A` or `D` bit set by the hardware
/// in between is never lost. Relaxed loads and stores compile to plain `ld`/`sd`.
#[repr(C, align(4096))]
pub struct TablePage(pub [AtomicU64; PTES_PER_TABLE]);

const _: () = assert!(core::mem::size_of::<TablePage>() == PAGE_SIZE);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode() {
        let pa = PhysAddr(0x8020_3000);
        let pte = Pte::leaf(pa, PteFlags::R | PteFlags::W | PteFlags::RSW0);
        assert_eq!(pte.pa(), pa);
        assert!(pte.is_leaf() && !pte.is_table());
        assert_eq!(
            pte.flags(),
            PteFlags::V | PteFlags::R | PteFlags::W | PteFlags::RSW0
        );
        assert_eq!(pte.bits() >> 54, 0);
        let table = Pte::table(pa);
        assert!(table.is_table() && !table.is_leaf());
        assert!(!Pte::EMPTY.is_valid());
        assert_eq!(Pte::EMPTY.remembered_token(), None);
        let r = Pte::remembered(0x1234).unwrap();
        assert!(!r.is_valid() && !r.is_leaf() && !r.is_table());
        assert_eq!(r.remembered_token(), Some(0x1234));
        assert_eq!(Pte::remembered(0), None);
        assert_eq!(Pte::remembered(1 << 63), None);
        assert_eq!(
            Pte::remembered((1 << 63) - 1).unwrap().remembered_token(),
            Some((1 << 63) - 1)
        );
        let top = PhysAddr(PHYS_LIMIT - PAGE_SIZE);
        assert_eq!(Pte::leaf(top, PteFlags::R).pa(), top);
    }

    #[test]
    fn with_flags_keeps_pa_and_v() {
        let pte = Pte::leaf(PhysAddr(0x1000), PteFlags::R | PteFlags::A);
        let changed = pte.with_flags(PteFlags::X | PteFlags::U);
        assert_eq!(changed.pa(), PhysAddr(0x1000));
        assert_eq!(changed.flags(), PteFlags::V | PteFlags::X | PteFlags::U);
    }

    #[test]
    fn leaf_flag_rules() {
        assert!(PteFlags::R.is_valid_leaf());
        assert!(PteFlags::X.is_valid_leaf());
        assert!((PteFlags::R | PteFlags::W).is_valid_leaf());
        assert!(!PteFlags::W.is_valid_leaf());
        assert!(!(PteFlags::W | PteFlags::X).is_valid_leaf());
        assert!(!PteFlags::U.is_valid_leaf());
    }

    #[test]
    fn sizes() {
        for (level, size) in [PageSize::Size4K, PageSize::Size2M, PageSize::Size1G]
            .into_iter()
            .enumerate()
        {
            assert_eq!(size.level(), level);
            assert_eq!(PageSize::at_level(level), size);
            assert_eq!(size.bytes(), PAGE_SIZE << (9 * level));
        }
    }
}
