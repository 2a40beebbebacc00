//! Size classes and slab geometry, all computed at compile time.
//!
//! # The classes
//!
//! Class sizes grow in fixed steps that double with the size, so that from 128 bytes up
//! adjacent classes are at most 1/8 apart, from 1 KiB up at most 1/16 and from 2 KiB up
//! at most 1/32 (82 classes in all):
//!
//! | sizes | step | classes |
//! |---|---|---|
//! | 8 ..= 32 | 8 | 8, 16, 24, 32 |
//! | 32 ..= 256 | 16 | 48, 64, 80, ..., 256 |
//! | 256 ..= 512 | 32 | 288, 320, ..., 512 |
//! | 512 ..= 4096 | 64 | 576, 640, ..., 4032, and the page class 4096 |
//!
//! Rounding a request up to its class wastes less than one step: under 1/8 of the object
//! from 128 bytes up and under 1/32 from 2 KiB up, where most of the bytes of a
//! log-uniform mix of sizes are (the benchmark's fill workload loses about 1.5 % of its
//! bytes to rounding, against 8.5 % with the former classes 1.5x apart; see
//! `docs/kernel-heap.md`).
//!
//! # Lookup
//!
//! Every class is a multiple of 8, so one byte per 8-byte step of request size,
//! `LOOKUP[(size + 7) / 8]`, names the smallest class that fits (513 bytes of table).
//! A request of `size` bytes aligned to `align` goes to the smallest class whose object
//! size is at least `size` and whose object alignment is at least `align`. Objects of a
//! class start at offset 0 of a slab that is aligned to its own size, so an object's
//! alignment is the largest power of two dividing the class size: 8 for 24, 16 for 48,
//! 64 for 576, 128 for 2176, ... A request whose alignment exceeds that of the class its
//! size picks moves up: every class aligned to `align` is a multiple of `align`, so the
//! search starts at the class of `size` rounded up to `align`, which is usually aligned
//! enough already; the page class (4096) is page aligned, so every `align <= 4096` fits.
//!
//! # Slabs
//!
//! A class's slab is the smallest block of `2^k` pages (k <= [`MAX_SLAB_ORDER`]) that
//! holds at least two objects and loses at most 1/128 of its bytes to the header and the
//! unusable tail; when no order is that tight (some classes above 768 bytes), the order
//! that loses the smallest share, which is always under 1/16. Slabs stay at most 64 KiB:
//! with 82 classes, the free objects left in each class's last slab add up, and larger
//! slabs held more memory idle than their tighter fit saved.

use crate::addr::{PAGE_SHIFT, PAGE_SIZE};

/// The class steps: `(last, step)` adds classes `step` apart up to `last`, starting
/// after the previous entry's `last`.
const STEPS: [(usize, usize); 6] = [(32, 8), (256, 16), (512, 32), (4096, 64), (0, 0), (0, 0)];

const fn count_classes() -> usize {
    let (mut n, mut size, mut i) = (0, 0, 0);
    while STEPS[i].1 != 0 {
        while size < STEPS[i].0 {
            size += STEPS[i].1;
            n += 1;
        }
        i += 1;
    }
    n
}

/// Number of size classes, the page class included.
pub const NUM_CLASSES: usize = count_classes();

/// Object sizes of the classes, ascending, from 8 bytes to one page (see the module
/// documentation for the steps).
pub const CLASS_SIZES: [usize; NUM_CLASSES] = {
    let mut out = [0; NUM_CLASSES];
    let (mut n, mut size, mut i) = (0, 0, 0);
    while STEPS[i].1 != 0 {
        while size < STEPS[i].0 {
            size += STEPS[i].1;
            out[n] = size;
            n += 1;
        }
        i += 1;
    }
    out
};
/// Index of the page class: one whole page per object, taken straight from the page source
/// without a slab header, cached per hart like the other classes.
pub const PAGE_CLASS: usize = NUM_CLASSES - 1;
/// The largest request (in bytes) served by a size class; larger ones go to the page source.
pub const MAX_CLASS_SIZE: usize = CLASS_SIZES[PAGE_CLASS];

