//! Swap: a Linux-format swap area on the virtio block device, the swap cache, and the
//! two directions a page moves: out (reclaim) and back in (a fault).
//!
//! ```text
//!  swap_out_start(F)   [reclaim, holding a reference to F]
//!    slot S for F (new: count 1, the cache's; cache S -> F, busy, not written)
//!    every PTE mapping F ──► remembered entry S (count +1 each)   via the reverse map,
//!                            the TLB flushes owed to the batch
//!    F referenced only by the scan and the cache? ── no ──► keep (faults find F cached)
//!  [once a batch of 8 is out: one flush for all, then]
//!  swap_out_submit: the write of F to S, unless S holds F already (written); no wait
//!  swap_out_finish
//!    wait for the write (sleeping) ──► cache entry dropped, F freed
//!
//!  swap_in(va, S)   [page fault, no lock held]
//!    S cached? ── busy: wait ── ready: take F
//!    else: fresh frame G, cache S -> G busy, read S (and read-ahead neighbours of the
//!          same cluster, while read-ahead keeps paying), sleeping
//!    lock the space: PTE still S? map G read-only copy-on-write, drop the entry's
//!    reference; G stays in the cache, written (S holds its bytes)
//!  first write to G: nothing but the cache and this PTE hold G, no entry names S
//!    ──► the cache lets go (S freed), the PTE takes G over (take_exclusive)
//! ```
//!
//! A cache entry marked busy belongs to the task doing I/O or reclaim on it; every other
//! task waits for it. A frame in the cache holds one reference for the cache, has the
//! use [`FrameUse::SwapCache`], and is never mapped writable while it is there, so its
//! bytes never change there. Reclaiming it again writes it only if its entry is not
//! marked written (its frame was read from the slot): a swap-out stopped
//! after the PTEs took the slot leaves it unwritten, and skipping that write would free
//! the only copy. The entry goes when nothing
//! needs it: no PTE maps the frame and no entry names the slot ([`put`], [`unmapped`]),
//! or a write takes the frame over ([`take_exclusive`]), or reclaim frees the frame.
//!
//! Lock order: an address space, then the swap area ([`dup`]/[`put`] run under the space
//! that copies or drops an entry); reclaim never holds the area while it takes a space.

#![deny(unsafe_code)]

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use arrayvec::ArrayVec;
use pagoda_formats::swap::SwapHeader;
use pagoda_mm::addr::{PAGE_SIZE, Pfn, PhysAddr, VirtAddr};
use pagoda_mm::frame::FrameUse;
use pagoda_mm::swap::{CLUSTER, Cached, List, SwapMap};
use pagoda_mm::vm::{FaultError, SwapEntry, VmError, for_each_mapping};
use spin::Mutex;

use super::frames::{self, FRAMES};
use super::reclaim::{self, KernelSpaces, Verdict};
use super::uspace::KernelFrames;
use crate::drivers::virtio_blk::{self, Op};
use crate::proc::Mm;
use crate::proc::wait::WaitQueue;
use pagoda_mm::tlb::PendingFlush;

/// Slots read ahead of a swap-in fault, after the faulting one (from the same cluster).
pub const READ_AHEAD: u64 = 7;

/// The swap area (one; Linux allows 32).
struct Area {
    map: SwapMap,
    /// The cache's slot for each frame (by metadata index), [`NO_SLOT`] if none.
    slot_of: Vec<u32>,
    /// `swapoff` is bringing every page back: nothing more is written out.
    draining: bool,
}

const NO_SLOT: u32 = u32::MAX;

static AREA: Mutex<Option<Area>> = Mutex::new(None);
/// Woken when a busy cache entry becomes ready (or goes).
static CACHE_READY: WaitQueue = WaitQueue::new();

/// Pages read from swap (`pswpin`).
pub static PSWPIN: AtomicU64 = AtomicU64::new(0);
/// Pages written to swap (`pswpout`).
pub static PSWPOUT: AtomicU64 = AtomicU64::new(0);

/// Why swap could not be enabled.
#[derive(Debug)]
pub enum SwapError {
    /// No block device.
    NoDevice,
    /// Already enabled.
    Busy,
    /// The header could not be read, or is not a swap header.
    BadHeader,
    /// No memory for the slot map, or (`swapoff`) for the pages to come back.
    NoMemory,
    /// (`swapoff`) No swap area is enabled.
    NotEnabled,
}

