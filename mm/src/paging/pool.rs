//! [`TablePool`]: per-hart stacks of zeroed page-table pages, kept for reuse.
//!
//! [`PagingMemory`](super::PagingMemory) pages cross the trait all zero in both
//! directions, so a page the table code frees is already in the state a new table needs
//! (Bonwick's "constructed state" object caching, applied to table pages). A
//! [`PagingMemory`](super::PagingMemory) implementation keeps such pages in a
//! `TablePool` and hands them out again without touching their 4 KiB; only a page that
//! comes fresh from the frame allocator needs zeroing. The pool itself never reads or
//! writes a page: it stores physical addresses.
//!
//! # Design
//!
//! One fixed-capacity stack per hart (last freed, first reused: its lines are the most
//! likely to be cached), on its own cache line. A stack is guarded by a one-word flag
//! taken with a single atomic swap:
//! - [`take`](TablePool::take) and [`put`](TablePool::put) only *try* to take the flag
//!   of the caller's hart. When it is held (a drainer on another hart is emptying the
//!   stack right now) or the stack is empty / full, they fail at once and the caller falls
//!   back to the frame allocator. They never wait, so they may run in any context,
//!   including an interrupt handler that interrupted a pool operation on the same hart.
//! - [`drain`](TablePool::drain) and [`drain_all`](TablePool::drain_all) may run on any
//!   hart, for any stack (memory is short, a hart goes idle, statistics are read). They
//!   retry the flag for a bounded number of spins ([`DRAIN_SPINS`]) and skip a stack
//!   whose holder does not let go by then.
//!
//! Because every access to a stack holds its flag, the hart number is only a locality
//! hint: a caller that passes another hart's number (or migrates) loses speed, never
//! safety.
//!
//! # Invariant
//!
//! Every page on a stack is a whole 4 KiB page, all zero, owned by the pool: it was given
//! with [`put`](TablePool::put), whose caller promised exactly that. [`take`] passes the
//! page, and that promise, on to its caller.
//!
//! [`take`]: TablePool::take

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use crate::addr::PhysAddr;

/// How many times a drain retries the flag of a stack whose holder is in the middle of a
/// [`take`](TablePool::take) or [`put`](TablePool::put) (a few instructions) before it
/// skips that stack.
pub const DRAIN_SPINS: usize = 1 << 10;

/// The flag of a stack nobody holds.
const FREE: u32 = 0;
/// The flag of a stack somebody holds.
const HELD: u32 = 1;

/// One hart's stack of zeroed pages, on its own cache line.
#[repr(align(64))]
struct HartStack<const CAP: usize> {
    /// [`HELD`] while somebody uses `pages` (acquire on taking, release on letting go).
    flag: AtomicU32,
    /// Pages on the stack; written only with the flag held, read without it for
    /// statistics.
    len: AtomicUsize,
    /// `pages[..len]` are zeroed pages, the last the most recently freed.
    pages: UnsafeCell<[PhysAddr; CAP]>,
}

impl<const CAP: usize> HartStack<CAP> {
    const fn new() -> Self {
        Self {
            flag: AtomicU32::new(FREE),
            len: AtomicUsize::new(0),
            pages: UnsafeCell::new([PhysAddr(0); CAP]),
        }
    }

    /// Takes the flag if nobody holds it.
    #[inline]
    fn try_hold(&self) -> Option<Held<'_, CAP>> {
        if self.flag.swap(HELD, Ordering::Acquire) == FREE {
            Some(Held(self))
        } else {
            None
        }
    }

    /// Takes the flag, retrying up to [`DRAIN_SPINS`] times.
    fn hold_patiently(&self) -> Option<Held<'_, CAP>> {
        for _ in 0..DRAIN_SPINS {
            if let Some(held) = self.try_hold() {
                return Some(held);
            }
            core::hint::spin_loop();
        }
        None
    }
}

/// A held stack; lets go of the flag when dropped.
struct Held<'a, const CAP: usize>(&'a HartStack<CAP>);