const _: () = assert!(MAX_CLASS_SIZE == PAGE_SIZE && NUM_CLASSES <= u8::MAX as usize);

/// Bytes reserved at the end of each slab for its header (one cache line).
pub const SLAB_HEADER_SIZE: usize = 64;
/// Largest slab: `2^MAX_SLAB_ORDER` pages.
pub const MAX_SLAB_ORDER: usize = 4;
/// A slab's order is the smallest whose unusable bytes (header plus tail) are at most
/// `1 / 2^WASTE_SHIFT` of the slab, if there is one.
const WASTE_SHIFT: usize = 7;

/// Most objects a per-hart cache can hold for one class.
pub const MAGAZINE_SLOTS: usize = 64;
/// A per-hart cache holds at most about this many bytes of one class (at least
/// [`MAGAZINE_MIN`] objects).
pub const MAGAZINE_BYTES: usize = 4 * 1024;
/// Fewest objects a per-hart cache holds for one class (so a miss moves at least 2).
pub const MAGAZINE_MIN: usize = 2;
/// Most bytes one hart's caches hold over all classes together, roughly: a free that
/// takes a hart above it gives half of every magazine of that hart back (see
/// `docs/kernel-heap.md`, "Footprint").
pub const HART_CACHE_BYTES: usize = 128 * 1024;
/// Partial slabs of one class on one hart's own list at most (see `slab.rs`, "Hart
/// affinity"); a slab that would be one more goes to the class's shared list.
pub const HART_PARTIAL_SLABS: usize = 16;
/// Empty slabs the heap keeps for reuse, in pages, over all classes together: an emptied
/// slab beyond it goes back to the page source at once (the oldest first).
pub const EMPTY_RESERVE_PAGES: usize = 8;

const fn objects_in(order: usize, size: usize) -> usize {
    ((PAGE_SIZE << order) - SLAB_HEADER_SIZE) / size
}

const fn slab_order_of(size: usize) -> usize {
    // Smallest order with at least two objects and waste <= 1/2^WASTE_SHIFT; failing
    // that, the order with the smallest share of waste (ties: the smaller order).
    let (mut order, mut best, mut best_waste) = (0, MAX_SLAB_ORDER, PAGE_SIZE << MAX_SLAB_ORDER);
    while order <= MAX_SLAB_ORDER {
        let bytes = PAGE_SIZE << order;
        let n = objects_in(order, size);
        if n >= 2 {
            let waste = bytes - n * size;
            if waste <= bytes >> WASTE_SHIFT {
                return order;
            }
            // Compare shares: waste / bytes, scaled to the largest slab.
            let scaled = waste << (MAX_SLAB_ORDER - order);
            if scaled < best_waste {
                best = order;
                best_waste = scaled;
            }
        }
        order += 1;
    }
    best
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

/// Most objects of each class one hart's cache holds before half of them go back: about
/// [`MAGAZINE_BYTES`] worth, at least [`MAGAZINE_MIN`] and at most [`MAGAZINE_SLOTS`], even.
pub const MAGAZINE_LIMIT: [usize; NUM_CLASSES] = per_class!(|c| {
    let mut n = MAGAZINE_BYTES / CLASS_SIZES[c];
    if n > MAGAZINE_SLOTS {
        n = MAGAZINE_SLOTS;
    }
    if n < MAGAZINE_MIN {
        n = MAGAZINE_MIN;
    }
    n & !1
});

/// Objects moved between a hart's cache and the shared slabs in one locked transfer.
pub const MAGAZINE_BATCH: [usize; NUM_CLASSES] = per_class!(|c| MAGAZINE_LIMIT[c] / 2);

/// Where class `c`'s magazine starts in a hart's slot array: the magazines of one hart
/// are packed back to back, each [`MAGAZINE_LIMIT`] slots long.
pub const MAGAZINE_BASE: [usize; NUM_CLASSES] = per_class!(|c| {
    let mut base = 0;
    let mut d = 0;
    while d < c {
        base += MAGAZINE_LIMIT[d];
        d += 1;
    }
    base
});

/// Slots of all magazines of one hart together.
pub const HART_SLOTS: usize = MAGAZINE_BASE[PAGE_CLASS] + MAGAZINE_LIMIT[PAGE_CLASS];

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
    if CLASS_ALIGN[c] < align {
        // A class aligned to `align` is a multiple of `align`, so none below the class of
        // the rounded size qualifies; `size` and `align` are at most a page, so the
        // rounded size is too.
        c = LOOKUP[size.next_multiple_of(align).div_ceil(8)] as usize;
        // The page class is page aligned, so this stops there at the latest.
        while CLASS_ALIGN[c] < align {
            c += 1;
        }
    }
    Some(c)
}

