//! Size classes and slab geometry, all computed at compile time.
//!
//! A request of `size` bytes aligned to `align` goes to the smallest class whose object
//! size is at least `size` and whose object alignment is at least `align`. Objects of a
//! class start at offset 0 of a slab that is aligned to its own size, so an object's
//! alignment is the largest power of two dividing the class size: the size itself for the
//! powers of two, 16 for 48, 32 for 96, 64 for 192, ..., 1024 for 3072. A request whose
//! alignment exceeds that of the class its size would pick moves up to the next class that
//! is aligned enough; the page class (4096) is page aligned, so every `align <= 4096` fits.

use crate::addr::{PAGE_SHIFT, PAGE_SIZE};

/// Object sizes of the classes, ascending. Powers of two plus the 1.5x steps between them
/// (48, 96, ..., 3072), so rounding wastes at most a third of an object for sizes above 32.
pub const CLASS_SIZES: [usize; NUM_CLASSES] = [
    8, 16, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096,
];
/// Number of size classes, the page class included.
pub const NUM_CLASSES: usize = 17;
/// Index of the page class: one whole page per object, taken straight from the page source
/// without a slab header, cached per hart like the other classes.
pub const PAGE_CLASS: usize = NUM_CLASSES - 1;
/// The largest request (in bytes) served by a size class; larger ones go to the page source.
pub const MAX_CLASS_SIZE: usize = CLASS_SIZES[PAGE_CLASS];

/// Bytes reserved at the end of each slab for its header (one cache line).
pub const SLAB_HEADER_SIZE: usize = 64;
/// Largest slab: `2^MAX_SLAB_ORDER` pages.
pub const MAX_SLAB_ORDER: usize = 5;
/// A slab's order is the smallest whose unusable bytes (header plus tail) are at most
/// `1 / 2^WASTE_SHIFT` of the slab.
const WASTE_SHIFT: usize = 6;

/// Most objects a per-hart cache can hold for one class.
pub const MAGAZINE_SLOTS: usize = 64;
/// A per-hart cache holds at most about this many bytes of one class (at least 8 objects).
const MAGAZINE_BYTES: usize = 16 * 1024;

const fn objects_in(order: usize, size: usize) -> usize {
    ((PAGE_SIZE << order) - SLAB_HEADER_SIZE) / size
}

const fn slab_order_of(size: usize) -> usize {
    let mut order = 0;
    while order < MAX_SLAB_ORDER {
        let bytes = PAGE_SIZE << order;
        let waste = bytes - objects_in(order, size) * size;
        if waste <= bytes >> WASTE_SHIFT {
            break;
        }
        order += 1;
    }
    order
}

/// A per-class table whose entry for class `$c` is `$e`.
macro_rules! per_class {
    (|$c:ident| $e:expr) => {{
        let mut out = [0; NUM_CLASSES];
        let mut $c = 0;
        while $c < NUM_CLASSES {
            out[$c] = $e;
            $c += 1;
        }
        out
    }};
}

/// Slab order (pages = 2^order) of each slab class; 0 for the page class.
pub const SLAB_ORDER: [usize; NUM_CLASSES] = per_class!(|c| {
    if c == PAGE_CLASS {
        0
    } else {
        slab_order_of(CLASS_SIZES[c])
    }
});

/// Objects per slab of each slab class; 1 for the page class.
pub const SLAB_OBJECTS: [usize; NUM_CLASSES] = per_class!(|c| {
    if c == PAGE_CLASS {
        1
    } else {
        objects_in(SLAB_ORDER[c], CLASS_SIZES[c])
    }
});

/// Guaranteed alignment of each class's objects: the lowest set bit of the size.
pub const CLASS_ALIGN: [usize; NUM_CLASSES] = per_class!(|c| {
    let s = CLASS_SIZES[c];
    s & s.wrapping_neg()
});

/// Most objects of each class one hart's cache holds before half of them go back.
pub const MAGAZINE_LIMIT: [usize; NUM_CLASSES] = per_class!(|c| {
    let mut n = MAGAZINE_BYTES / CLASS_SIZES[c];
    if n > MAGAZINE_SLOTS {
        n = MAGAZINE_SLOTS;
    }
    if n < 8 {
        n = 8;
    }
    n & !1
});