impl From<SwapError> for crate::errno::Errno {
    fn from(e: SwapError) -> Self {
        use crate::errno::Errno;
        match e {
            SwapError::NoDevice => Errno::ENODEV,
            SwapError::Busy => Errno::EBUSY,
            SwapError::BadHeader | SwapError::NotEnabled => Errno::EINVAL,
            SwapError::NoMemory => Errno::ENOMEM,
        }
    }
}

/// Reads the swap header on the block device and enables the area; returns the usable
/// pages. At boot (`boot`, before any process) the header is read by polling; from
/// `swapon` the caller sleeps for it.
pub fn enable(boot: bool) -> Result<u64, SwapError> {
    let pages = virtio_blk::pages();
    if pages == 0 {
        return Err(SwapError::NoDevice);
    }
    let frame = frames::alloc(0, FrameUse::Kernel).map_err(|_| SwapError::NoMemory)?;
    let result = (|| {
        let read = if boot {
            virtio_blk::transfer_polled(Op::Read, 0, frame.addr())
        } else {
            virtio_blk::transfer(Op::Read, 0, frame.addr())
        };
        read.map_err(|_| SwapError::BadHeader)?;
        let map = super::machine::with_frame(frame.addr(), |bytes| {
            let header = SwapHeader::parse(bytes, pages).map_err(|_| SwapError::BadHeader)?;
            SwapMap::new(
                u64::from(header.last_page),
                header.bad_pages().map(u64::from),
            )
            .map_err(|_| SwapError::NoMemory)
        })?;
        let mut slot_of = Vec::new();
        slot_of
            .try_reserve_exact(FRAMES.span_len())
            .map_err(|_| SwapError::NoMemory)?;
        slot_of.resize(FRAMES.span_len(), NO_SLOT);
        let mut area = AREA.lock();
        if area.is_some() {
            return Err(SwapError::Busy);
        }
        let usable = map.usable();
        *area = Some(Area {
            map,
            slot_of,
            draining: false,
        });
        Ok(usable)
    })();
    frames::put(frame);
    if result.is_ok() {
        reclaim::start_tracking();
    }
    result
}

/// Whether a swap area is enabled.
pub fn enabled() -> bool {
    AREA.lock().is_some()
}

/// `(total, free)` pages of swap, and pages in the swap cache.
pub fn totals() -> (u64, u64, u64) {
    match AREA.lock().as_ref() {
        Some(a) => (
            a.map.usable(),
            a.map.free(),
            a.slot_of.iter().filter(|&&s| s != NO_SLOT).count() as u64,
        ),
        None => (0, 0, 0),
    }
}

/// The entry for slot `slot` of the area.
fn entry_of(slot: u64) -> Option<SwapEntry> {
    SwapEntry::new(0, slot)
}

fn refcount(pa: PhysAddr) -> u32 {
    FRAMES.meta(pa.pfn()).map_or(0, |m| m.refcount())
}

fn frame_index(pa: PhysAddr) -> Option<u32> {
    FRAMES.index_of(pa.pfn())
}

fn frame_at(index: u32) -> Option<PhysAddr> {
    FRAMES.pfn_at(index).map(Pfn::addr)
}

/// `fork` copied a remembered PTE: one more reference to its slot.
pub fn dup(entry: SwapEntry) {
    if let Some(a) = AREA.lock().as_mut() {
        a.map.dup(entry.slot());
    }
}

/// A remembered PTE is gone (`munmap`, exit, or mapped again): one reference less. When
/// only the swap cache still names the slot and no PTE maps its frame, the cache entry
/// goes too, freeing the slot and the frame.
pub fn put(entry: SwapEntry) {
    let freed = {
        let mut area = AREA.lock();
        let Some(a) = area.as_mut() else { return };
        let slot = entry.slot();
        if a.map.put(slot) == 1 {
            drop_unused(a, slot)
        } else {
            None
        }
    };
    release(freed);
}

/// A PTE mapping the frame `pa` (in the swap cache) went away: if nothing else maps it
/// and no entry names its slot, the cache entry goes (slot and frame freed).
pub fn unmapped(pa: PhysAddr) {
    let freed = {
        let mut area = AREA.lock();
        let Some(a) = area.as_mut() else { return };
        let Some(index) = frame_index(pa) else { return };
        match a.slot_of[index as usize] {
            NO_SLOT => None,
            slot if a.map.count(u64::from(slot)) == 1 => drop_unused(a, u64::from(slot)),
            _ => None,
        }
    };
    release(freed);
}

