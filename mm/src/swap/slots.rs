//! The slots of one swap area: who references each slot, which frame caches it, and
//! where the next page goes.
//!
//! A slot's reference count is the number of swap entries (remembered PTEs) naming it,
//! plus one while the swap cache holds a frame for it. A count of 0 is a free slot.
//!
//! ```text
//!  slot:   count | cache
//!  free:     0   |   -
//!  reclaim:  1   | frame F, busy        alloc(): the cache's reference
//!            1+n | F, busy             n PTEs turned into entries (dup)
//!            1+n | F                   written: F freed, cache entry dropped (put) ──►
//!             n  |   -                 on the disk only
//!  fault:    1+n | G, busy             read into a fresh frame G (cache: +1)
//!            n   | G                   one PTE maps G again (put)
//!  munmap/exit: put per entry; the last entry's put frees the slot
//! ```
//!
//! Allocation is clustered like Linux's: slots are handed out sequentially inside a
//! cluster of [`CLUSTER`] slots, and a new cluster is started only when one is entirely
//! free, so pages reclaimed together land in one run on the disk (a sequential write,
//! and a cheap read-ahead later); when no cluster is entirely free, any free slot is
//! used.

use alloc::collections::TryReserveError;
use alloc::vec::Vec;

/// Slots per cluster (1 MiB of 4 KiB pages, as Linux's `SWAPFILE_CLUSTER`).
pub const CLUSTER: u64 = 256;

/// "No frame" in a slot's cache word.
const NO_FRAME: u32 = u32::MAX;
/// The cache word's bit for a transfer in flight.
const BUSY: u32 = 1 << 31;
/// The cache word's bit for "the slot holds the frame's contents".
const WRITTEN: u32 = 1 << 30;
/// The cache word's frame index bits.
const FRAME_BITS: u32 = !(BUSY | WRITTEN);
/// A slot's count that marks it unusable (a bad page, or the header page 0).
const UNUSABLE: u32 = u32::MAX;

/// The swap cache's entry for a slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cached {
    /// The frame (its index, as the frame allocator numbers frames) holding the page.
    pub frame: u32,
    /// A read or write of the frame is in flight: wait for it before using the frame.
    pub busy: bool,
    /// The slot holds the same bytes as the frame: the page was read from it, or written
    /// to it, and has not changed since (a cached page is mapped read-only, and its first
    /// write takes it out of the cache). Reclaiming it again needs no write.
    pub written: bool,
}

/// One swap area's slots. Slot 0 is the header and is never handed out.
#[derive(Debug)]
pub struct SwapMap {
    counts: Vec<u32>,
    cache: Vec<u32>,
    /// Free slots per cluster.
    cluster_free: Vec<u32>,
    /// Where the current cluster's next slot is looked for.
    next: u64,
    /// Where the search for a new, entirely free cluster starts.
    next_cluster: usize,
    free: u64,
    usable: u64,
}

impl SwapMap {
    /// The map of an area whose slots are `1..=last`, without `bad` ones; `Err` if the
    /// maps cannot be allocated.
    pub fn new(last: u64, bad: impl IntoIterator<Item = u64>) -> Result<SwapMap, TryReserveError> {
        let slots = last as usize + 1;
        let mut counts = Vec::new();
        counts.try_reserve_exact(slots)?;
        counts.resize(slots, 0);
        let mut cache = Vec::new();
        cache.try_reserve_exact(slots)?;
        cache.resize(slots, NO_FRAME);
        let clusters = slots.div_ceil(CLUSTER as usize);
        let mut cluster_free = Vec::new();
        cluster_free.try_reserve_exact(clusters)?;
        cluster_free.resize(clusters, 0);
        counts[0] = UNUSABLE;
        for b in bad {
            if let Some(c) = counts.get_mut(b as usize) {
                *c = UNUSABLE;
            }
        }
        let mut usable = 0;
        for (i, &c) in counts.iter().enumerate() {
            if c == 0 {
                cluster_free[i / CLUSTER as usize] += 1;
                usable += 1;
            }
        }
        Ok(SwapMap {
            counts,
            cache,
            cluster_free,
            next: 1,
            next_cluster: 0,
            free: usable,
            usable,
        })
    }

