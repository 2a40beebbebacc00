//! Page reclaim: the replacement lists of user frames, and the scan that moves the
//! coldest private pages out to swap when memory runs short.
//!
//! ```text
//!  fault allocates a private frame ──► inactive head          (pagoda_mm::swap::Lru)
//!  reclaim(n), no lock held:
//!    while inactive shorter than active: active tail ─ referenced? ─► active head
//!                                                      └─ no ─────► inactive head
//!    inactive tail ─ referenced (A bit in any PTE, cleared)? ─► active head
//!                  ├─ a huge frame one 2 MiB leaf maps ─► split: 512 frames at the
//!                  │                                      inactive tail (shared: active)
//!                  └─ no ─► swap::swap_out_start: every PTE remembers the slot, its
//!                           TLB flush owed; after 8 such pages (or the scan's end) one
//!                           flush for all of them, the writes submitted together, and
//!                           swap_out_finish waits for them and frees the frames
//!  last reference of a listed frame dropped ──► taken off its list before it is freed
//!
//!  who scans: a fault that found no frame (direct, then retries), and kswapd0, woken by
//!  a resolved fault below the low watermark, until the high one (background)
//! ```
//!
//! Locking: the lists' lock is a leaf (nothing else is taken under it). A scan holds a
//! reference to the frame it looks at, so the frame cannot be freed under it, and takes
//! each address space's lock in turn through the reverse map, never two at once, and
//! never while holding the swap area's lock. Only one scan runs at a time; a task that
//! finds one running waits for it and then retries its allocation.

#![deny(unsafe_code)]

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use arrayvec::ArrayVec;
use pagoda_mm::addr::{PhysAddr, VirtAddr};
use pagoda_mm::frame::{FrameFlags, FrameMeta, FrameUse};
use pagoda_mm::layout::HUGE_PAGE_PAGES;
use pagoda_mm::swap::{Links, List, Lru};
use pagoda_mm::tlb::PendingFlush;
use pagoda_mm::vm::{AddressSpace, SpaceId, SpaceSet, for_each_mapping};
use spin::Mutex;

use super::frames::{self, FRAMES};
use super::swap::Outgoing;
use super::tlb::HartTlb;
use super::uspace::{KernelFrames, UserMmu};
use crate::proc::Mm;
use crate::proc::wait::WaitQueue;

/// The active and inactive lists.
static LRU: Mutex<Lru> = Mutex::new(Lru::new());

/// A scan is running.
static RECLAIMING: AtomicBool = AtomicBool::new(false);
/// Woken when a scan ends.
static SCAN_DONE: WaitQueue = WaitQueue::new();

/// Frames a direct reclaim frees before the allocation is retried (Linux's
/// `SWAP_CLUSTER_MAX`).
pub const BATCH: usize = 32;

/// Counters for `/proc/vmstat`.
pub static PGSCAN: AtomicU64 = AtomicU64::new(0);
/// Pages reclaimed (freed by a scan).
pub static PGSTEAL: AtomicU64 = AtomicU64::new(0);
/// Huge frames a scan split so that their pages could be swapped out
/// (`thp_swpout_fallback`: Linux counts so the huge pages it could not swap out whole).
pub static THP_SWPOUT_FALLBACK: AtomicU64 = AtomicU64::new(0);

/// The lists' links in the frames' metadata.
struct MetaLinks;

#[inline]
fn meta_at(i: u32) -> Option<&'static FrameMeta> {
    FRAMES.meta_at(i)
}

impl Links for MetaLinks {
    fn links(&self, i: u32) -> [u32; 2] {
        meta_at(i)
            .and_then(|m| m.lru_links())
            .unwrap_or([pagoda_mm::swap::lru::NIL; 2])
    }

    fn set_links(&self, i: u32, links: [u32; 2]) {
        if let Some(m) = meta_at(i) {
            let _ = m.set_lru_links(links);
        }
    }

    fn list_of(&self, i: u32) -> Option<List> {
        let f = meta_at(i)?.flags();
        f.contains(FrameFlags::ON_LRU).then(|| {
            if f.contains(FrameFlags::ACTIVE) {
                List::Active
            } else {
                List::Inactive
            }
        })
    }