/// A write fault on a PTE mapping the cached frame `pa`: if the PTE and the cache are its
/// only holders and no entry names the slot, the cache lets go (the slot is freed) and the
/// PTE may take the frame over.
pub fn take_exclusive(pa: PhysAddr) -> bool {
    let freed = {
        let mut area = AREA.lock();
        let Some(a) = area.as_mut() else { return false };
        let Some(index) = frame_index(pa) else {
            return false;
        };
        let slot = a.slot_of[index as usize];
        if slot == NO_SLOT
            || a.map.count(u64::from(slot)) != 1
            || a.map.cached(u64::from(slot)).is_none_or(|c| c.busy)
            || refcount(pa) != 2
        {
            return false;
        }
        uncache(a, u64::from(slot))
    };
    release(freed);
    true
}

/// Drops `slot`'s cache entry if it is ready and its frame is mapped nowhere (the cache
/// holds its only reference); returns the frame to release outside the lock.
fn drop_unused(a: &mut Area, slot: u64) -> Option<PhysAddr> {
    let c = a.map.cached(slot).filter(|c| !c.busy)?;
    let pa = frame_at(c.frame)?;
    if refcount(pa) != 1 {
        return None;
    }
    uncache(a, slot)
}

/// Removes `slot`'s cache entry: the slot loses the cache's reference, the frame leaves
/// the cache (returned, still holding the cache's reference, for the caller to release
/// outside the lock).
fn uncache(a: &mut Area, slot: u64) -> Option<PhysAddr> {
    let c = a.map.cached(slot)?;
    a.map.set_cached(slot, None);
    if let Some(s) = a.slot_of.get_mut(c.frame as usize) {
        *s = NO_SLOT;
    }
    a.map.put(slot);
    let pa = frame_at(c.frame)?;
    let _ = FRAMES.set_use(pa.pfn(), FrameUse::UserAnon);
    Some(pa)
}

/// Drops the cache's reference to a frame that left the cache.
fn release(frame: Option<PhysAddr>) {
    if let Some(pa) = frame {
        let _ = frames::release(pa.pfn());
    }
}

/// Marks `slot`'s cache entry ready (not busy), and written if `read` (its frame was just
/// read from the slot), and drops it if nothing needs it; wakes the tasks waiting for it.
fn settle(slot: u64, read: bool) {
    let freed = {
        let mut area = AREA.lock();
        let Some(a) = area.as_mut() else { return };
        if let Some(c) = a.map.cached(slot) {
            let written = c.written || read;
            a.map.set_cached(
                slot,
                Some(Cached {
                    busy: false,
                    written,
                    ..c
                }),
            );
        }
        if a.map.count(slot) == 1 {
            drop_unused(a, slot)
        } else {
            None
        }
    };
    CACHE_READY.wake_all();
    release(freed);
}

/// A page on its way out: unmapped everywhere, its write submitted or still to submit.
/// [`swap_out_finish`] completes it.
#[must_use]
pub struct Outgoing {
    slot: u64,
    frame: PhysAddr,
    write: Write,
}

/// The write an [`Outgoing`] page needs.
enum Write {
    /// In flight.
    Submitted(virtio_blk::Ticket),
    /// None: the slot holds the page already (read from it, or written, and unchanged).
    Clean,
    /// Not submitted yet (before the batch's flush, or no request slot was free then):
    /// written (and waited for) by [`swap_out_finish`], which the caller runs once it
    /// holds no other ticket.
    Later,
}

impl Outgoing {
    /// Whether finishing it waits for a submission of its own (finish it after the
    /// others of its batch).
    pub fn unsubmitted(&self) -> bool {
        matches!(self.write, Write::Later)
    }
}