/// Objects moved between a hart's cache and the shared slabs in one locked transfer.
pub const MAGAZINE_BATCH: [usize; NUM_CLASSES] = per_class!(|c| MAGAZINE_LIMIT[c] / 2);

/// `LOOKUP[(size + 7) / 8]`: the smallest class whose size is at least `size`.
const LOOKUP: [u8; MAX_CLASS_SIZE / 8 + 1] = {
    let mut out = [0u8; MAX_CLASS_SIZE / 8 + 1];
    let mut i = 0;
    let mut c = 0;
    while i < out.len() {
        while CLASS_SIZES[c] < i * 8 {
            c += 1;
        }
        out[i] = c as u8;
        i += 1;
    }
    out
};

/// The class serving `size` bytes at alignment `align` (a power of two), or `None` when the
/// request is larger than [`MAX_CLASS_SIZE`] or needs more than page alignment. A size of 0
/// is served like a size of 1.
#[inline]
pub const fn class_of(size: usize, align: usize) -> Option<usize> {
    if size > MAX_CLASS_SIZE || align > PAGE_SIZE {
        return None;
    }
    let mut c = LOOKUP[size.div_ceil(8)] as usize;
    // The page class is page aligned, so this stops there at the latest.
    while CLASS_ALIGN[c] < align {
        c += 1;
    }
    Some(c)
}

/// The page-source order of a request served directly by the page source: enough pages for
/// `size` bytes and a block aligned to at least `align` (blocks are naturally aligned).
/// `None` if the order would not fit a `usize` shift.
#[inline]
pub fn large_order(size: usize, align: usize) -> Option<usize> {
    let pages = size.div_ceil(PAGE_SIZE).max(1);
    let order = pages.next_power_of_two().trailing_zeros() as usize;
    let align_order = (align.trailing_zeros() as usize).saturating_sub(PAGE_SHIFT);
    let order = order.max(align_order);
    (order + PAGE_SHIFT < usize::BITS as usize).then_some(order)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry_is_tight() {
        for c in 0..PAGE_CLASS {
            let bytes = PAGE_SIZE << SLAB_ORDER[c];
            let used = SLAB_OBJECTS[c] * CLASS_SIZES[c];
            assert!(used + SLAB_HEADER_SIZE <= bytes, "class {c}");
            assert!(
                bytes - used <= bytes / 64,
                "class {c} wastes {}",
                bytes - used
            );
            assert!(SLAB_OBJECTS[c] >= 21, "class {c}");
            assert!(SLAB_OBJECTS[c] <= u32::MAX as usize);
        }
        assert!(CLASS_SIZES.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(CLASS_ALIGN[3], 16);
        assert_eq!(CLASS_ALIGN[PAGE_CLASS], PAGE_SIZE);
    }

    #[test]
    fn lookup_is_smallest_fitting_class() {
        for size in 0..=MAX_CLASS_SIZE {
            for shift in 0..=PAGE_SHIFT {
                let align = 1 << shift;
                let c = class_of(size, align).unwrap();
                assert!(CLASS_SIZES[c] >= size && CLASS_ALIGN[c] >= align);
                let smaller = (0..c).any(|d| CLASS_SIZES[d] >= size && CLASS_ALIGN[d] >= align);
                assert!(!smaller, "size {size} align {align}");
            }
        }
        assert_eq!(class_of(MAX_CLASS_SIZE + 1, 8), None);
        assert_eq!(class_of(8, 2 * PAGE_SIZE), None);
    }

    #[test]
    fn magazines_fit() {
        for c in 0..NUM_CLASSES {
            assert!(MAGAZINE_LIMIT[c] <= MAGAZINE_SLOTS && MAGAZINE_BATCH[c] >= 4);
        }
    }

    #[test]
    fn large_orders() {
        assert_eq!(large_order(4097, 8), Some(1));
        assert_eq!(large_order(8192, 8), Some(1));
        assert_eq!(large_order(8193, 8), Some(2));
        assert_eq!(large_order(12 * 1024, 8), Some(2));
        assert_eq!(large_order(100, 1 << 14), Some(2));
        assert_eq!(large_order(usize::MAX, 8), None);
    }
}
