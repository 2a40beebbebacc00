//! The virtio block device (over virtio-mmio), through the `virtio-drivers` crate: whole
//! 4 KiB pages read and written between a frame and the disk, completed by interrupt.
//!
//! ```text
//!  task: submit(page, frame) ──► descriptor chain in the virtqueue, notify the device
//!        wait(ticket) ─────────► sleeps on IO_DONE (uninterruptible)
//!  device finishes ──► PLIC ──► hart's external interrupt ──► interrupt():
//!        pop every used chain, record its status in its slot, wake IO_DONE
//!  task wakes, finds its slot done, frees it
//! ```
//!
//! A request's buffers (its header, its status byte and the frame) must stay put until
//! the device has finished with them: the header and status live in a slot of a table
//! allocated with the driver (kernel heap, direct-mapped), the frame is the caller's and
//! stays allocated and untouched until [`wait`] returns (the swap cache marks it busy).
//! Before the scheduler runs (the boot's probe of the swap header), a transfer is
//! polled instead.

use alloc::boxed::Box;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU32, Ordering};

use pagoda_formats::devicetree::VirtioSlot;
use pagoda_mm::addr::{PAGE_SIZE, PhysAddr};
use pagoda_mm::frame::FrameUse;
use pagoda_mm::layout::{DIRECT_MAP_BASE, DIRECT_MAP_SIZE, phys_to_virt};
use spin::{Mutex, Once};
use virtio_drivers::device::blk::{BlkReq, BlkResp, SECTOR_SIZE, VirtIOBlk};
use virtio_drivers::transport::mmio::{MmioTransport, VirtIOHeader};
use virtio_drivers::transport::{DeviceType, Transport};
use virtio_drivers::{BufferDirection, Hal};

use crate::memory::frames;
use crate::proc::wait::WaitQueue;

/// Sectors per page.
const SECTORS_PER_PAGE: u64 = (PAGE_SIZE / SECTOR_SIZE) as u64;
/// Requests in flight at once: the virtqueue's size (one descriptor each, indirect).
const SLOTS: usize = 16;

/// A transfer failed (the device reported an error, or the request was malformed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoError;

/// The direction of a transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Disk to frame.
    Read,
    /// Frame to disk.
    Write,
}

/// DMA memory for the virtqueue and address translation: frames from the buddy
/// allocator, reached through the direct map (physical = virtual - `DIRECT_MAP_BASE`).
struct DmaHal;

// SAFETY: `dma_alloc` returns fresh, zeroed, page-aligned frames, direct-mapped and owned
// by the device until `dma_dealloc`; `share` translates direct-map addresses (every
// buffer the driver hands the device: the heap slots and frames) to the physical
// addresses that alias them; nothing is copied, so `unshare` has nothing to do.
unsafe impl Hal for DmaHal {
    fn dma_alloc(pages: usize, _: BufferDirection) -> (virtio_drivers::PhysAddr, NonNull<u8>) {
        let order = pages.next_power_of_two().trailing_zeros() as usize;
        match frames::alloc(order, FrameUse::Kernel) {
            Ok(pfn) => {
                let va = phys_to_virt(pfn.addr()).as_usize() as *mut u8;
                // SAFETY: a fresh block of 2^order >= `pages` frames, direct-mapped.
                unsafe { core::ptr::write_bytes(va, 0, pages * PAGE_SIZE) };
                (
                    pfn.addr().0 as u64,
                    NonNull::new(va).unwrap_or(NonNull::dangling()),
                )
            }
            // The crate has no way to report failure here; only the probe at boot
            // allocates (the queue), and a dangling pointer with physical address 0 makes
            // the device refuse to start (`VirtIOBlk::new` fails), not touch memory.
            Err(_) => (0, NonNull::dangling()),
        }
    }

    unsafe fn dma_dealloc(paddr: virtio_drivers::PhysAddr, _: NonNull<u8>, _: usize) -> i32 {
        if paddr != 0 {
            let _ = frames::release(PhysAddr(paddr as usize).pfn());
        }
        0
    }

    unsafe fn mmio_phys_to_virt(paddr: virtio_drivers::PhysAddr, _: usize) -> NonNull<u8> {
        NonNull::new(phys_to_virt(PhysAddr(paddr as usize)).as_usize() as *mut u8)
            .unwrap_or(NonNull::dangling())
    }

    unsafe fn share(buffer: NonNull<[u8]>, _: BufferDirection) -> virtio_drivers::PhysAddr {
        let va = buffer.cast::<u8>().as_ptr() as usize;
        debug_assert!((DIRECT_MAP_BASE.0..DIRECT_MAP_BASE.0 + DIRECT_MAP_SIZE).contains(&va));
        (va - DIRECT_MAP_BASE.0) as u64
    }