/// Reclaim's first step for one private frame the caller holds a reference to (and found
/// not recently used): unmaps it everywhere into swap entries, leaving the TLB flushes
/// owed in `pending` (one flush for the whole batch, not one remote fence per page).
/// The caller issues `pending`, then [`swap_out_submit`]s the batch's writes (several
/// requests in flight, one sleep for the batch), then finishes each page. `Err` with the
/// verdict if the page stays.
pub fn swap_out_start(pa: PhysAddr, pending: &mut PendingFlush) -> Result<Outgoing, Verdict> {
    // Never a page a locked area maps (mlock): asked before a slot is taken.
    if super::mlock::mapped_locked(pa) {
        return Err(Verdict::Activate);
    }
    let Some(index) = frame_index(pa) else {
        return Err(Verdict::Keep);
    };
    // A slot, and the cache entry that owns the page while it moves (busy).
    let mut clean = false;
    let slot = {
        let mut area = AREA.lock();
        let Some(a) = area.as_mut() else {
            return Err(Verdict::Unreclaimable);
        };
        if a.draining {
            return Err(Verdict::Unreclaimable);
        }
        match a.slot_of[index as usize] {
            NO_SLOT => {
                // No free slot: this page stays (to the active list, as Linux does when
                // it finds no swap space for a page), and the scan goes on: pages whose
                // slot already holds them (read back, unchanged) still free without
                // one. Ending the scan here let a read-back fill memory with such pages
                // while the out-of-memory killer ran (memtour's swap step, 256 MiB with
                // a 256 MiB disk).
                let Some(slot) = a.map.alloc() else {
                    return Err(Verdict::Activate);
                };
                enter(a, slot, index);
                // The cache's reference.
                let _ = FRAMES.get(pa.pfn());
                let _ = FRAMES.set_use(pa.pfn(), FrameUse::SwapCache);
                slot
            }
            s => {
                let slot = u64::from(s);
                match a.map.cached(slot) {
                    Some(c) if !c.busy => {
                        a.map.set_cached(slot, Some(Cached { busy: true, ..c }));
                        clean = c.written;
                    }
                    _ => return Err(Verdict::Keep),
                }
                // Written only if the slot does not hold the page yet: a swap-out that
                // stopped after the PTEs took the slot (a mapping was missed, the write
                // failed) leaves an unwritten slot cached, and skipping its write freed
                // the only copy once (session 7's data loss).
                slot
            }
        }
    };
    let Some(entry) = entry_of(slot) else {
        return Err(finish_kept(slot));
    };
    let mut failed = false;
    for_each_mapping(
        &KernelFrames,
        pa,
        &mut KernelSpaces::waiting(),
        |space, va, _| {
            dup(entry);
            if space.remember_page_deferred(va, entry, pending).is_err() {
                put(entry);
                failed = true;
            }
        },
    );
    // Only the scan's and the cache's references left: nothing maps the frame.
    if failed || refcount(pa) != 2 {
        return Err(finish_kept(slot));
    }
    Ok(Outgoing {
        slot,
        frame: pa,
        write: if clean { Write::Clean } else { Write::Later },
    })
}

/// Submits the write of an outgoing page whose unmapping has been flushed everywhere
/// (the batch's [`PendingFlush`] issued), without waiting for it, and without sleeping
/// for a request slot (the caller may hold other pages' tickets): if none is free the
/// page is written when it is finished.
pub fn swap_out_submit(out: &mut Outgoing) {
    if let Write::Later = out.write
        && let Ok(Some(t)) = virtio_blk::submit_more(Op::Write, out.slot, out.frame)
    {
        out.write = Write::Submitted(t);
    }
}

/// Reclaim's second step: waits for the page's write; the page is then on the disk and
/// nothing maps the frame, so it leaves the cache (the entries read it back from the
/// slot) and is freed with the caller's reference.
pub fn swap_out_finish(out: Outgoing) -> Verdict {
    let slot = out.slot;
    let written = match out.write {
        Write::Submitted(t) => virtio_blk::wait(t),
        Write::Later => virtio_blk::transfer(Op::Write, slot, out.frame),
        Write::Clean => Ok(()),
    };
    if written.is_err() {
        return finish_kept(slot);
    }
    if !matches!(out.write, Write::Clean) {
        PSWPOUT.fetch_add(1, Ordering::Relaxed);
    }
    let freed = AREA.lock().as_mut().and_then(|a| uncache(a, slot));
    CACHE_READY.wake_all();
    match freed {
        Some(f) => {
            release(Some(f));
            Verdict::Freed
        }
        None => Verdict::Keep,
    }
}

/// Ends a swap-out that could not finish: the page stays in the cache (ready), or leaves
/// it if nothing needs it any more.
fn finish_kept(slot: u64) -> Verdict {
    settle(slot, false);
    Verdict::Keep
}

