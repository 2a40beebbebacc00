//! ASIDs with generations.
//!
//! # Protocol
//!
//! Every address space owns an [`AsidContext`]: its current *context id* (generation
//! and ASID packed in one word) and the set of harts that have run it. On every switch to
//! a space, the kernel calls [`AsidAllocator::asid_for`], loads `satp` with the returned
//! ASID and, if told so, flushes its whole TLB first.
//!
//! - ASID 0 is never handed to a user space (the kernel runs its own table with it).
//! - Within one generation, no two spaces are given the same ASID, and ASIDs are not
//!   freed when a space dies: its stale TLB entries can never be used by anyone, because
//!   its ASID is handed out again only in a later generation.
//! - When the ASIDs of a generation run out, a new generation begins: the bitmap is
//!   cleared, except for the ASID each hart is running right now (its *reserved* ASID,
//!   so that a space running on some hart keeps its ASID across the rollover, and
//!   shootdowns by that ASID keep reaching it), and every hart is marked as needing one
//!   full flush, which it performs at its next switch, before it uses any ASID of the new
//!   generation.
//! - Fast path (the space's generation is current): one compare-and-swap on the hart's
//!   *active* id, no lock. A rollover clears every hart's active id first, so a fast
//!   path racing with it fails its compare-and-swap and takes the slow path, under the
//!   allocator's lock.
//! - When the hardware has too few ASID bits for every hart to keep one across a rollover
//!   plus one to allocate (including zero bits), ASIDs are not used at all: every space
//!   runs with ASID 0 and every switch flushes.

use core::sync::atomic::{AtomicU64, Ordering};

use spin::Mutex;

use super::hart::{AtomicHartMask, HartMask};
use crate::layout::MAX_HARTS;

/// Widest ASID `satp` holds on RV64.
pub const MAX_ASID_BITS: u32 = 16;

/// Bits of a context id below the generation.
const GEN_SHIFT: u32 = MAX_ASID_BITS;
const ASID_MASK: u64 = (1 << GEN_SHIFT) - 1;
const BITMAP_WORDS: usize = (1 << MAX_ASID_BITS) / 64;

#[inline]
const fn generation_of(id: u64) -> u64 {
    id >> GEN_SHIFT
}

#[inline]
const fn asid_of(id: u64) -> u16 {
    (id & ASID_MASK) as u16
}

#[inline]
const fn make_id(generation: u64, asid: usize) -> u64 {
    generation << GEN_SHIFT | asid as u64
}

/// The ASID state of one address space, and which harts may cache its translations.
///
/// # Targeted shootdown
///
/// A change to the space's page table must reach every hart whose TLB may hold a stale
/// entry. Three hart sets decide which:
/// - `ran_on`: harts that have run the space (it only grows);
/// - `running`: harts running it now (joined on switch-in, before `satp` is loaded;
///   left on switch-out, after `satp` no longer holds the space);
/// - `stale`: harts that must flush the space's ASID before they run it again.
///
/// A shootdown ([`shootdown_harts`](Self::shootdown_harts)), after the page-table
/// change, first marks every hart of `ran_on` stale, then reads `running`: only those
/// harts are flushed now. A hart that switched away keeps its entries, but they are dead:
/// it flushes the ASID at its next switch-in ([`AsidAllocator::asid_for`] joins
/// `running`, then takes its `stale` bit). Both sides write first and read second with
/// sequentially consistent operations, so at least one of them sees the other: a hart
/// switching in concurrently is either flushed remotely or flushes itself, and a hart
/// that never ran the space holds nothing of it.
#[derive(Debug, Default)]
pub struct AsidContext {
    id: AtomicU64,
    ran_on: AtomicHartMask,
    running: AtomicHartMask,
    stale: AtomicHartMask,
}

impl AsidContext {
    /// A space that has never run (no ASID yet, no harts).
    pub const fn new() -> Self {
        Self {
            id: AtomicU64::new(0),
            ran_on: AtomicHartMask::new(),
            running: AtomicHartMask::new(),
            stale: AtomicHartMask::new(),
        }
    }

    /// The ASID the space currently runs with (0 if it never ran or ASIDs are off); read
    /// it after changing the page table to flush by it.
    #[inline]
    pub fn asid(&self) -> u16 {
        asid_of(self.id.load(Ordering::SeqCst))
    }

    /// Every hart that has run the space since it was created.
    #[inline]
    pub fn harts(&self) -> &AtomicHartMask {
        &self.ran_on
    }

    /// The harts running the space now.
    #[inline]
    pub fn running(&self) -> HartMask {
        self.running.snapshot()
    }

    /// The harts a flush of a change just made must reach now: the ones running the
    /// space. Every other hart that ran it is marked to flush the ASID before it runs
    /// the space again (see the [type docs](Self)). Call after the page-table change.
    #[inline]
    pub fn shootdown_harts(&self) -> HartMask {
        self.stale.insert_all(&self.ran_on.snapshot());
        self.running.snapshot()
    }

