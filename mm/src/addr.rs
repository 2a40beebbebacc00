//! Address and page-number newtypes.
//!
//! Physical and virtual addresses are distinct types so that one is never used where
//! the other is meant. Page numbers ([`Pfn`], [`Vpn`]) are addresses shifted right by
//! [`PAGE_SHIFT`]. The only place that splits a virtual page number into its three Sv39
//! indices is [`Vpn::index`].

use core::fmt;
use core::ops::Range;

/// log2 of the base page size.
pub const PAGE_SHIFT: usize = 12;
/// The base page size (4 KiB).
pub const PAGE_SIZE: usize = 1 << PAGE_SHIFT;

/// Rounds `x` down to a multiple of `align` (a power of two).
#[inline]
pub const fn align_down(x: usize, align: usize) -> usize {
    x & !(align - 1)
}

/// Rounds `x` up to a multiple of `align` (a power of two); `None` on overflow.
#[inline]
pub const fn align_up(x: usize, align: usize) -> Option<usize> {
    match x.checked_add(align - 1) {
        Some(v) => Some(v & !(align - 1)),
        None => None,
    }
}

/// Whether `x` is a multiple of `align` (a power of two).
#[inline]
pub const fn is_aligned(x: usize, align: usize) -> bool {
    x & (align - 1) == 0
}

macro_rules! addr_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        #[repr(transparent)]
        pub struct $name(pub usize);

        impl $name {
            /// The raw address.
            #[inline]
            pub const fn as_usize(self) -> usize {
                self.0
            }
            /// Offset within its 4 KiB page.
            #[inline]
            pub const fn page_offset(self) -> usize {
                self.0 & (PAGE_SIZE - 1)
            }
            /// Whether the address is 4 KiB aligned.
            #[inline]
            pub const fn is_page_aligned(self) -> bool {
                self.page_offset() == 0
            }
            /// Rounded down to its page.
            #[inline]
            pub const fn page_down(self) -> Self {
                Self(align_down(self.0, PAGE_SIZE))
            }
            /// Adds `off` bytes; `None` on overflow.
            #[inline]
            pub const fn checked_add(self, off: usize) -> Option<Self> {
                match self.0.checked_add(off) {
                    Some(v) => Some(Self(v)),
                    None => None,
                }
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({:#x})"), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:#x}", self.0)
            }
        }
    };
}

addr_type!(
    /// A physical address.
    PhysAddr
);
addr_type!(
    /// A virtual address (Sv39: meaningful when canonical, see [`VirtAddr::is_canonical`]).
    VirtAddr
);

impl PhysAddr {
    /// The frame containing this address.
    #[inline]
    pub const fn pfn(self) -> Pfn {
        Pfn(self.0 >> PAGE_SHIFT)
    }
}

impl VirtAddr {
    /// The virtual page containing this address.
    #[inline]
    pub const fn vpn(self) -> Vpn {
        Vpn((self.0 >> PAGE_SHIFT) & ((1 << 27) - 1))
    }

    /// Whether the address is canonical for Sv39: bits 63..39 all equal bit 38.
    #[inline]
    pub const fn is_canonical(self) -> bool {
        let top = (self.0 as isize) >> 38;
        top == 0 || top == -1
    }
}

/// A physical frame number (physical address >> 12).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug)]
#[repr(transparent)]
pub struct Pfn(pub usize);

impl Pfn {
    /// The first byte of the frame.
    #[inline]
    pub const fn addr(self) -> PhysAddr {
        PhysAddr(self.0 << PAGE_SHIFT)
    }
}

/// A virtual page number: the 27 bits 38..12 of an Sv39 virtual address.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug)]
#[repr(transparent)]
pub struct Vpn(pub usize);

impl Vpn {
    /// The 9-bit page-table index for `level` (0 = leaf level, 2 = root), the single VPN
    /// helper the seed asked for.
    #[inline]
    pub const fn index(self, level: usize) -> usize {
        (self.0 >> (9 * level)) & 0x1ff
    }
}

/// A half-open range of physical addresses.
pub type PhysRange = Range<PhysAddr>;
/// A half-open range of virtual addresses.
pub type VirtRange = Range<VirtAddr>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_boundaries() {
        assert!(VirtAddr(0).is_canonical());
        assert!(VirtAddr(0x3f_ffff_ffff).is_canonical());
        assert!(!VirtAddr(0x40_0000_0000).is_canonical());
        assert!(!VirtAddr(0xffff_ffbf_ffff_ffff).is_canonical());
        assert!(VirtAddr(0xffff_ffc0_0000_0000).is_canonical());
        assert!(VirtAddr(usize::MAX).is_canonical());
    }

    #[test]
    fn vpn_indices() {
        let va = VirtAddr(0xffff_ffff_8020_1000);
        let vpn = va.vpn();
        assert_eq!(vpn.index(2), 510);
        assert_eq!(vpn.index(1), 1);
        assert_eq!(vpn.index(0), 1);
    }

    #[test]
    fn alignment() {
        assert_eq!(align_up(1, 4096), Some(4096));
        assert_eq!(align_up(usize::MAX, 4096), None);
        assert_eq!(align_down(4097, 4096), 4096);
        assert!(is_aligned(8192, 4096));
    }
}