/// What a swap-in found in the cache.
enum Lookup {
    /// The slot is free: the PTE that named it changed meanwhile.
    Stale,
    /// A task owns the entry: wait.
    Busy,
    /// The frame (a reference taken for the caller).
    Ready(PhysAddr),
    /// Not cached.
    Missing,
}

fn lookup(slot: u64) -> Lookup {
    let area = AREA.lock();
    let Some(a) = area.as_ref() else {
        return Lookup::Stale;
    };
    if a.map.count(slot) == 0 {
        return Lookup::Stale;
    }
    match a.map.cached(slot) {
        Some(c) if c.busy => Lookup::Busy,
        Some(c) => match frame_at(c.frame) {
            Some(pa) if FRAMES.get(pa.pfn()).is_ok() => Lookup::Ready(pa),
            _ => Lookup::Busy,
        },
        None => Lookup::Missing,
    }
}

/// Brings the page of `entry` back for a fault at `va` of the current process (called
/// without any lock; sleeps for the read). `Ok` means "retry the fault" (the page is
/// mapped, or the PTE changed meanwhile); `OutOfMemory` asks the caller to reclaim first,
/// `Bus` reports a failed read.
pub fn swap_in(va: usize, entry: SwapEntry) -> Result<(), FaultError> {
    let Some((pa, read)) = fetch(entry.slot())? else {
        return Ok(());
    };
    let result = match crate::proc::sched::current() {
        Some(me) => map_in(&me.mm(), VirtAddr(va), entry, pa, read),
        None => Err(FaultError::Unmapped),
    };
    let _ = frames::release(pa.pfn());
    result
}

/// The frame holding `slot`'s page, with a reference for the caller, and whether the
/// caller waited for the disk: read by this call, or found in the cache while another
/// task's read of it was in flight. `None` if the slot is free (the PTE that named it
/// changed meanwhile).
fn fetch(slot: u64) -> Result<Option<(PhysAddr, bool)>, FaultError> {
    let mut waited = false;
    loop {
        match lookup(slot) {
            Lookup::Stale => return Ok(None),
            Lookup::Busy => {
                waited = true;
                CACHE_READY.wait_uninterruptible(|| !matches!(lookup_busy(slot), Some(true)));
            }
            Lookup::Ready(pa) => {
                window_hit();
                return Ok(Some((pa, waited)));
            }
            Lookup::Missing => {
                if let Some(pa) = read_in(slot)? {
                    return Ok(Some((pa, true)));
                }
            }
        }
    }
}

/// Whether the swap cache holds the page of `entry`, ready (`mincore`: a page in swap
/// that is still in memory is resident).
pub fn is_cached(entry: SwapEntry) -> bool {
    lookup_busy(entry.slot()) == Some(false)
}

/// Whether `slot`'s cache entry is busy (`None`: not cached, or the slot is free).
fn lookup_busy(slot: u64) -> Option<bool> {
    let area = AREA.lock();
    let a = area.as_ref()?;
    a.map.cached(slot).map(|c| c.busy)
}

/// How many neighbours the next swap-in reads ahead (0..=READ_AHEAD): doubled when a
/// fault finds its page already read (read-ahead paid), halved when it must read
/// (read-ahead missed, as for random access), so sequential access reads in runs and
/// random access reads only what it touches.
static WINDOW: AtomicU64 = AtomicU64::new(READ_AHEAD);

fn window_hit() {
    let w = WINDOW.load(Ordering::Relaxed);
    WINDOW.store((w * 2).clamp(1, READ_AHEAD), Ordering::Relaxed);
}

fn window_miss() {
    let w = WINDOW.load(Ordering::Relaxed);
    WINDOW.store(w / 2, Ordering::Relaxed);
}