    fn pages(&self, i: u32) -> usize {
        match meta_at(i).map(FrameMeta::frame_use) {
            Some(FrameUse::UserHuge) => HUGE_PAGE_PAGES,
            _ => 1,
        }
    }

    fn set_list(&self, i: u32, list: Option<List>) {
        let Some(m) = meta_at(i) else { return };
        match list {
            None => {
                m.remove_flags(FrameFlags::ON_LRU | FrameFlags::ACTIVE);
            }
            Some(List::Inactive) => {
                // One atomic update in the common case (a new page, never active).
                if m.insert_flags(FrameFlags::ON_LRU)
                    .contains(FrameFlags::ACTIVE)
                {
                    m.remove_flags(FrameFlags::ACTIVE);
                }
            }
            Some(List::Active) => {
                m.insert_flags(FrameFlags::ON_LRU | FrameFlags::ACTIVE);
            }
        }
    }
}

/// Private pages are put on the lists only while a swap area is on: without one nothing
/// can take an anonymous page out of memory, so keeping the lists would cost every fault
/// and every free (a lock and a list insertion or removal, some 240 and 20 instructions)
/// for nothing. `swapon` turns this on and puts every private page that exists then on
/// the inactive list ([`start_tracking`]); `swapoff` turns it off and empties the lists.
static TRACKING: AtomicBool = AtomicBool::new(false);

/// Pages [`start_tracking`] lists per hold of a space's lock.
const TRACK_BATCH: usize = 512;

/// Whether new private pages go on the lists (a swap area is on).
#[inline]
pub fn tracking() -> bool {
    TRACKING.load(Ordering::Acquire)
}

/// A swap area came on: every private page allocated from now on goes on the inactive
/// list, and so does, through a walk of every address space, every private page that
/// exists already. A fault that allocated a page before the flag was set holds its
/// space's lock until the page is mapped, so the walk, which takes that lock, finds the
/// page; a fault after it sees the flag.
pub fn start_tracking() {
    TRACKING.store(true, Ordering::SeqCst);
    let mut after = None;
    while let Some(mm) = Mm::next_after(after) {
        after = Some(mm.space_id());
        let mut from = VirtAddr(0);
        loop {
            let next = {
                let mut space = mm.lock();
                let Some(space) = space.as_mut() else { break };
                let mut listed = 0;
                space.private_pages(from, |_, pa| {
                    if listed == TRACK_BATCH {
                        return false;
                    }
                    listed += 1;
                    // The PTE's reference holds the frame while the space is locked. A
                    // huge frame is listed by its head (split when reclaim picks it).
                    if FRAMES.meta(pa.pfn()).is_some_and(|m| {
                        matches!(m.frame_use(), FrameUse::UserAnon | FrameUse::UserHuge)
                            && pagoda_mm::vm::owner_is_private(m.owner())
                    }) {
                        add(pa, List::Inactive);
                    }
                    true
                })
            };
            match next {
                Some(va) => {
                    from = va;
                    crate::proc::sched::preempt();
                }
                None => break,
            }
        }
    }
}

/// The swap area went: new private pages stay off the lists, and the lists are emptied.
pub fn stop_tracking() {
    TRACKING.store(false, Ordering::SeqCst);
    let mut lru = LRU.lock();
    for list in [List::Active, List::Inactive] {
        while lru.pop_tail(&MetaLinks, list).is_some() {}
    }
}

/// Splits the cold huge frame at `head`, which the scan isolated and holds a reference
/// to, into 512 ordinary frames at the inactive list's tail, where the scan takes them
/// next (Linux splits a huge page before swapping it out). Only a frame that one 2 MiB
/// leaf alone maps is split; one shared after fork (or mapped by 4 KiB entries of a
/// shared split) stays whole until the sharing ends. Whether it was split: then the
/// scan's reference is gone.
fn split_for_reclaim(head: PhysAddr) -> bool {
    let mut split = false;
    for_each_mapping(
        &KernelFrames,
        head,
        &mut KernelSpaces::waiting(),
        |space, va, pte| {
            // The leaf's reference and the scan's, nothing else.
            if split || !pte.huge || FRAMES.meta(head.pfn()).map(FrameMeta::refcount) != Some(2) {
                return;
            }
            // With the space locked the leaf keeps the frame: the scan's reference may
            // go first, so that the leaf's is the only one and the frame itself splits.
            let _ = frames::release(head.pfn());
            if space.split_huge_page(va).is_err() {
                let _ = FRAMES.get(head.pfn());
                return;
            }
            split = true;
            // The split listed the 512 frames at the inactive head; move them to the
            // tail while the space is still locked (its PTEs hold them: none can be
            // freed and reused meanwhile). Only frames on a list move.
            let mut lru = LRU.lock();
            let first = FRAMES.index_of(head.pfn());
            for i in (0..HUGE_PAGE_PAGES as u32).filter_map(|k| first.map(|f| f + k)) {
                if lru.remove(&MetaLinks, i).is_some() {
                    lru.push_tail(&MetaLinks, i, List::Inactive);
                }
            }
        },
    );
    if split {
        THP_SWPOUT_FALLBACK.fetch_add(1, Ordering::Relaxed);
    }
    split
}

