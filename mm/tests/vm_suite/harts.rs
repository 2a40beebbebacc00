//! Simulated harts for the vm suite: one TLB per hart that keeps every translation it
//! caches until a fence drops it, the hart the test is running on, and a log of the
//! flushes requested. Shared by both page tables under test ([`Table`]).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use pagoda_mm::addr::{PAGE_SIZE, PhysAddr};
use pagoda_mm::layout::HUGE_PAGE_SIZE;
use pagoda_mm::tlb::{Flush as Fence, HartMask, TlbOps, TlbStats};
use pagoda_mm::vm::{Mmu, PagePerms};

/// A flush as the tests see it: one page, a range of pages, or everything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Flush {
    Page(usize),
    Range(usize, usize),
    All,
}

/// One hart's TLB: page -> (frame, rights); and the first pages of the 2 MiB leaves some
/// of those entries came from (one superpage entry in a real TLB: a fence naming any
/// page of it drops all of it).
#[derive(Default)]
struct Tlb {
    pages: HashMap<usize, (PhysAddr, PagePerms)>,
    huge: HashSet<usize>,
}

/// The harts one address space runs on.
pub struct Harts {
    tlbs: Vec<Mutex<Tlb>>,
    current: AtomicUsize,
    log: Mutex<Vec<Flush>>,
    /// The broken machine of the negative test: remote fences are not performed.
    skip_remote: AtomicBool,
    /// The broken kernel of another negative test: a hart returning to a space does not
    /// flush what it owes it.
    skip_switch_flush: AtomicBool,
    /// Harts running the space (bit per hart); the others hold only dead entries.
    running: AtomicUsize,
    stats: TlbStats,
}

/// A handle on [`Harts`]: the `TlbOps` of the simulated machine.
#[derive(Clone)]
pub struct SimHarts(Arc<Harts>);

impl SimHarts {
    /// `n` harts with empty TLBs; the test runs on hart 0.
    pub fn new(n: usize) -> Self {
        SimHarts(Arc::new(Harts {
            tlbs: (0..n).map(|_| Mutex::new(Tlb::default())).collect(),
            current: AtomicUsize::new(0),
            log: Mutex::new(Vec::new()),
            skip_remote: AtomicBool::new(false),
            skip_switch_flush: AtomicBool::new(false),
            running: AtomicUsize::new(1),
            stats: TlbStats::new(),
        }))
    }

    pub fn count(&self) -> usize {
        self.0.tlbs.len()
    }

    /// The hart the test runs on now.
    pub fn current(&self) -> usize {
        self.0.current.load(Ordering::Relaxed)
    }

    pub fn set_current(&self, hart: usize) {
        self.0.current.store(hart, Ordering::Relaxed);
    }

    /// Removes the remote half of every fence from now on (`true`): the negative test.
    pub fn skip_remote_fences(&self, skip: bool) {
        self.0.skip_remote.store(skip, Ordering::Relaxed);
    }

    /// Records whether `hart` runs the space.
    pub fn set_running(&self, hart: usize, on: bool) {
        if on {
            self.0.running.fetch_or(1 << hart, Ordering::Relaxed);
        } else {
            self.0.running.fetch_and(!(1 << hart), Ordering::Relaxed);
        }
    }

    /// Whether `hart` runs the space (entries a hart that switched away holds are dead:
    /// it flushes them before it runs the space again).
    pub fn is_running(&self, hart: usize) -> bool {
        self.0.running.load(Ordering::Relaxed) & (1 << hart) != 0
    }

    /// Removes the flush a hart owes a space it returns to (`true`): the negative test
    /// of targeted shootdown.
    pub fn skip_switch_flush(&self, skip: bool) {
        self.0.skip_switch_flush.store(skip, Ordering::Relaxed);
    }

    /// Whether switch-in flushes are skipped.
    pub fn skips_switch_flush(&self) -> bool {
        self.0.skip_switch_flush.load(Ordering::Relaxed)
    }

    /// What `hart` caches for `page`.
    pub fn cached(&self, hart: usize, page: usize) -> Option<(PhysAddr, PagePerms)> {
        self.0.tlbs[hart].lock().unwrap().pages.get(&page).copied()
    }