impl<const CAP: usize> Held<'_, CAP> {
    /// The stack's pages, for the holder alone.
    #[inline]
    fn pages(&mut self) -> &mut [PhysAddr; CAP] {
        // SAFETY: the flag is held (it was swapped from FREE to HELD by this holder and is
        // given back only when `self` drops), so no other reference to the array exists;
        // the `&mut self` borrow keeps this one unique for its lifetime.
        unsafe { &mut *self.0.pages.get() }
    }

    #[inline]
    fn len(&self) -> usize {
        self.0.len.load(Ordering::Relaxed)
    }

    #[inline]
    fn set_len(&self, len: usize) {
        self.0.len.store(len, Ordering::Relaxed);
    }
}

impl<const CAP: usize> Drop for Held<'_, CAP> {
    #[inline]
    fn drop(&mut self) {
        self.0.flag.store(FREE, Ordering::Release);
    }
}

/// Per-hart stacks of zeroed page-table pages: `HARTS` stacks of up to `CAP` pages each.
///
/// See the [module documentation](self) for the protocol. `take` and `put` are a swap, a
/// few plain loads and stores and a release store; they never wait.
pub struct TablePool<const HARTS: usize, const CAP: usize> {
    harts: [HartStack<CAP>; HARTS],
}

// SAFETY: every access to a stack's pages holds that stack's flag (an acquire swap from
// FREE to HELD and a release store back), so the pages are never accessed concurrently
// and each holder sees the previous holder's writes; `len` and `flag` are atomics.
unsafe impl<const HARTS: usize, const CAP: usize> Sync for TablePool<HARTS, CAP> {}

impl<const HARTS: usize, const CAP: usize> Default for TablePool<HARTS, CAP> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const HARTS: usize, const CAP: usize> TablePool<HARTS, CAP> {
    /// Pages one hart's stack holds at most.
    pub const CAPACITY: usize = CAP;

    /// An empty pool.
    pub const fn new() -> Self {
        Self {
            harts: [const { HartStack::new() }; HARTS],
        }
    }

    /// The most recently given zeroed page of `hart`'s stack, now the caller's. `None`
    /// when that stack is empty, when a drain holds it at this moment, or when `hart` is
    /// not below `HARTS`.
    ///
    /// The page is all zero and nothing else uses it (the promise its giver made to
    /// [`put`](Self::put)).
    #[inline]
    pub fn take(&self, hart: usize) -> Option<PhysAddr> {
        let mut held = self.harts.get(hart)?.try_hold()?;
        let len = held.len();
        if len == 0 {
            return None;
        }
        let pa = held.pages()[len - 1];
        held.set_len(len - 1);
        Some(pa)
    }

    /// Keeps the page at `pa` on `hart`'s stack. Gives it back as `Err(pa)`, still the
    /// caller's, when that stack is full, when a drain holds it at this moment, or when
    /// `hart` is not below `HARTS`: the caller frees it another way.
    ///
    /// # Safety
    ///
    /// `pa` is the start of a 4 KiB page whose every byte is zero, that the caller owns and
    /// gives up (nothing reads or writes it any more) unless it comes back as `Err`: a
    /// later [`take`](Self::take) hands it out as a zeroed page nobody else uses.
    #[inline]
    pub unsafe fn put(&self, hart: usize, pa: PhysAddr) -> Result<(), PhysAddr> {
        let Some(mut held) = self.harts.get(hart).and_then(HartStack::try_hold) else {
            return Err(pa);
        };
        let len = held.len();
        if len == CAP {
            return Err(pa);
        }
        held.pages()[len] = pa;
        held.set_len(len + 1);
        Ok(())
    }

    /// Empties `hart`'s stack, handing every page to `free` (outside the pool: `free` may
    /// call back into it); returns how many. Waits up to [`DRAIN_SPINS`] for a holder
    /// and gives up (returning 0) if it still holds the stack.
    pub fn drain(&self, hart: usize, free: impl FnMut(PhysAddr)) -> usize {
        match self.harts.get(hart) {
            Some(stack) => Self::drain_stack(stack, free),
            None => 0,
        }
    }

    /// [`drain`](Self::drain)s every hart's stack; returns how many pages went to `free`.
    pub fn drain_all(&self, mut free: impl FnMut(PhysAddr)) -> usize {
        self.harts
            .iter()
            .map(|stack| Self::drain_stack(stack, &mut free))
            .sum()
    }

    /// Pages on every stack: a snapshot, exact when no hart uses the pool meanwhile.
    pub fn len(&self) -> usize {
        self.harts
            .iter()
            .map(|stack| stack.len.load(Ordering::Relaxed))
            .sum()
    }