    /// Usable slots (the area's size in pages, without the header and bad pages).
    pub fn usable(&self) -> u64 {
        self.usable
    }

    /// The number of slot numbers, usable or not (slots are `0..slots()`).
    pub fn slots(&self) -> u64 {
        self.counts.len() as u64
    }

    /// Free slots.
    pub fn free(&self) -> u64 {
        self.free
    }

    /// A slot's reference count (0: free, or not a slot of this area).
    pub fn count(&self, slot: u64) -> u32 {
        match self.counts.get(slot as usize) {
            Some(&UNUSABLE) | None => 0,
            Some(&c) => c,
        }
    }

    /// Takes a free slot, its count 1 (the caller's reference); `None` if the area is full.
    pub fn alloc(&mut self) -> Option<u64> {
        if self.free == 0 {
            return None;
        }
        let slot = self.in_cluster(self.next).or_else(|| self.new_cluster())?;
        self.counts[slot as usize] = 1;
        self.cluster_free[(slot / CLUSTER) as usize] -= 1;
        self.free -= 1;
        self.next = slot + 1;
        Some(slot)
    }

    /// The first free slot at or after `from` in `from`'s cluster.
    fn in_cluster(&self, from: u64) -> Option<u64> {
        let end = ((from / CLUSTER + 1) * CLUSTER).min(self.counts.len() as u64);
        (from..end).find(|&s| self.counts[s as usize] == 0)
    }

    /// The first slot of an entirely free cluster (searching on from the last one
    /// started), else any free slot.
    fn new_cluster(&mut self) -> Option<u64> {
        let n = self.cluster_free.len();
        let full = |c: usize| {
            let start = c as u64 * CLUSTER;
            let len = (self.counts.len() as u64 - start).min(CLUSTER);
            u64::from(self.cluster_free[c]) == len
        };
        if let Some(c) = (0..n)
            .map(|i| (self.next_cluster + i) % n)
            .find(|&c| self.cluster_free[c] > 0 && full(c))
        {
            self.next_cluster = (c + 1) % n;
            return self.in_cluster(c as u64 * CLUSTER);
        }
        let c = (0..n).find(|&c| self.cluster_free[c] > 0)?;
        self.in_cluster(c as u64 * CLUSTER)
    }

    /// Adds a reference to a slot in use (`fork` copied an entry); `false` if the slot is
    /// free or not of this area, or its count would overflow.
    pub fn dup(&mut self, slot: u64) -> bool {
        match self.counts.get_mut(slot as usize) {
            Some(c) if *c != 0 && *c < UNUSABLE - 1 => {
                *c += 1;
                true
            }
            _ => false,
        }
    }

    /// Drops a reference to a slot; returns the count left (0: the slot is free again).
    /// Dropping a free or foreign slot changes nothing.
    pub fn put(&mut self, slot: u64) -> u32 {
        let Some(c) = self.counts.get_mut(slot as usize) else {
            return 0;
        };
        if *c == 0 || *c == UNUSABLE {
            return 0;
        }
        *c -= 1;
        if *c == 0 {
            self.cache[slot as usize] = NO_FRAME;
            self.cluster_free[(slot / CLUSTER) as usize] += 1;
            self.free += 1;
        }
        *c
    }

    /// The swap cache's entry for `slot`, if a frame holds its page.
    pub fn cached(&self, slot: u64) -> Option<Cached> {
        let &w = self.cache.get(slot as usize)?;
        (w != NO_FRAME).then_some(Cached {
            frame: w & FRAME_BITS,
            busy: w & BUSY != 0,
            written: w & WRITTEN != 0,
        })
    }

