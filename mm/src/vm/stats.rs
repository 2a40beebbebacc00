//! Fault and copy-on-write accounting: per address space and global.
//!
//! Every event is counted twice: in the address space's own counters (plain integers, the
//! space is mutated under its owner's lock) and in one global set of atomics shared by all
//! spaces ([`global_stats`]). The global counters only ever increase.

use core::sync::atomic::{AtomicU64, Ordering};

/// One countable event of the fault path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Event {
    MinorFault,
    ZeroPageMap,
    ZeroFill,
    FileRead,
    SharedFill,
    CowCopy,
    CowTakeover,
    ZeroPageUpgrade,
    Spurious,
    StackGrowth,
    Fork,
    MajorFault,
    ThpFaultAlloc,
    ThpFaultFallback,
    ThpSplit,
    TableShare,
}

const EVENTS: usize = 16;

/// Counters of the fault path (per address space from
/// [`AddressSpace::stats`](super::AddressSpace::stats), or summed over every space from
/// [`global_stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VmStats {
    /// Faults that installed or changed a PTE (every resolved fault except spurious ones).
    pub minor_faults: u64,
    /// Reads of untouched private memory answered with the shared zero page.
    pub zero_page_maps: u64,
    /// Fresh zeroed frames mapped for first writes to private anonymous memory.
    pub zero_fills: u64,
    /// Private file pages read from their file.
    pub file_reads: u64,
    /// Shared-memory pages mapped (allocated on first touch or found in the object).
    pub shared_fills: u64,
    /// Copy-on-write breaks that copied the frame (it was still shared).
    pub cow_copies: u64,
    /// Copy-on-write breaks that took the frame over without copying (count was 1).
    pub cow_takeovers: u64,
    /// Writes to a zero-page mapping, replaced by a fresh zeroed frame.
    pub zero_page_upgrades: u64,
    /// Faults on a PTE that already allowed the access (a stale TLB entry).
    pub spurious_faults: u64,
    /// Pages by which stack areas grew down on faults.
    pub stack_growths: u64,
    /// Address spaces forked (counted in the parent).
    pub forks: u64,
    /// Pages brought back from swap into a PTE (Linux's major faults).
    pub major_faults: u64,
    /// Huge pages allocated and mapped by faults (Linux's `thp_fault_alloc`).
    pub thp_fault_alloc: u64,
    /// Faults that could have mapped a huge page but fell back to 4 KiB pages because
    /// no 2 MiB block was free (`thp_fault_fallback`).
    pub thp_fault_fallback: u64,
    /// 2 MiB mappings split into 4 KiB ones (`thp_split_pmd`; a huge page that was the
    /// only mapping of its frames is split with it: `thp_split_page`).
    pub thp_splits: u64,
    /// Leaf page tables fork shared with a child instead of copying their entries
    /// (each table once per fork that shared it).
    pub tables_shared: u64,
}

impl VmStats {
    fn from_array(a: [u64; EVENTS]) -> Self {
        VmStats {
            minor_faults: a[Event::MinorFault as usize],
            zero_page_maps: a[Event::ZeroPageMap as usize],
            zero_fills: a[Event::ZeroFill as usize],
            file_reads: a[Event::FileRead as usize],
            shared_fills: a[Event::SharedFill as usize],
            cow_copies: a[Event::CowCopy as usize],
            cow_takeovers: a[Event::CowTakeover as usize],
            zero_page_upgrades: a[Event::ZeroPageUpgrade as usize],
            spurious_faults: a[Event::Spurious as usize],
            stack_growths: a[Event::StackGrowth as usize],
            forks: a[Event::Fork as usize],
            major_faults: a[Event::MajorFault as usize],
            thp_fault_alloc: a[Event::ThpFaultAlloc as usize],
            thp_fault_fallback: a[Event::ThpFaultFallback as usize],
            thp_splits: a[Event::ThpSplit as usize],
            tables_shared: a[Event::TableShare as usize],
        }
    }
}

static GLOBAL: [AtomicU64; EVENTS] = [const { AtomicU64::new(0) }; EVENTS];

/// A snapshot of the global counters, summed over every address space since boot.
pub fn global_stats() -> VmStats {
    VmStats::from_array(core::array::from_fn(|i| GLOBAL[i].load(Ordering::Relaxed)))
}

/// The per-space counters.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SpaceCounters {
    counts: [u64; EVENTS],
}

impl SpaceCounters {
    /// Counts `n` occurrences of `event` here and globally.
    pub(crate) fn record(&mut self, event: Event, n: u64) {
        self.counts[event as usize] += n;
        GLOBAL[event as usize].fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> VmStats {
        VmStats::from_array(self.counts)
    }
}