    unsafe fn unshare(_: virtio_drivers::PhysAddr, _: NonNull<[u8]>, _: BufferDirection) {}
}

/// What a slot of the request table holds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// Unused.
    Free,
    /// Submitted; the device owns the buffers.
    InFlight,
    /// Finished with this result; the submitter has not collected it yet.
    Done(bool),
}

/// One request's buffers: the header and status the device reads and writes, and the
/// frame of the transfer.
struct Slot {
    req: BlkReq,
    resp: BlkResp,
    frame: PhysAddr,
    op: Op,
    /// The device's token for the request while it is in flight.
    token: u16,
    state: State,
    /// Bumped at each use, so a stale ticket cannot collect a later request's result.
    generation: u32,
}

/// The disk: the device and its request table.
struct Disk {
    dev: VirtIOBlk<DmaHal, MmioTransport<'static>>,
    slots: Box<[Slot; SLOTS]>,
    pages: u64,
    /// Requests finished and request slots freed since the start: a submitter that found
    /// no room waits for this to change. Both count: with every slot holding a finished
    /// request that its owner has not collected yet, no request finishes any more, and
    /// only the owners' collecting frees a slot (counting finishes alone once left such
    /// a submitter asleep for ever, and the swap suite hung).
    progress: u64,
}

// SAFETY: the device's registers and queue are reached only under the `DISK` lock.
unsafe impl Send for Disk {}

static DISK: Once<Mutex<Disk>> = Once::new();
/// The disk's interrupt source at the PLIC (0: polled only).
static IRQ: AtomicU32 = AtomicU32::new(0);
/// Woken whenever requests finish (each waiter re-checks its own slot).
static IO_DONE: WaitQueue = WaitQueue::new();

/// A submitted request, to be collected with [`wait`].
#[derive(Clone, Copy, Debug)]
#[must_use]
pub struct Ticket {
    slot: usize,
    generation: u32,
}

/// The frame's bytes, as the device's buffer.
fn frame_bytes(pa: PhysAddr) -> &'static mut [u8] {
    // SAFETY: `pa` is a whole frame the caller owns and leaves untouched until the
    // transfer is collected (module docs); the direct map covers it.
    unsafe { core::slice::from_raw_parts_mut(phys_to_virt(pa).as_usize() as *mut u8, PAGE_SIZE) }
}

/// Finds the first virtio block device among the slots and starts it; returns its size in
/// pages. Its interrupt is enabled at the PLIC (if there is one).
pub fn probe(slots: &[VirtioSlot]) -> Option<u64> {
    for s in slots {
        let header = NonNull::new(phys_to_virt(s.region.start).as_usize() as *mut VirtIOHeader)?;
        // SAFETY: the slot's registers are mapped by the kernel table for the kernel's
        // lifetime (`kspace`), and no other driver takes a slot that holds a block device.
        let Ok(transport) = (unsafe { MmioTransport::new(header, s.region.size()) }) else {
            continue;
        };
        if transport.device_type() != DeviceType::Block {
            continue;
        }
        let Ok(mut dev) = VirtIOBlk::<DmaHal, _>::new(transport) else {
            continue;
        };
        dev.enable_interrupts();
        let pages = dev.capacity() / SECTORS_PER_PAGE;
        let slots = Box::new(core::array::from_fn(|_| Slot {
            req: BlkReq::default(),
            resp: BlkResp::default(),
            frame: PhysAddr(0),
            op: Op::Read,
            token: 0,
            state: State::Free,
            generation: 0,
        }));
        DISK.call_once(|| {
            Mutex::new(Disk {
                dev,
                slots,
                pages,
                progress: 0,
            })
        });
        if crate::drivers::plic::present() && s.irq != 0 {
            IRQ.store(s.irq, Ordering::Release);
            crate::drivers::plic::enable(s.irq);
        }
        return Some(pages);
    }
    None
}

/// The disk's size in pages (0 without a disk).
pub fn pages() -> u64 {
    DISK.get().map_or(0, |d| d.lock().pages)
}

/// Whether `irq` is the disk's interrupt source.
pub fn owns_irq(irq: u32) -> bool {
    irq != 0 && IRQ.load(Ordering::Acquire) == irq
}

/// Reads or writes page `page` of the disk from or into the frame at `pa`, polling for
/// the result (only before the scheduler runs: the boot's probe).
pub fn transfer_polled(op: Op, page: u64, pa: PhysAddr) -> Result<(), IoError> {
    // The boot runs with interrupts enabled: the disk's interrupt must not find the lock
    // held here.
    let was = crate::arch::disable_interrupts();
    let r = transfer_polled_masked(op, page, pa);
    if was {
        crate::arch::enable_interrupts();
    }
    r
}