    /// Sets or clears the swap cache's entry for a slot in use (frame indices must be
    /// below 2^30). Ignored for a free slot.
    pub fn set_cached(&mut self, slot: u64, entry: Option<Cached>) {
        if self.count(slot) == 0 {
            return;
        }
        self.cache[slot as usize] = match entry {
            Some(c) => {
                (c.frame & FRAME_BITS)
                    | if c.busy { BUSY } else { 0 }
                    | if c.written { WRITTEN } else { 0 }
            }
            None => NO_FRAME,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::BTreeMap;
    use alloc::vec;

    #[test]
    fn slots_come_in_sequential_runs_and_skip_bad_pages() {
        let mut m = SwapMap::new(1000, [5]).unwrap();
        assert_eq!(m.usable(), 999);
        let got: Vec<u64> = (0..6).map(|_| m.alloc().unwrap()).collect();
        assert_eq!(got, vec![1, 2, 3, 4, 6, 7]);
        assert_eq!(m.free(), 993);
    }

    #[test]
    fn a_new_cluster_is_started_only_when_one_is_entirely_free() {
        let mut m = SwapMap::new(4 * CLUSTER - 1, []).unwrap();
        let first: Vec<u64> = (0..CLUSTER + 10).map(|_| m.alloc().unwrap()).collect();
        // Free a hole in cluster 0: the allocator keeps writing cluster 1 sequentially,
        // then starts cluster 2 (entirely free), not the hole.
        for &s in &first[10..20] {
            assert_eq!(m.put(s), 0);
        }
        let next: Vec<u64> = (0..CLUSTER).map(|_| m.alloc().unwrap()).collect();
        assert_eq!(next[0], CLUSTER + 11);
        assert!(next.windows(2).all(|w| w[1] == w[0] + 1));
        assert_eq!(*next.last().unwrap(), 2 * CLUSTER + 10);
    }

    #[test]
    fn counts_and_cache_entries() {
        let mut m = SwapMap::new(10, []).unwrap();
        let s = m.alloc().unwrap();
        assert!(m.dup(s));
        for (busy, written) in [(true, false), (false, true), (true, true)] {
            let c = Cached {
                frame: 42,
                busy,
                written,
            };
            m.set_cached(s, Some(c));
            assert_eq!(m.cached(s), Some(c));
        }
        assert_eq!(m.put(s), 1);
        assert_eq!(m.put(s), 0);
        assert_eq!(m.cached(s), None);
        assert!(!m.dup(s));
        assert_eq!(m.put(s), 0);
        assert!(!m.dup(0));
        assert_eq!(m.put(0), 0);
        assert_eq!(m.put(1000), 0);
    }

    /// Random operations against a model: counts, the free total and "every slot handed
    /// out was free" always agree.
    #[test]
    fn random_operations_match_a_model() {
        use proptest::prelude::*;
        proptest!(ProptestConfig::with_cases(200), |(ops in proptest::collection::vec((0u8..3, 0usize..64), 1..400))| {
            let mut m = SwapMap::new(3 * CLUSTER / 2, [7, 300]).unwrap();
            let mut model: BTreeMap<u64, u32> = BTreeMap::new();
            for (op, pick) in ops {
                let live: Vec<u64> = model.keys().copied().collect();
                match op {
                    0 => match m.alloc() {
                        Some(s) => {
                            prop_assert!(!model.contains_key(&s) && s != 0 && s != 7 && s != 300);
                            model.insert(s, 1);
                        }
                        None => prop_assert_eq!(model.len() as u64, m.usable()),
                    },
                    1 if !live.is_empty() => {
                        let s = live[pick % live.len()];
                        prop_assert!(m.dup(s));
                        *model.get_mut(&s).unwrap() += 1;
                    }
                    _ if !live.is_empty() => {
                        let s = live[pick % live.len()];
                        let left = m.put(s);
                        let c = model.get_mut(&s).unwrap();
                        *c -= 1;
                        prop_assert_eq!(left, *c);
                        if *c == 0 {
                            model.remove(&s);
                        }
                    }
                    _ => {}
                }
                prop_assert_eq!(m.free(), m.usable() - model.len() as u64);
            }
            for (s, c) in model {
                prop_assert_eq!(m.count(s), c);
            }
        });
    }
}