    /// Caches `entry` for `page` on `hart`, from a 2 MiB leaf if `huge`.
    pub fn fill(&self, hart: usize, page: usize, entry: (PhysAddr, PagePerms), huge: bool) {
        let mut tlb = self.0.tlbs[hart].lock().unwrap();
        tlb.pages.insert(page, entry);
        if huge {
            tlb.huge.insert(page & !(HUGE_PAGE_SIZE - 1));
        }
    }

    /// Every cached translation: (hart, page, frame, rights).
    pub fn entries(&self) -> Vec<(usize, usize, PhysAddr, PagePerms)> {
        let mut all = Vec::new();
        for (hart, tlb) in self.0.tlbs.iter().enumerate() {
            for (&page, &(pa, flags)) in tlb.lock().unwrap().pages.iter() {
                all.push((hart, page, pa, flags));
            }
        }
        all
    }

    /// Drops `pages` (`None`: everything) on `hart`.
    pub fn drop_on(&self, hart: usize, pages: Option<&[usize]>) {
        let mut tlb = self.0.tlbs[hart].lock().unwrap();
        match pages {
            Some(pages) => pages.iter().for_each(|p| {
                tlb.pages.remove(p);
                let base = p & !(HUGE_PAGE_SIZE - 1);
                if tlb.huge.remove(&base) {
                    tlb.pages.retain(|&q, _| q & !(HUGE_PAGE_SIZE - 1) != base);
                }
            }),
            None => {
                tlb.pages.clear();
                tlb.huge.clear();
            }
        }
    }

    /// Drops `pages` (`None`: everything) on every hart (a complete shootdown).
    pub fn drop_everywhere(&self, pages: Option<&[usize]>) {
        (0..self.count()).for_each(|hart| self.drop_on(hart, pages));
    }

    /// The simulated table's fence: drops `pages` (`None`: everything) on this hart and,
    /// unless remote fences are skipped, on the others.
    pub fn shootdown(&self, pages: Option<&[usize]>) {
        if self.0.skip_remote.load(Ordering::Relaxed) {
            self.drop_on(self.current(), pages);
        } else {
            self.drop_everywhere(pages);
        }
    }

    pub fn record(&self, flush: Flush) {
        self.0.log.lock().unwrap().push(flush);
    }

    pub fn take_log(&self) -> Vec<Flush> {
        std::mem::take(&mut self.0.log.lock().unwrap())
    }

    /// The pages a fence names (`None`: all of them), and the flush the log shows.
    fn decode(fence: &Fence<'_>) -> (Option<Vec<usize>>, Flush) {
        match *fence {
            Fence::Pages { pages, .. } => {
                let pages: Vec<usize> = pages.iter().map(|v| v.0).collect();
                let lo = pages.iter().copied().min().unwrap_or(0);
                let hi = pages.iter().copied().max().unwrap_or(0) + PAGE_SIZE;
                let shown = match pages.len() {
                    1 => Flush::Page(lo),
                    _ => Flush::Range(lo, hi),
                };
                (Some(pages), shown)
            }
            Fence::Asid(_) | Fence::All => (None, Flush::All),
        }
    }
}

impl TlbOps for SimHarts {
    fn this_hart(&self) -> usize {
        self.current()
    }

    fn sfence_local(&self, fence: &Fence<'_>) {
        let (pages, shown) = Self::decode(fence);
        self.drop_on(self.current(), pages.as_deref());
        self.record(shown);
    }

    fn sfence_remote(&self, harts: &HartMask, fence: &Fence<'_>) {
        if self.0.skip_remote.load(Ordering::Relaxed) {
            return;
        }
        let (pages, shown) = Self::decode(fence);
        for hart in harts.iter() {
            self.drop_on(hart, pages.as_deref());
        }
        self.record(shown);
    }

    fn stats(&self) -> &TlbStats {
        &self.0.stats
    }
}

/// A page table under test: made for a set of harts, and told when a hart starts running
/// the space (the real table's ASID then includes the hart in its shootdowns).
pub trait Table: Mmu + Sized {
    fn create(harts: SimHarts) -> Self;
    fn activate(&self, hart: usize);
    /// `hart` stops running the space (it switched to another).
    fn leave(&self, hart: usize);
    /// Page-table pages in use besides the root (0 for a table without any).
    fn tables_below_root(&self) -> usize;
}