/// Puts a user frame the caller holds on `list` (no effect if it is on one).
pub fn add(pa: PhysAddr, list: List) {
    if let Some(i) = FRAMES.index_of(pa.pfn()) {
        LRU.lock().push(&MetaLinks, i, list);
    }
}

/// Called between the last reference's drop and the free: takes a listed frame off its
/// list (the allocator reuses the link words). Every free asks; only a listed frame (swap
/// on) goes further, out of line, so that the frees of a system without swap stay short.
#[inline(always)]
pub fn forget(meta: &FrameMeta, index: u32) {
    if meta.flags().contains(FrameFlags::ON_LRU) {
        forget_listed(index);
    }
}

#[inline(never)]
fn forget_listed(index: u32) {
    LRU.lock().remove(&MetaLinks, index);
}

/// `(active, inactive)` list lengths, in pages (a huge frame counts its 512).
pub fn lengths() -> (usize, usize) {
    let l = LRU.lock();
    (l.pages(List::Active), l.pages(List::Inactive))
}

/// Takes a user frame the caller holds off its list, if it is on one (a huge frame about
/// to be split, whose weight on the list changes); the list it was on.
pub fn take_off(pa: PhysAddr) -> Option<List> {
    let i = FRAMES.index_of(pa.pfn())?;
    LRU.lock().remove(&MetaLinks, i)
}

/// Takes the oldest frame of `list` off it with a reference; `None` if the list is empty.
/// A frame whose last reference is being dropped is skipped.
fn isolate(list: List) -> Option<PhysAddr> {
    let mut lru = LRU.lock();
    loop {
        let i = lru.pop_tail(&MetaLinks, list)?;
        let Some(pfn) = FRAMES.pfn_at(i) else {
            continue;
        };
        if FRAMES.get(pfn).is_ok() {
            return Some(pfn.addr());
        }
    }
}

/// Puts an isolated frame back on `list` and drops the scan's reference.
fn put_back(pa: PhysAddr, list: Option<List>) {
    if let Some(list) = list {
        add(pa, list);
    }
    let _ = frames::release(pa.pfn());
}

/// The address spaces, as the reverse map reaches them: each locked in turn, or, for a
/// look that must not wait ([`KernelSpaces::if_free`]), only if its lock is free at once.
pub struct KernelSpaces {
    wait: bool,
    /// A space was skipped: its lock was held (never when waiting).
    busy: bool,
}

impl KernelSpaces {
    /// Each space locked in turn, waiting for its lock.
    pub fn waiting() -> Self {
        Self {
            wait: true,
            busy: false,
        }
    }

    /// Each space locked only if nobody holds or waits for its lock (the others are
    /// skipped, and [`busy`](Self::busy) says so).
    fn if_free() -> Self {
        Self {
            wait: false,
            busy: false,
        }
    }

    /// Whether a space was skipped.
    fn busy(&self) -> bool {
        self.busy
    }
}

impl SpaceSet<UserMmu, KernelFrames> for KernelSpaces {
    fn with_space(
        &mut self,
        id: SpaceId,
        f: &mut dyn FnMut(&mut AddressSpace<UserMmu, KernelFrames>),
    ) {
        let Some(mm) = Mm::by_space(id) else { return };
        let guard = if self.wait {
            Some(mm.lock())
        } else {
            mm.try_lock()
        };
        let Some(mut space) = guard else {
            self.busy = true;
            return;
        };
        if let Some(space) = space.as_mut() {
            f(space);
        }
    }
}

