//! Accounting snapshots and the leak check.

use core::fmt;

use super::meta::{FrameUse, ORDERS};

/// A snapshot of the allocator's counters (`FrameAllocator::stats`).
///
/// All counts are in 4 KiB frames except `free_blocks`. The snapshot is exact when no
/// allocation or free runs concurrently; otherwise each hart's part is exact at the
/// moment it was read.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Stats {
    /// Frames the allocator manages (the free ranges given to `init`).
    pub total: usize,
    /// Frames in the metadata span that are not managed (gaps between ranges).
    pub reserved: usize,
    /// Free frames: on the buddy lists plus in hart caches.
    pub free: usize,
    /// Of `free`, the frames sitting in hart caches.
    pub cached: usize,
    /// Allocated frames (`total - free`).
    pub used: usize,
    /// Allocated frames by use, indexed by [`FrameUse::index`] (the `Free`, `Tail` and
    /// `Reserved` entries are 0). Sums to `used`.
    pub used_by_use: [usize; FrameUse::COUNT],
    /// Free blocks on each buddy list, indexed by order (hart caches not included).
    pub free_blocks: [usize; ORDERS],
    /// High-water mark of frames taken out of the buddy lists (allocated or cached).
    /// An upper bound of the peak of `used`, above it by at most the frames the hart
    /// caches held at that moment.
    pub peak_used: usize,
}

impl Stats {
    /// Allocated frames used for `u`.
    #[inline]
    pub fn used_for(&self, u: FrameUse) -> usize {
        self.used_by_use[u.index()]
    }

    /// Compares the usage with an earlier `baseline`: `Ok` when every use has exactly as
    /// many frames allocated as then (and the total is unchanged); otherwise the
    /// differences. Frames moved into or out of hart caches do not count as leaks.
    pub fn check_no_leaks(&self, baseline: &Stats) -> Result<(), Leak> {
        let mut leak = Leak {
            frames: self.used.wrapping_sub(baseline.used) as isize,
            by_use: [0; FrameUse::COUNT],
        };
        for i in 0..FrameUse::COUNT {
            leak.by_use[i] = self.used_by_use[i].wrapping_sub(baseline.used_by_use[i]) as isize;
        }
        if leak.frames == 0 && leak.by_use.iter().all(|&d| d == 0) && self.total == baseline.total {
            Ok(())
        } else {
            Err(leak)
        }
    }
}

/// Usage differences found by [`Stats::check_no_leaks`] (positive: more frames in use
/// now than at the baseline).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Leak {
    /// Difference in allocated frames.
    pub frames: isize,
    /// Difference by use, indexed by [`FrameUse::index`].
    pub by_use: [isize; FrameUse::COUNT],
}

impl fmt::Display for Leak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:+} frames in use", self.frames)?;
        for u in FrameUse::ALL {
            let d = self.by_use[u.index()];
            if d != 0 {
                write!(f, ", {u:?} {d:+}")?;
            }
        }
        Ok(())
    }
}