    /// Whether every stack is empty (a snapshot, as [`len`](Self::len)).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn drain_stack(stack: &HartStack<CAP>, mut free: impl FnMut(PhysAddr)) -> usize {
        if stack.len.load(Ordering::Relaxed) == 0 {
            return 0;
        }
        let Some(mut held) = stack.hold_patiently() else {
            return 0;
        };
        // Taken out in one go, so that `free` runs with the flag given back.
        let len = held.len();
        let pages = *held.pages();
        held.set_len(0);
        drop(held);
        for &pa in &pages[..len] {
            free(pa);
        }
        len
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use std::collections::BTreeSet;
    use std::sync::Arc;
    use std::thread;
    use std::vec::Vec;

    use proptest::prelude::*;

    use super::*;
    use crate::addr::PAGE_SIZE;

    fn page(i: usize) -> PhysAddr {
        PhysAddr(0x8000_0000 + i * PAGE_SIZE)
    }

    /// `put` through the safe door: the tests' pages are plain numbers nobody touches.
    fn put<const H: usize, const C: usize>(
        pool: &TablePool<H, C>,
        hart: usize,
        pa: PhysAddr,
    ) -> Result<(), PhysAddr> {
        // SAFETY: the addresses are never dereferenced; the pool only stores them.
        unsafe { pool.put(hart, pa) }
    }

    #[test]
    fn last_put_is_first_taken_and_harts_are_separate() {
        let pool: TablePool<2, 4> = TablePool::new();
        assert!(pool.is_empty());
        assert_eq!(pool.take(0), None);
        put(&pool, 0, page(1)).unwrap();
        put(&pool, 0, page(2)).unwrap();
        put(&pool, 1, page(3)).unwrap();
        assert_eq!(pool.len(), 3);
        assert_eq!(pool.take(0), Some(page(2)));
        assert_eq!(pool.take(1), Some(page(3)));
        assert_eq!(pool.take(1), None);
        assert_eq!(pool.take(0), Some(page(1)));
        assert!(pool.is_empty());
    }

    #[test]
    fn a_full_stack_and_an_unknown_hart_give_the_page_back() {
        let pool: TablePool<1, 2> = TablePool::new();
        assert_eq!(TablePool::<1, 2>::CAPACITY, 2);
        put(&pool, 0, page(1)).unwrap();
        put(&pool, 0, page(2)).unwrap();
        assert_eq!(put(&pool, 0, page(3)), Err(page(3)));
        assert_eq!(put(&pool, 1, page(4)), Err(page(4)));
        assert_eq!(pool.take(1), None);
        assert_eq!(pool.drain(1, |_| panic!("no such hart")), 0);
        assert_eq!(pool.len(), 2);
    }

    #[test]
    fn drains_hand_every_page_out_once() {
        let pool: TablePool<3, 8> = TablePool::new();
        for i in 0..6 {
            put(&pool, i % 3, page(i)).unwrap();
        }
        let mut got = Vec::new();
        assert_eq!(pool.drain(1, |pa| got.push(pa)), 2);
        assert_eq!(got, [page(1), page(4)]);
        assert_eq!(pool.take(1), None);
        assert_eq!(pool.drain_all(|pa| got.push(pa)), 4);
        got.sort();
        assert_eq!(got, (0..6).map(page).collect::<Vec<_>>());
        assert!(pool.is_empty());
        // The pool works as before after a drain.
        put(&pool, 2, page(9)).unwrap();
        assert_eq!(pool.take(2), Some(page(9)));
    }

    #[test]
    fn a_held_stack_is_skipped_not_waited_for() {
        let pool: TablePool<1, 4> = TablePool::new();
        put(&pool, 0, page(1)).unwrap();
        let held = pool.harts[0].try_hold().unwrap();
        assert_eq!(pool.take(0), None);
        assert_eq!(put(&pool, 0, page(2)), Err(page(2)));
        assert_eq!(pool.drain(0, |_| panic!("held")), 0);
        drop(held);
        assert_eq!(pool.take(0), Some(page(1)));
    }