    /// Records that `hart` no longer runs the space (its `satp` holds another table).
    #[inline]
    pub fn leave(&self, hart: usize) {
        self.running.remove(hart);
    }
}

/// What a hart must do to switch to a space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AsidSwitch {
    /// The ASID to put in `satp`.
    pub asid: u16,
    /// Whether the hart must flush its whole TLB (`sfence.vma x0, x0`) before loading
    /// `satp`.
    pub flush_all: bool,
    /// Whether the hart must flush the space's ASID (`sfence.vma x0, asid`) before
    /// loading `satp`: the space changed while the hart was away and its entries there
    /// are stale (implied by `flush_all`).
    pub flush_asid: bool,
}

struct AsidState {
    used: [u64; BITMAP_WORDS],
    reserved: [u64; MAX_HARTS],
    needs_flush: HartMask,
    next: usize,
}

impl AsidState {
    fn take(&mut self, asid: usize) -> bool {
        let (word, bit) = (asid / 64, 1u64 << (asid % 64));
        let free = self.used[word] & bit == 0;
        self.used[word] |= bit;
        free
    }

    /// The lowest free ASID at or above `from` and below `limit`, word at a time.
    fn find_free(&self, from: usize, limit: usize) -> Option<usize> {
        if from >= limit {
            return None;
        }
        let mut word = from / 64;
        let mut bits = !self.used[word] & (u64::MAX << (from % 64));
        loop {
            if bits != 0 {
                let asid = word * 64 + bits.trailing_zeros() as usize;
                return (asid < limit).then_some(asid);
            }
            word += 1;
            if word * 64 >= limit {
                return None;
            }
            bits = !self.used[word];
        }
    }
}

/// The ASID allocator of one machine; see the [module docs](self) for the protocol.
pub struct AsidAllocator {
    /// Number of ASIDs (0 when ASIDs are not used).
    count: usize,
    harts: usize,
    generation: AtomicU64,
    active: [AtomicU64; MAX_HARTS],
    state: Mutex<AsidState>,
}

impl AsidAllocator {
    /// An allocator for `harts` harts on hardware with `asid_bits` writable ASID bits (as
    /// detected at boot by writing all ones to `satp.ASID` and reading back; values above
    /// [`MAX_ASID_BITS`] are treated as 16).
    ///
    /// ASIDs are used only if there are more user ASIDs (`2^bits - 1`) than harts, so that
    /// a rollover always leaves one free; otherwise every switch flushes.
    ///
    /// Panics if `harts` is 0 or above [`MAX_HARTS`] (a boot-time configuration error).
    pub fn new(asid_bits: u32, harts: usize) -> Self {
        assert!(harts > 0 && harts <= MAX_HARTS, "hart count out of range");
        let all = 1usize << asid_bits.min(MAX_ASID_BITS);
        let count = if all - 1 > harts { all } else { 0 };
        let mut state = AsidState {
            used: [0; BITMAP_WORDS],
            reserved: [0; MAX_HARTS],
            needs_flush: HartMask::EMPTY,
            next: 1,
        };
        state.take(0);
        Self {
            count,
            harts,
            generation: AtomicU64::new(1),
            active: [const { AtomicU64::new(0) }; MAX_HARTS],
            state: Mutex::new(state),
        }
    }

    /// Whether ASIDs are in use (false: every switch flushes).
    pub fn uses_asids(&self) -> bool {
        self.count != 0
    }