/// Reads `slot` (and its read-ahead neighbours) into fresh frames of the cache; the
/// faulting slot's frame with a reference for the caller, or `None` if another task
/// cached it first.
fn read_in(slot: u64) -> Result<Option<PhysAddr>, FaultError> {
    let mut batch: ArrayVec<(u64, PhysAddr), { 1 + READ_AHEAD as usize }> = ArrayVec::new();
    {
        let new = new_frame().ok_or(FaultError::OutOfMemory)?;
        let mut area = AREA.lock();
        let Some(a) = area.as_mut() else {
            drop(area);
            release(Some(new));
            return Ok(None);
        };
        if a.map.count(slot) == 0 || a.map.cached(slot).is_some() || !cache(a, slot, new) {
            drop(area);
            release(Some(new));
            return Ok(None);
        }
        batch.push((slot, new));
        // Neighbours in use and not cached, from the same cluster (written together).
        let end = (slot / CLUSTER + 1) * CLUSTER;
        let window = WINDOW.load(Ordering::Relaxed);
        for s in slot + 1..(slot + 1 + window).min(end) {
            if a.map.count(s) == 0 || a.map.cached(s).is_some() {
                continue;
            }
            // Never reclaim for read-ahead: it stops where free memory does.
            let Some(f) = new_frame() else {
                break;
            };
            if !cache(a, s, f) {
                release(Some(f));
                break;
            }
            batch.push((s, f));
        }
    }
    window_miss();
    // The caller's reference to the faulting slot's frame (the cache holds the other).
    let _ = FRAMES.get(batch[0].1.pfn());
    // The faulting page first (holding no ticket yet, it may wait for a request slot),
    // then its neighbours while slots are free (read-ahead is never worth a wait).
    let tickets: ArrayVec<_, { 1 + READ_AHEAD as usize }> = batch
        .iter()
        .enumerate()
        .map(|(i, &(s, f))| {
            if i == 0 {
                virtio_blk::submit(Op::Read, s, f).map(Some)
            } else {
                virtio_blk::submit_more(Op::Read, s, f)
            }
        })
        .collect();
    let mut ok_first = false;
    for (i, (t, &(s, f))) in tickets.into_iter().zip(batch.iter()).enumerate() {
        let ok = matches!(t, Ok(Some(t)) if virtio_blk::wait(t).is_ok());
        if ok {
            PSWPIN.fetch_add(1, Ordering::Relaxed);
            if i > 0 {
                reclaim::add(f, List::Inactive);
            }
            settle(s, true);
        } else {
            let freed = AREA.lock().as_mut().and_then(|a| uncache(a, s));
            CACHE_READY.wake_all();
            release(freed);
        }
        if i == 0 {
            ok_first = ok;
        }
    }
    if !ok_first {
        release(Some(batch[0].1));
        return Err(FaultError::Bus);
    }
    Ok(Some(batch[0].1))
}

/// A fresh frame for a page read from swap (its owner is set when it is mapped): user
/// memory, so not below the kernel's reserve.
fn new_frame() -> Option<PhysAddr> {
    if !frames::user_may_allocate() {
        return None;
    }
    frames::alloc(0, FrameUse::SwapCache).ok().map(Pfn::addr)
}

/// Enters `pa` (a fresh frame, whose one reference becomes the cache's) as `slot`'s cache
/// entry, busy; `false` if the slot's count cannot take the cache's reference.
fn cache(a: &mut Area, slot: u64, pa: PhysAddr) -> bool {
    let Some(index) = frame_index(pa) else {
        return false;
    };
    if !a.map.dup(slot) {
        return false;
    }
    enter(a, slot, index);
    true
}

/// Records frame `index` as `slot`'s cache entry, busy (the caller owns it until it
/// settles), in both directions.
fn enter(a: &mut Area, slot: u64, index: u32) {
    a.map.set_cached(
        slot,
        Some(Cached {
            frame: index,
            busy: true,
            written: false,
        }),
    );
    a.slot_of[index as usize] = slot as u32;
}

/// Maps the frame `pa` holding `entry`'s page at `va` in `mm`, if the PTE still
/// remembers it; counted as a major fault if `major`.
fn map_in(
    mm: &Mm,
    va: VirtAddr,
    entry: SwapEntry,
    pa: PhysAddr,
    major: bool,
) -> Result<(), FaultError> {
    let mut space = mm.lock();
    let space = space.as_mut().ok_or(FaultError::Unmapped)?;
    let page = VirtAddr(va.0 & !(PAGE_SIZE - 1));
    let owner = match space.private_owner_of(page) {
        Ok(owner) => owner,
        // The area went meanwhile: nothing to map here; the fault is taken again.
        Err(VmError::Inval) => return Ok(()),
        Err(_) => return Err(FaultError::OutOfMemory),
    };
    if let Some(m) = FRAMES.meta(pa.pfn())
        && m.owner() == 0
    {
        m.set_owner(owner);
    }
    if space.swap_in_page(page, entry, pa, major)? {
        reclaim::add(pa, List::Active);
    }
    Ok(())
}