/// Whether any PTE mapping `pa` was used since the last look (clearing the bits). A
/// space whose lock is held (its tasks are faulting, or switching to it) counts as a
/// use, as Linux's reclaim treats a contended lock: the scan never waits for a busy
/// space just to look, and a space in use is the last to lose pages. Waiting here,
/// page after page, kept the space's own tasks from running on other harts.
fn referenced(pa: PhysAddr) -> bool {
    let mut used = false;
    let mut spaces = KernelSpaces::if_free();
    for_each_mapping(&KernelFrames, pa, &mut spaces, |space, va, _| {
        used |= space.take_accessed(va);
    });
    used || spaces.busy()
}

/// Moves up to `n` frames from the active list's tail: referenced ones back to its head,
/// the others to the inactive list.
fn deactivate(n: usize) {
    for _ in 0..n {
        let Some(pa) = isolate(List::Active) else {
            return;
        };
        let list = if referenced(pa) {
            List::Active
        } else {
            List::Inactive
        };
        put_back(pa, Some(list));
    }
}

/// What became of a scanned frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Written out (or clean in swap) and freed.
    Freed,
    /// In use: to the active list.
    Activate,
    /// Could not be reclaimed now: back to the inactive list.
    Keep,
    /// Cannot be reclaimed at all (no swap space): back to the active list.
    Unreclaimable,
}

/// Frees up to `target` frames by swapping the coldest private pages out; the number
/// freed. Runs with no lock held; sleeps for the writes.
pub fn reclaim(target: usize) -> usize {
    if RECLAIMING.swap(true, Ordering::AcqRel) {
        // Another task is reclaiming: wait for it, then let the caller retry.
        SCAN_DONE.wait_uninterruptible(|| !RECLAIMING.load(Ordering::Acquire));
        return 1;
    }
    let freed = scan(target);
    RECLAIMING.store(false, Ordering::Release);
    SCAN_DONE.wake_all();
    freed
}

/// `kswapd0` was woken and has not finished its round.
static KSWAPD_AWAKE: AtomicBool = AtomicBool::new(false);
/// Where `kswapd0` sleeps.
static KSWAPD: WaitQueue = WaitQueue::new();
/// How long `kswapd0` rests after a round that freed nothing (no swap space, everything
/// in use), so that faults do not keep it scanning in vain: Linux's kswapd backs off the
/// same way, and direct reclaim and the out-of-memory killer handle what comes.
const KSWAPD_BACKOFF_NS: u64 = 10_000_000;

/// Starts the background reclaim thread, `kswapd0` (after init: init is process 1).
pub fn start_kswapd() -> Result<(), crate::errno::Errno> {
    crate::proc::spawn_kernel_thread("kswapd0", kswapd)
}

/// Called after a resolved fault, holding no lock: below the low watermark, wakes
/// `kswapd0` (one load when memory is plentiful); further down, where `kswapd0` is not
/// keeping up (the faulting tasks allocate faster than it frees), the task reclaims a
/// batch itself, so that free memory stays clear of the kernel's reserve (Linux
/// throttles allocators the same way).
#[inline]
pub fn after_fault() {
    // Without swap there is nothing to reclaim: kswapd0 stays asleep.
    if !frames::below_low_watermark() || !super::swap::enabled() {
        return;
    }
    if !KSWAPD_AWAKE.swap(true, Ordering::AcqRel) {
        KSWAPD.wake_all();
    }
    if frames::below_throttle_watermark() {
        reclaim(BATCH);
    }
}

/// `kswapd0`: sleeps until free memory falls below the low watermark, then reclaims in
/// batches until it reaches the high one, letting other tasks run between batches (the
/// kernel does not preempt itself).
extern "C" fn kswapd() -> ! {
    let me = crate::proc::current();
    loop {
        KSWAPD.wait_uninterruptible(|| KSWAPD_AWAKE.load(Ordering::Acquire));
        let mut freed_any = false;
        while super::swap::enabled() && !frames::above_high_watermark() {
            if RECLAIMING.swap(true, Ordering::AcqRel) {
                // A direct reclaim is scanning: let it finish.
                SCAN_DONE.wait_uninterruptible(|| !RECLAIMING.load(Ordering::Acquire));
                continue;
            }
            let freed = scan(BATCH);
            RECLAIMING.store(false, Ordering::Release);
            SCAN_DONE.wake_all();
            if freed == 0 {
                break;
            }
            freed_any = true;
            crate::proc::sched::preempt();
        }
        if !freed_any {
            let until = crate::timer::now_ns() + KSWAPD_BACKOFF_NS;
            crate::proc::sched::sleep_until(&me, until);
        }
        KSWAPD_AWAKE.store(false, Ordering::Release);
    }
}