    /// The current generation (starts at 1, +1 per rollover).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Called on `hart` when it switches to the space owning `ctx`: records the hart in
    /// the space's hart set and returns the ASID to run with and whether to flush the
    /// whole TLB first.
    ///
    /// Panics if `hart` is not below the hart count given to [`new`](Self::new).
    pub fn asid_for(&self, ctx: &AsidContext, hart: usize) -> AsidSwitch {
        assert!(hart < self.harts, "hart index out of range");
        ctx.ran_on.insert(hart);
        ctx.running.insert(hart);
        // After joining `running` (the targeted-shootdown protocol in `AsidContext`).
        let flush_asid = ctx.stale.remove(hart);
        if self.count == 0 {
            return AsidSwitch {
                asid: 0,
                flush_all: true,
                flush_asid,
            };
        }
        let id = ctx.id.load(Ordering::SeqCst);
        let old_active = self.active[hart].load(Ordering::SeqCst);
        if old_active != 0
            && generation_of(id) == self.generation.load(Ordering::SeqCst)
            && self.active[hart]
                .compare_exchange(old_active, id, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        {
            return AsidSwitch {
                asid: asid_of(id),
                flush_all: false,
                flush_asid,
            };
        }
        let mut state = self.state.lock();
        let mut id = ctx.id.load(Ordering::SeqCst);
        if generation_of(id) != self.generation.load(Ordering::SeqCst) {
            id = self.new_context(&mut state, id);
            ctx.id.store(id, Ordering::SeqCst);
        }
        let flush_all = state.needs_flush.remove(hart);
        self.active[hart].store(id, Ordering::SeqCst);
        AsidSwitch {
            asid: asid_of(id),
            flush_all,
            flush_asid,
        }
    }

    /// A context id of the current generation for a space whose id was `old` (0: never
    /// ran). Keeps the old ASID when it is reserved by a hart or still free.
    fn new_context(&self, state: &mut AsidState, old: u64) -> u64 {
        let generation = self.generation.load(Ordering::SeqCst);
        if old != 0 {
            let asid = asid_of(old) as usize;
            let renewed = make_id(generation, asid);
            let mut reserved = false;
            for slot in &mut state.reserved[..self.harts] {
                if *slot == old {
                    *slot = renewed;
                    reserved = true;
                }
            }
            if reserved || state.take(asid) {
                return renewed;
            }
        }
        let asid = match state.find_free(state.next, self.count) {
            Some(asid) => asid,
            None => {
                self.rollover(state);
                state
                    .find_free(1, self.count)
                    .expect("more ASIDs than harts: a rollover leaves one free")
            }
        };
        state.take(asid);
        state.next = asid + 1;
        make_id(self.generation.load(Ordering::SeqCst), asid)
    }

    /// Starts a new generation (lock held).
    fn rollover(&self, state: &mut AsidState) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        state.used = [0; BITMAP_WORDS];
        state.take(0);
        for hart in 0..self.harts {
            let mut id = self.active[hart].swap(0, Ordering::SeqCst);
            // A hart that has not switched since the previous rollover keeps what it had.
            if id == 0 {
                id = state.reserved[hart];
            }
            if id != 0 {
                state.take(asid_of(id) as usize);
            }
            state.reserved[hart] = id;
        }
        state.needs_flush = HartMask::first(self.harts);
        state.next = 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_bits_always_flushes() {
        let alloc = AsidAllocator::new(0, 2);
        assert!(!alloc.uses_asids());
        let ctx = AsidContext::new();
        for _ in 0..3 {
            assert_eq!(
                alloc.asid_for(&ctx, 1),
                AsidSwitch {
                    asid: 0,
                    flush_all: true,
                    flush_asid: false
                }
            );
        }
        assert!(ctx.harts().snapshot().contains(1));
    }

    #[test]
    fn too_few_asids_disable_them() {
        // 2 bits: 3 user ASIDs; 3 harts could reserve all of them.
        assert!(!AsidAllocator::new(2, 3).uses_asids());
        assert!(AsidAllocator::new(2, 2).uses_asids());
        assert!(AsidAllocator::new(40, 4).uses_asids());
    }

    #[test]
    fn same_space_keeps_its_asid() {
        let alloc = AsidAllocator::new(16, 4);
        let (a, b) = (AsidContext::new(), AsidContext::new());
        let first = alloc.asid_for(&a, 0);
        assert_ne!(first.asid, 0);
        let other = alloc.asid_for(&b, 0);
        assert_ne!(other.asid, first.asid);
        assert_eq!(alloc.asid_for(&a, 1).asid, first.asid);
        assert_eq!(
            alloc.asid_for(&a, 0),
            AsidSwitch {
                asid: first.asid,
                flush_all: false,
                flush_asid: false
            }
        );
        assert_eq!(a.asid(), first.asid);
    }

    #[test]
    fn rollover_flushes_each_hart_once_and_keeps_running_asids() {
        // 2 bits: user ASIDs 1..=3, one hart.
        let alloc = AsidAllocator::new(2, 1);
        let spaces = [
            AsidContext::new(),
            AsidContext::new(),
            AsidContext::new(),
            AsidContext::new(),
        ];
        for space in &spaces[..3] {
            assert!(!alloc.asid_for(space, 0).flush_all);
        }
        // The fourth space forces generation 2; hart 0 runs space 2 (reserved).
        let fourth = alloc.asid_for(&spaces[3], 0);
        assert_eq!(alloc.generation(), 2);
        assert!(fourth.flush_all);
        assert_ne!(fourth.asid, spaces[2].asid());
        assert!(!alloc.asid_for(&spaces[0], 0).flush_all);
    }

    #[test]
    fn find_free_crosses_words() {
        let alloc = AsidAllocator::new(8, 1);
        let mut state = alloc.state.lock();
        for asid in 0..130 {
            state.take(asid);
        }
        assert_eq!(state.find_free(5, 256), Some(130));
        assert_eq!(state.find_free(200, 256), Some(200));
        for asid in 130..256 {
            state.take(asid);
        }
        assert_eq!(state.find_free(1, 256), None);
    }
}