/// Remembered pages one `swapoff` step collects under a space's lock.
const UNUSE_BATCH: usize = 32;
/// Walks over every address space `swapoff` makes before it gives up on pages that keep
/// going out (a `fork` copying entries meanwhile makes more).
const UNUSE_PASSES: usize = 8;

/// `swapoff`: brings every swapped-out page back into memory and disables the area.
/// `NoMemory` if the pages do not fit in free memory (checked before anything moves; if
/// memory runs out on the way, the pages already back stay in memory and the area stays
/// enabled: nothing is lost either way).
pub fn disable() -> Result<(), SwapError> {
    {
        let mut area = AREA.lock();
        let a = area.as_mut().ok_or(SwapError::NotEnabled)?;
        if a.draining {
            return Err(SwapError::Busy);
        }
        let out = swapped_out(a);
        if !frames::user_may_take(out as usize * PAGE_SIZE) {
            return Err(SwapError::NoMemory);
        }
        a.draining = true;
    }
    let result = unuse_all();
    if result.is_ok() {
        reclaim::stop_tracking();
    } else if let Some(a) = AREA.lock().as_mut() {
        a.draining = false;
    }
    result
}

/// Slots in use that only the disk holds (their page is not in the cache).
fn swapped_out(a: &Area) -> u64 {
    (0..a.map.slots())
        .filter(|&s| a.map.count(s) > 0 && a.map.cached(s).is_none())
        .count() as u64
}

/// Brings every remembered page of every space back, then empties the cache and removes
/// the area.
fn unuse_all() -> Result<(), SwapError> {
    for _ in 0..UNUSE_PASSES {
        let mut after = None;
        while let Some(mm) = Mm::next_after(after) {
            after = Some(mm.space_id());
            unuse_space(&mm)?;
        }
        if drop_cache() {
            return Ok(());
        }
    }
    Err(SwapError::Busy)
}

/// Brings every remembered page of `mm` back, a batch at a time (the space is locked
/// only to collect a batch and to map each page).
fn unuse_space(mm: &Mm) -> Result<(), SwapError> {
    let mut from = VirtAddr(0);
    loop {
        let mut batch: ArrayVec<(VirtAddr, SwapEntry), UNUSE_BATCH> = ArrayVec::new();
        let next = {
            let mut space = mm.lock();
            let Some(space) = space.as_mut() else {
                return Ok(());
            };
            space.remembered_pages(from, |va, entry| batch.try_push((va, entry)).is_ok())
        };
        for (va, entry) in batch {
            let Some((pa, _)) = fetch(entry.slot()).map_err(|_| SwapError::NoMemory)? else {
                continue;
            };
            let r = map_in(mm, va, entry, pa, false);
            let _ = frames::release(pa.pfn());
            if r.is_err() {
                return Err(SwapError::NoMemory);
            }
        }
        match next {
            Some(va) => from = va,
            None => return Ok(()),
        }
    }
}

/// Drops every ready cache entry that only the cache names (its frame stays wherever it
/// is mapped); once no slot is in use, removes the area and returns true.
fn drop_cache() -> bool {
    loop {
        let mut freed: ArrayVec<PhysAddr, UNUSE_BATCH> = ArrayVec::new();
        let mut busy = false;
        {
            let mut area = AREA.lock();
            let Some(a) = area.as_mut() else { return true };
            for slot in 0..a.map.slots() {
                if freed.is_full() {
                    break;
                }
                match a.map.cached(slot) {
                    Some(c) if c.busy => busy = true,
                    Some(_) if a.map.count(slot) == 1 => {
                        if let Some(pa) = uncache(a, slot) {
                            freed.push(pa);
                        }
                    }
                    _ => {}
                }
            }
            if freed.is_empty() && !busy {
                if a.map.free() != a.map.usable() {
                    return false;
                }
                *area = None;
                return true;
            }
        }
        CACHE_READY.wake_all();
        for pa in freed {
            release(Some(pa));
        }
        if busy {
            // Another task's I/O on a cache entry: let it finish.
            crate::proc::sched::preempt();
        }
    }
}