fn transfer_polled_masked(op: Op, page: u64, pa: PhysAddr) -> Result<(), IoError> {
    let disk = DISK.get().ok_or(IoError)?;
    let mut d = disk.lock();
    let i = d
        .slots
        .iter()
        .position(|s| s.state == State::Free)
        .ok_or(IoError)?;
    start(&mut d, i, op, page, pa)?;
    while d.slots[i].state == State::InFlight {
        collect(&mut d);
    }
    let ok = d.slots[i].state == State::Done(true);
    d.slots[i].state = State::Free;
    if ok { Ok(()) } else { Err(IoError) }
}

/// Hands the device request slot `i` (free): page `page` to or from the frame at `pa`.
/// `Err(QueueFull)`-like failures leave the slot free.
fn start(d: &mut Disk, i: usize, op: Op, page: u64, pa: PhysAddr) -> Result<(), Full> {
    if page >= d.pages {
        return Err(Full::Never);
    }
    let block = (page * SECTORS_PER_PAGE) as usize;
    let Disk { dev, slots, .. } = d;
    let slot = &mut slots[i];
    slot.frame = pa;
    slot.op = op;
    // SAFETY: the header, status and frame stay allocated and untouched until the
    // request is completed in `collect` (the slot is InFlight until then, the slots live
    // as long as the driver, and the caller keeps the frame until the result is taken).
    let token = unsafe {
        match op {
            Op::Read => dev.read_blocks_nb(block, &mut slot.req, frame_bytes(pa), &mut slot.resp),
            Op::Write => dev.write_blocks_nb(block, &mut slot.req, frame_bytes(pa), &mut slot.resp),
        }
    };
    slot.token = match token {
        Ok(t) => t,
        Err(virtio_drivers::Error::QueueFull) => return Err(Full::Now),
        Err(_) => return Err(Full::Never),
    };
    slot.state = State::InFlight;
    slot.generation = slot.generation.wrapping_add(1);
    Ok(())
}

/// Why a request could not be started.
enum Full {
    /// The virtqueue has no room now: try again once requests finish.
    Now,
    /// The request is malformed or the device failed.
    Never,
}

impl From<Full> for IoError {
    fn from(_: Full) -> IoError {
        IoError
    }
}

/// Starts reading or writing page `page` of the disk from or into the frame at `pa`,
/// sleeping while every request slot is taken. The frame must stay allocated and
/// untouched until [`wait`] collects the ticket. Only for a caller that holds no
/// uncollected ticket (one that does uses [`submit_more`]): a slot frees only when its
/// ticket is collected, so tasks that each held tickets and slept here for more could
/// wait for one another for ever.
pub fn submit(op: Op, page: u64, pa: PhysAddr) -> Result<Ticket, IoError> {
    submit_inner(op, page, pa, true).and_then(|t| t.ok_or(IoError))
}

/// [`submit`] for a caller that already holds tickets (a batch): `None` instead of a
/// sleep when every request slot is taken (the caller collects its own first). It still
/// sleeps while the device's queue is full, which ends as the device finishes requests.
pub fn submit_more(op: Op, page: u64, pa: PhysAddr) -> Result<Option<Ticket>, IoError> {
    submit_inner(op, page, pa, false)
}

fn submit_inner(
    op: Op,
    page: u64,
    pa: PhysAddr,
    wait_for_slot: bool,
) -> Result<Option<Ticket>, IoError> {
    let disk = DISK.get().ok_or(IoError)?;
    loop {
        let mut d = disk.lock();
        // Requests the device finished meanwhile free their descriptors (interrupts are
        // masked in the kernel, so their interrupt may not have been taken yet).
        if collect(&mut d) {
            IO_DONE.wake_all();
        }
        let free = d.slots.iter().position(|s| s.state == State::Free);
        let started = match free {
            Some(i) => start(&mut d, i, op, page, pa).map(|()| i),
            None if !wait_for_slot => return Ok(None),
            None => Err(Full::Now),
        };
        match started {
            Ok(i) => {
                return Ok(Some(Ticket {
                    slot: i,
                    generation: d.slots[i].generation,
                }));
            }
            Err(Full::Never) => return Err(IoError),
            Err(Full::Now) => {
                // Sleep until some request finishes or its owner frees its slot (a slot
                // or descriptors come free): never a task that spins.
                let seen = d.progress;
                drop(d);
                IO_DONE.wait_uninterruptible(|| disk.lock().progress != seen);
            }
        }
    }
}