/// Pages a single object of `layout` can keep from the page source on its own: its class's
/// slab (one page for the page class), or its block above the classes. The footprint
/// bound of `docs/kernel-heap.md` is a sum of these. `None` for an impossible layout.
pub fn slab_pages_of(layout: core::alloc::Layout) -> Option<usize> {
    match class_of(layout.size(), layout.align()) {
        Some(c) => Some(1 << SLAB_ORDER[c]),
        None => Some(1 << large_order(layout.size(), layout.align())?),
    }
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
            let size = CLASS_SIZES[c];
            let bytes = PAGE_SIZE << SLAB_ORDER[c];
            let used = SLAB_OBJECTS[c] * size;
            assert!(used + SLAB_HEADER_SIZE <= bytes, "class {c}");
            // Two objects at least: `Depot::give` relies on it.
            assert!(SLAB_OBJECTS[c] >= 2, "class {c}");
            assert!(SLAB_OBJECTS[c] <= u32::MAX as usize);
            // Small classes always find an order within 1/128; large ones may not within
            // 16 pages, and then take the tightest order, which loses under 1/16.
            let waste = bytes - used;
            if size <= 768 {
                assert!(waste <= bytes >> WASTE_SHIFT, "class {c} wastes {waste}");
            }
            assert!(waste <= bytes / 16, "class {c} wastes {waste}");
        }
        assert_eq!(CLASS_ALIGN[PAGE_CLASS], PAGE_SIZE);
    }

    #[test]
    fn classes_are_fine_grained() {
        assert!(CLASS_SIZES.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(&CLASS_SIZES[..6], &[8, 16, 24, 32, 48, 64]);
        assert!(CLASS_SIZES.iter().all(|s| s % 8 == 0));
        assert_eq!(CLASS_SIZES[PAGE_CLASS], PAGE_SIZE);
        // From 128 bytes up, neighbours are at most 1/8 apart, and at the large end (where
        // most bytes are) at most 1/16.
        for w in CLASS_SIZES.windows(2).filter(|w| w[0] >= 128) {
            assert!(w[1] * 8 <= w[0] * 9, "{w:?}");
            if w[0] >= 1024 {
                assert!(w[1] * 16 <= w[0] * 17, "{w:?}");
            }
        }
        assert_eq!(CLASS_ALIGN[2], 8);
        assert_eq!(CLASS_ALIGN[4], 16);
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
        let mut next = 0;
        for c in 0..NUM_CLASSES {
            assert!(MAGAZINE_LIMIT[c] <= MAGAZINE_SLOTS && MAGAZINE_BATCH[c] >= 1);
            assert!(
                MAGAZINE_LIMIT[c] * CLASS_SIZES[c]
                    <= MAGAZINE_BYTES.max(MAGAZINE_MIN * CLASS_SIZES[c])
            );
            assert_eq!(MAGAZINE_BASE[c], next, "magazines are packed");
            next += MAGAZINE_LIMIT[c];
        }
        assert_eq!(next, HART_SLOTS);
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
