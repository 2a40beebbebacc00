//! TLB maintenance on RISC-V: `sfence.vma` on this hart, SBI remote fences on others,
//! and the ASID allocator sized by what the hardware supports.

use core::sync::atomic::{AtomicU8, Ordering};
use pagoda_mm::addr::{PAGE_SIZE, VirtAddr};

use pagoda_mm::tlb::{AsidAllocator, Flush, HartMask, TlbOps, TlbStats};
use spin::Once;

use crate::arch::mmu;

/// Counters of every flush the kernel issued, by kind.
pub static STATS: TlbStats = TlbStats::new();

/// The ASID allocator, created once the number of ASID bits is known.
static ASIDS: Once<AsidAllocator> = Once::new();

// One SBI hart-mask word covers every hart the kernel supports.
const _: () = assert!(pagoda_mm::layout::MAX_HARTS <= usize::BITS as usize);

/// The hardware behind [`TlbOps`].
pub struct HartTlb;

/// Which harts a shootdown of a user address space reaches (boot parameter `tlb=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ShootdownMode {
    /// The harts running the space (the default).
    Targeted = 0,
    /// Every online hart (`tlb=broadcast`): the reference of `make bench`.
    Broadcast = 1,
    /// None but the calling hart (`tlb=noremote`): a deliberately broken kernel, for the
    /// test that proves remote flushes matter (`tlb_shootdown` must fail on it).
    NoRemote = 2,
}

static MODE: AtomicU8 = AtomicU8::new(ShootdownMode::Targeted as u8);

/// Sets the shootdown mode (at boot, before any user space runs).
pub fn set_mode(mode: ShootdownMode) {
    MODE.store(mode as u8, Ordering::Relaxed);
}

fn mode() -> ShootdownMode {
    match MODE.load(Ordering::Relaxed) {
        1 => ShootdownMode::Broadcast,
        2 => ShootdownMode::NoRemote,
        _ => ShootdownMode::Targeted,
    }
}

#[inline(always)]
fn sfence(va: Option<VirtAddr>, asid: Option<u16>) {
    match (va, asid) {
        (Some(va), Some(asid)) => mmu::sfence_page_asid(va, asid),
        (Some(va), None) => mmu::sfence_page(va),
        (None, Some(asid)) => mmu::sfence_asid(asid),
        (None, None) => mmu::sfence_all(),
    }
}

impl TlbOps for HartTlb {
    fn this_hart(&self) -> usize {
        crate::smp::hart_id()
    }

    fn sfence_local(&self, flush: &Flush<'_>) {
        match *flush {
            Flush::Pages { asid, pages } => pages.iter().for_each(|&va| sfence(Some(va), asid)),
            Flush::Asid(asid) => sfence(None, Some(asid)),
            Flush::All => sfence(None, None),
        }
    }

    /// The provided method, with the harts chosen by the [`ShootdownMode`].
    fn flush_harts(&self, harts: &HartMask, flush: &Flush<'_>) {
        let mut remote = match mode() {
            ShootdownMode::Targeted => *harts,
            ShootdownMode::Broadcast => crate::smp::online_mask().snapshot(),
            ShootdownMode::NoRemote => HartMask::EMPTY,
        };
        let me = self.this_hart();
        if remote.remove(me) || harts.contains(me) {
            self.flush_local(flush);
        }
        if !remote.is_empty() {
            self.stats().count_remote(&remote);
            self.sfence_remote(&remote, flush);
        }
    }

    fn sfence_remote(&self, harts: &HartMask, flush: &Flush<'_>) {
        let bits = harts.iter().fold(0usize, |m, h| m | 1 << h);
        let mask = sbi_rt::HartMask::from_mask_base(bits, 0);
        match *flush {
            // One request (one round of IPIs) covering the pages; a batch names at most
            // `FLUSH_PAGE_THRESHOLD` of them, past that it is a whole-ASID flush.
            Flush::Pages { asid, pages } => {
                let lo = pages.iter().map(|v| v.0).min().unwrap_or(0);
                let hi = pages.iter().map(|v| v.0).max().unwrap_or(0) + PAGE_SIZE;
                remote(mask, lo, hi - lo, asid);
            }
            Flush::Asid(asid) => remote(mask, 0, usize::MAX, Some(asid)),
            Flush::All => remote(mask, 0, usize::MAX, None),
        }
    }

    fn stats(&self) -> &TlbStats {
        &STATS
    }
}

/// One SBI remote fence; the call returns when every target hart has executed it.
fn remote(mask: sbi_rt::HartMask, start: usize, size: usize, asid: Option<u16>) {
    let ret = match asid {
        Some(a) => sbi_rt::remote_sfence_vma_asid(mask, start, size, a as usize),
        None => sbi_rt::remote_sfence_vma(mask, start, size),
    };
    if ret.is_err() {
        // The firmware lacks RFENCE: nothing narrower is possible than a full flush via
        // the legacy call, which OpenSBI always provides.
        #[allow(deprecated)]
        sbi_rt::legacy::remote_fence_vma(usize::MAX, 0, usize::MAX);
    }
}

/// Detects how many ASID bits `satp` implements (on the table this hart runs) and
/// creates the ASID allocator for `harts` harts.
pub fn init_asids(harts: usize) -> u32 {
    let bits = mmu::asid_bits();
    ASIDS.call_once(|| AsidAllocator::new(bits, harts));
    bits
}

/// The ASID allocator.
pub fn asids() -> &'static AsidAllocator {
    ASIDS
        .get()
        .expect("ASID allocator used before memory::init")
}