/// Sleeps until the request of `ticket` has finished; its result.
pub fn wait(ticket: Ticket) -> Result<(), IoError> {
    let Some(disk) = DISK.get() else {
        return Err(IoError);
    };
    let mut result = None;
    IO_DONE.wait_uninterruptible(|| {
        if result.is_some() {
            // Taken at an earlier check (the condition must stay true once it was).
            return true;
        }
        let mut d = disk.lock();
        let slot = &mut d.slots[ticket.slot];
        if slot.generation != ticket.generation {
            result = Some(Err(IoError));
            return true;
        }
        match slot.state {
            State::Done(ok) => {
                slot.state = State::Free;
                d.progress += 1;
                result = Some(if ok { Ok(()) } else { Err(IoError) });
                true
            }
            _ => {
                // Interrupts are masked in the kernel: if this hart is the only one and
                // nothing else runs, the completion is found when it next idles.
                false
            }
        }
    });
    // A slot became free: a submitter may be waiting for one.
    IO_DONE.wake_all();
    result.unwrap_or(Err(IoError))
}

/// Reads or writes one page and waits for it.
pub fn transfer(op: Op, page: u64, pa: PhysAddr) -> Result<(), IoError> {
    wait(submit(op, page, pa)?)
}

/// Bytes per disk page (the unit of every transfer).
pub const PAGE_BYTES: u64 = PAGE_SIZE as u64;

/// Copies the disk's bytes from byte `offset` into `buf` through a bounce frame, a page
/// at a time (sleeping for each read); the bytes copied (fewer at the disk's end).
pub fn read_bytes(offset: u64, buf: &mut [u8]) -> Result<usize, IoError> {
    bounce(offset, buf.len(), |page, at, pa, done, n| {
        transfer(Op::Read, page, pa)?;
        buf[done..done + n].copy_from_slice(&frame_bytes(pa)[at..at + n]);
        Ok(())
    })
}

/// Copies `buf` to the disk from byte `offset` (a partial page is read, patched and
/// written back); the bytes written (fewer at the disk's end).
pub fn write_bytes(offset: u64, buf: &[u8]) -> Result<usize, IoError> {
    bounce(offset, buf.len(), |page, at, pa, done, n| {
        if n < PAGE_SIZE {
            transfer(Op::Read, page, pa)?;
        }
        frame_bytes(pa)[at..at + n].copy_from_slice(&buf[done..done + n]);
        transfer(Op::Write, page, pa)
    })
}

/// Runs `step(page, offset in page, bounce frame, bytes done, bytes now)` over the pages
/// `[offset, offset + len)` covers, up to the disk's end, with one bounce frame.
fn bounce(
    offset: u64,
    len: usize,
    mut step: impl FnMut(u64, usize, PhysAddr, usize, usize) -> Result<(), IoError>,
) -> Result<usize, IoError> {
    let end = (offset.saturating_add(len as u64)).min(pages() * PAGE_BYTES);
    if offset >= end {
        return Ok(0);
    }
    // A user's request: not from the kernel's reserve.
    if !frames::user_may_allocate() {
        return Err(IoError);
    }
    let frame = frames::alloc(0, FrameUse::Kernel).map_err(|_| IoError)?;
    let pa = frame.addr();
    let mut done = 0;
    let mut result = Ok(());
    while offset + (done as u64) < end {
        let at = offset + done as u64;
        let in_page = (at % PAGE_BYTES) as usize;
        let n = (PAGE_SIZE - in_page).min((end - at) as usize);
        result = step(at / PAGE_BYTES, in_page, pa, done, n);
        if result.is_err() {
            break;
        }
        done += n;
    }
    frames::put(frame);
    match result {
        Err(e) if done == 0 => Err(e),
        _ => Ok(done),
    }
}

/// The disk's interrupt: collects every finished request and wakes their waiters.
pub fn interrupt() {
    let Some(disk) = DISK.get() else { return };
    let finished = {
        let mut d = disk.lock();
        d.dev.ack_interrupt();
        collect(&mut d)
    };
    if finished {
        IO_DONE.wake_all();
    }
}

/// Moves every request the device has finished from InFlight to Done; whether any was.
fn collect(d: &mut Disk) -> bool {
    let Disk {
        dev,
        slots,
        progress,
        ..
    } = d;
    let mut finished = false;
    while let Some(token) = dev.peek_used() {
        let Some(slot) = slots
            .iter_mut()
            .find(|s| s.state == State::InFlight && s.token == token)
        else {
            break;
        };
        let buf = frame_bytes(slot.frame);
        // SAFETY: the same header, frame and status as the submission that got `token`
        // (the in-flight slot that recorded it).
        let r = unsafe {
            match slot.op {
                Op::Read => dev.complete_read_blocks(token, &slot.req, buf, &mut slot.resp),
                Op::Write => dev.complete_write_blocks(token, &slot.req, buf, &mut slot.resp),
            }
        };
        slot.state = State::Done(r.is_ok());
        *progress += 1;
        finished = true;
    }
    finished
}