/// Pages a scan unmaps before it waits for their writes: more than the device's queue
/// holds (five requests), so that it stays busy while the first ones complete.
const WRITE_BATCH: usize = 8;

/// Where a scanned frame goes after `verdict`, with the scan's reference dropped.
fn settle_frame(pa: PhysAddr, verdict: Verdict) {
    match verdict {
        Verdict::Freed => put_back(pa, None),
        Verdict::Activate | Verdict::Unreclaimable => put_back(pa, Some(List::Active)),
        Verdict::Keep => put_back(pa, Some(List::Inactive)),
    }
}

/// Finishes a batch of outgoing pages (the submitted writes first, then the ones that
/// found no request slot: they submit and wait once no ticket of the batch is held);
/// the number freed.
fn finish(
    outgoing: &mut ArrayVec<(PhysAddr, Outgoing), WRITE_BATCH>,
    pending: &mut PendingFlush,
) -> usize {
    // No hart reaches the pages any more once this returns: their writes may start.
    pending.issue(&HartTlb);
    for (_, out) in outgoing.iter_mut() {
        super::swap::swap_out_submit(out);
    }
    let mut freed = 0;
    for later in [false, true] {
        let mut i = 0;
        while i < outgoing.len() {
            if outgoing[i].1.unsubmitted() != later {
                i += 1;
                continue;
            }
            let (pa, out) = outgoing.remove(i);
            let verdict = super::swap::swap_out_finish(out);
            if verdict == Verdict::Freed {
                freed += 1;
            }
            settle_frame(pa, verdict);
        }
    }
    freed
}

fn scan(target: usize) -> usize {
    if !super::swap::enabled() {
        return 0;
    }
    let (active, inactive) = lengths();
    let budget = 2 * (active + inactive) + target;
    let mut freed = 0;
    let mut scanned = 0;
    // Pages unmapped, their flushes owed in `pending`, then their writes in flight:
    // finished together.
    let mut outgoing: ArrayVec<(PhysAddr, Outgoing), WRITE_BATCH> = ArrayVec::new();
    let mut pending = PendingFlush::new();
    while freed + outgoing.len() < target && scanned < budget {
        let (active, inactive) = lengths();
        if inactive < active {
            // Keep the inactive list at least as long as the active one (new pages carry
            // the accessed bit, so a first pass may send many back to the active list).
            let n = BATCH.min(active - inactive).max(1);
            deactivate(n);
            scanned += n;
        }
        let Some(pa) = isolate(List::Inactive) else {
            if active == 0 {
                break;
            }
            continue;
        };
        scanned += 1;
        let verdict = if referenced(pa) {
            Verdict::Activate
        } else if FRAMES
            .meta(pa.pfn())
            .is_some_and(|m| m.frame_use() == FrameUse::UserHuge)
        {
            // A cold huge page: split, its pages next on the list (nothing freed yet).
            if super::mlock::mapped_locked(pa) || !split_for_reclaim(pa) {
                settle_frame(pa, Verdict::Activate);
            }
            continue;
        } else {
            match super::swap::swap_out_start(pa, &mut pending) {
                Ok(out) => {
                    outgoing.push((pa, out));
                    if outgoing.is_full() {
                        freed += finish(&mut outgoing, &mut pending);
                    }
                    continue;
                }
                Err(verdict) => verdict,
            }
        };
        settle_frame(pa, verdict);
        if verdict == Verdict::Unreclaimable {
            break;
        }
    }
    freed += finish(&mut outgoing, &mut pending);
    PGSCAN.fetch_add(scanned as u64, Ordering::Relaxed);
    PGSTEAL.fetch_add(freed as u64, Ordering::Relaxed);
    freed
}
