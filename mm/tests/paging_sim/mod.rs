//! Test and benchmark support for the page-table code: a simulated physical memory
//! ([`memory`]) and a recording `TlbOps`. Shared by `mm/tests/paging_*.rs`,
//! `mm/tests/tlb_flush.rs` and `mm/benches/paging.rs`.

mod memory;

use std::sync::Mutex;

use pagoda_mm::tlb::{Flush, HartMask, TlbOps, TlbStats};

pub use memory::SimMemory;

/// One flush as recorded by [`RecordingTlb`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recorded {
    /// Performed on the calling hart.
    Local(Flush<'static>),
    /// Sent to other harts.
    Remote(HartMask, Flush<'static>),
}

/// A `TlbOps` that records every flush (page lists are leaked into `'static` slices: the
/// tests are short).
pub struct RecordingTlb {
    hart: usize,
    log: Mutex<Vec<Recorded>>,
    stats: TlbStats,
}

impl RecordingTlb {
    /// A recorder that says it runs on `hart`.
    pub fn new(hart: usize) -> Self {
        Self {
            hart,
            log: Mutex::new(Vec::new()),
            stats: TlbStats::new(),
        }
    }

    /// Takes the recorded flushes.
    pub fn take(&self) -> Vec<Recorded> {
        std::mem::take(&mut self.log.lock().unwrap())
    }

    fn owned(flush: &Flush<'_>) -> Flush<'static> {
        match *flush {
            Flush::Pages { asid, pages } => Flush::Pages {
                asid,
                pages: Vec::leak(pages.to_vec()),
            },
            Flush::Asid(asid) => Flush::Asid(asid),
            Flush::All => Flush::All,
        }
    }
}

impl TlbOps for RecordingTlb {
    fn this_hart(&self) -> usize {
        self.hart
    }

    fn sfence_local(&self, flush: &Flush<'_>) {
        self.log
            .lock()
            .unwrap()
            .push(Recorded::Local(Self::owned(flush)));
    }

    fn sfence_remote(&self, harts: &HartMask, flush: &Flush<'_>) {
        assert!(
            !harts.contains(self.hart),
            "remote flush sent to the calling hart"
        );
        self.log
            .lock()
            .unwrap()
            .push(Recorded::Remote(*harts, Self::owned(flush)));
    }

    fn stats(&self) -> &TlbStats {
        &self.stats
    }
}