    #[test]
    fn a_drain_may_give_pages_back_to_the_pool() {
        let pool: TablePool<1, 4> = TablePool::new();
        put(&pool, 0, page(1)).unwrap();
        put(&pool, 0, page(2)).unwrap();
        let mut again = 0;
        let n = pool.drain(0, |pa| {
            if put(&pool, 0, pa).is_ok() {
                again += 1;
            }
        });
        assert_eq!((n, again), (2, 2));
        assert_eq!(pool.len(), 2);
    }

    #[derive(Clone, Debug)]
    enum Op {
        Take(usize),
        Put(usize),
        Drain(usize),
        DrainAll,
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Any sequence of operations on three harts' stacks (and an unknown fourth hart)
        /// behaves as three bounded stacks.
        #[test]
        fn behaves_as_bounded_stacks(ops in proptest::collection::vec(
            prop_oneof![
                (0usize..4).prop_map(Op::Take),
                (0usize..4).prop_map(Op::Put),
                (0usize..4).prop_map(Op::Drain),
                Just(Op::DrainAll),
            ],
            0..64,
        )) {
            let pool: TablePool<3, 4> = TablePool::new();
            let mut model: [Vec<PhysAddr>; 3] = Default::default();
            let mut next = 0;
            for op in ops {
                match op {
                    Op::Take(h) => {
                        let want = model.get_mut(h).and_then(Vec::pop);
                        prop_assert_eq!(pool.take(h), want);
                    }
                    Op::Put(h) => {
                        next += 1;
                        let got = put(&pool, h, page(next));
                        match model.get_mut(h) {
                            Some(m) if m.len() < 4 => {
                                prop_assert_eq!(got, Ok(()));
                                m.push(page(next));
                            }
                            _ => prop_assert_eq!(got, Err(page(next))),
                        }
                    }
                    Op::Drain(h) => {
                        let mut got = Vec::new();
                        pool.drain(h, |pa| got.push(pa));
                        let want = model.get_mut(h).map(std::mem::take).unwrap_or_default();
                        prop_assert_eq!(got, want);
                    }
                    Op::DrainAll => {
                        let mut got = Vec::new();
                        pool.drain_all(|pa| got.push(pa));
                        let want: Vec<PhysAddr> = model.iter_mut().flat_map(std::mem::take).collect();
                        prop_assert_eq!(got, want);
                    }
                }
                prop_assert_eq!(pool.len(), model.iter().map(Vec::len).sum::<usize>());
            }
        }
    }

    /// Threads acting as harts take and put while another drains every stack: no page
    /// is lost or handed out twice.
    #[test]
    fn concurrent_use_and_drains_lose_and_duplicate_nothing() {
        const HARTS: usize = 3;
        const ROUNDS: usize = 20_000;
        let pool: Arc<TablePool<HARTS, 8>> = Arc::new(TablePool::new());
        let workers: Vec<_> = (0..HARTS)
            .map(|hart| {
                let pool = Arc::clone(&pool);
                thread::spawn(move || {
                    // Each hart owns pages hart*1000.. and keeps the ones not pooled.
                    let mut mine: Vec<PhysAddr> = (0..16).map(|i| page(hart * 1000 + i)).collect();
                    let mut refused = Vec::new();
                    for round in 0..ROUNDS {
                        if round % 3 == 0 {
                            if let Some(pa) = pool.take(hart) {
                                mine.push(pa);
                            }
                        } else if let Some(pa) = mine.pop()
                            && let Err(pa) = put(&pool, hart, pa)
                        {
                            refused.push(pa);
                        }
                    }
                    mine.extend(refused);
                    mine
                })
            })
            .collect();
        let drainer = {
            let pool = Arc::clone(&pool);
            thread::spawn(move || {
                let mut got = Vec::new();
                for _ in 0..ROUNDS / 10 {
                    pool.drain_all(|pa| got.push(pa));
                    thread::yield_now();
                }
                got
            })
        };
        let mut all: Vec<PhysAddr> = workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect();
        all.extend(drainer.join().unwrap());
        pool.drain_all(|pa| all.push(pa));
        let unique: BTreeSet<PhysAddr> = all.iter().copied().collect();
        assert_eq!(unique.len(), all.len(), "a page was handed out twice");
        let want: BTreeSet<PhysAddr> = (0..HARTS)
            .flat_map(|h| (0..16).map(move |i| page(h * 1000 + i)))
            .collect();
        assert_eq!(unique, want, "a page was lost");
    }
}
