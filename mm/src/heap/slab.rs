//! The shared layer of one size class: its slabs, under one lock.
//!
//! A slab is a naturally aligned block of `2^SLAB_ORDER[c]` pages from the page source.
//! Objects fill it from offset 0; the last [`SLAB_HEADER_SIZE`] bytes hold its
//! [`SlabHeader`], found from any object by masking the object's address with the slab
//! size. A slab is on exactly one of:
//! - a *partial* list: some objects handed out, some free. Each hart has a partial list of
//!   its own (at most [`HART_PARTIAL_SLABS`] slabs), and there is one shared list;
//! - no list, when every object is handed out (a full slab is found again through the
//!   header of the first object freed into it).
//!
//! Hart affinity (as SLUB's per-CPU partial slabs): a hart's cache refills from its own
//! partial list first, then from the shared list (the slab moves to the hart's list), then
//! from a new slab (which joins the hart's list); only when the page source is dry does it
//! carve slabs on other harts' lists. A full slab that gets an object back joins the
//! freeing hart's list if there is room there, else the shared list. So two harts
//! allocating the same class draw from different slabs, and their objects do not share
//! cache lines (interleaved objects of two harts made each write a cache-line transfer:
//! two threads ran slower than one in the heap benchmark).
//!
//! A slab whose last object comes back leaves its class: it goes to the heap-wide
//! [`Reserve`] of empty slabs, which any class with the same slab order reuses and which
//! holds at most [`EMPTY_RESERVE_PAGES`] pages (the oldest slab goes back to the page
//! source when a newer one needs the room).
//!
//! Free objects of a slab form a singly linked list threaded through their first word;
//! objects never handed out since the slab became empty are not linked but counted by a
//! bump index, so a fresh slab costs no initialisation pass.

use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use spin::Mutex;

use super::class::{
    CLASS_SIZES, EMPTY_RESERVE_PAGES, HART_PARTIAL_SLABS, SLAB_HEADER_SIZE, SLAB_OBJECTS,
    SLAB_ORDER,
};
use super::source::PageSource;
use crate::addr::PAGE_SIZE;

/// Marks a live slab header; the class index is added so that a slab of another class is
/// recognised as well.
const SLAB_MAGIC: u32 = 0x51ab_0000;

/// Bookkeeping of one slab, in the slab's last bytes.
#[repr(C)]
struct SlabHeader {
    /// First free object (its first word links to the next); null when none.
    free: *mut u8,
    next: *mut SlabHeader,
    prev: *mut SlabHeader,
    /// Objects `bump..SLAB_OBJECTS` have not been handed out since the slab was last empty.
    bump: u32,
    /// Objects handed out and not yet given back.
    in_use: u32,
    /// `SLAB_MAGIC + class` while the slab belongs to the heap.
    magic: u32,
    /// The partial list the slab is on (a hart's index, or the shared list's); meaningless
    /// while it is on none.
    list: u32,
}

const _: () = assert!(core::mem::size_of::<SlabHeader>() <= SLAB_HEADER_SIZE);

/// Empty slabs kept for reuse by any class of the same slab order: at most
/// [`EMPTY_RESERVE_PAGES`] pages in all, oldest first.
pub struct Reserve {
    /// Base addresses and orders of the kept slabs, `..len` in use, oldest first.
    blocks: [(*mut u8, usize); EMPTY_RESERVE_PAGES],
    len: usize,
    pages: usize,
}

// SAFETY: the blocks are empty slabs owned by the reserve, not tied to any thread.
unsafe impl Send for Reserve {}

impl Reserve {
    const fn new() -> Self {
        Self {
            blocks: [(ptr::null_mut(), 0); EMPTY_RESERVE_PAGES],
            len: 0,
            pages: 0,
        }
    }

    /// Removes entry `i`, keeping the others in age order.
    fn remove(&mut self, i: usize) -> (*mut u8, usize) {
        let b = self.blocks[i];
        self.blocks.copy_within(i + 1..self.len, i);
        self.len -= 1;
        self.pages -= 1 << b.1;
        b
    }
}

/// Counters shared by all classes of one heap, updated only when pages move, and the
/// reserve of empty slabs. Its lock comes after a class lock and before the page source's.
pub struct PageMeter {
    /// Pages currently taken from the page source.
    pub held: AtomicUsize,
    /// High-water mark of `held`.
    pub peak: AtomicUsize,
    /// Frees that were refused because the pointer could not belong to the class.
    pub rejected: AtomicUsize,
    reserve: Mutex<Reserve>,
}

impl PageMeter {
    /// A meter at zero.
    pub const fn new() -> Self {
        Self {
            held: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            rejected: AtomicUsize::new(0),
            reserve: Mutex::new(Reserve::new()),
        }
    }

    /// Pages in empty slabs kept for reuse.
    pub fn reserve_pages(&self) -> usize {
        self.reserve.lock().pages
    }

    /// The newest kept empty slab of `order`, if any (its header is stale).
    fn reuse(&self, order: usize) -> Option<NonNull<u8>> {
        let mut r = self.reserve.lock();
        let i = (0..r.len).rev().find(|&i| r.blocks[i].1 == order)?;
        NonNull::new(r.remove(i).0)
    }

    /// Keeps the empty slab at `base` (of `order`) for reuse, giving the oldest kept slabs
    /// back to `src` to make room; a slab larger than the whole reserve goes back at once.
    ///
    /// # Safety
    /// `base` is an empty slab block from `src.alloc_pages(order)` that nothing uses.
    unsafe fn retire(&self, src: &impl PageSource, base: NonNull<u8>, order: usize) {
        if 1 << order > EMPTY_RESERVE_PAGES {
            // SAFETY: the caller's promise.
            unsafe { src.free_pages(base, order) };
            self.give(1 << order);
            return;
        }
        let mut evicted = [(ptr::null_mut(), 0); EMPTY_RESERVE_PAGES];
        let mut n = 0;
        {
            let mut r = self.reserve.lock();
            while r.pages + (1 << order) > EMPTY_RESERVE_PAGES {
                evicted[n] = r.remove(0);
                n += 1;
            }
            let len = r.len;
            r.blocks[len] = (base.as_ptr(), order);
            r.len += 1;
            r.pages += 1 << order;
        }
        for &(p, o) in &evicted[..n] {
            // SAFETY: a kept slab: a block of `src` of order `o`, unused.
            unsafe { src.free_pages(NonNull::new_unchecked(p), o) };
            self.give(1 << o);
        }
    }

    /// Gives every kept empty slab back to `src`; returns the number of pages.
    pub fn release_reserve(&self, src: &impl PageSource) -> usize {
        let mut pages = 0;
        loop {
            // One block at a time, so that the page source is not called under the lock.
            let b = {
                let mut r = self.reserve.lock();
                if r.len == 0 {
                    break;
                }
                r.remove(0)
            };
            // SAFETY: a kept slab: a block of `src` of order `b.1`, unused.
            unsafe { src.free_pages(NonNull::new_unchecked(b.0), b.1) };
            self.give(1 << b.1);
            pages += 1 << b.1;
        }
        pages
    }

    /// Records `pages` more pages taken from the source.
    pub fn take(&self, pages: usize) {
        let now = self.held.fetch_add(pages, Relaxed) + pages;
        self.peak.fetch_max(now, Relaxed);
    }

    /// Records `pages` pages given back.
    pub fn give(&self, pages: usize) {
        self.held.fetch_sub(pages, Relaxed);
    }
}

/// Intrusive doubly linked list of slab headers, with its length.
struct SlabList {
    head: *mut SlabHeader,
    len: usize,
}

impl SlabList {
    const fn new() -> Self {
        Self {
            head: ptr::null_mut(),
            len: 0,
        }
    }

    /// # Safety
    /// `s` is a live header on no list; `id` is this list's index in its depot.
    unsafe fn push(&mut self, s: *mut SlabHeader, id: usize) {
        // SAFETY: `s` and the current head are live headers owned by this depot.
        unsafe {
            (*s).prev = ptr::null_mut();
            (*s).next = self.head;
            (*s).list = id as u32;
            if !self.head.is_null() {
                (*self.head).prev = s;
            }
        }
        self.head = s;
        self.len += 1;
    }

    /// # Safety
    /// `s` is a live header on this list.
    unsafe fn remove(&mut self, s: *mut SlabHeader) {
        // SAFETY: `s` and its neighbours are live headers on this list.
        unsafe {
            let (prev, next) = ((*s).prev, (*s).next);
            if prev.is_null() {
                self.head = next;
            } else {
                (*prev).next = next;
            }
            if !next.is_null() {
                (*next).prev = prev;
            }
            (*s).prev = ptr::null_mut();
            (*s).next = ptr::null_mut();
        }
        self.len -= 1;
    }
}

/// The slabs of one class and their counters, for a heap of `HARTS` hart caches. Always
/// used under its class lock.
///
/// `list` arguments name a partial list: a hart index below `HARTS` for that hart's own
/// list, anything else (callers without a hart cache) for the shared list.
pub struct Depot<const HARTS: usize> {
    class: usize,
    /// Each hart's partial slabs (at most [`HART_PARTIAL_SLABS`] each).
    partial: [SlabList; HARTS],
    /// Partial slabs of no hart.
    shared: SlabList,
    slabs: usize,
    peak_slabs: usize,
    /// Objects handed out of slabs (to harts' caches or to callers).
    out: usize,
    peak_out: usize,
}

// SAFETY: the raw pointers lead to slabs that this depot owns exclusively; moving the depot
// to another hart moves that ownership with it.
unsafe impl<const HARTS: usize> Send for Depot<HARTS> {}

/// A snapshot of a depot's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DepotCounts {
    /// Objects handed out of slabs.
    pub out: usize,
    /// High-water mark of `out`.
    pub peak_out: usize,
    /// Slabs held.
    pub slabs: usize,
    /// High-water mark of `slabs`.
    pub peak_slabs: usize,
}

impl<const HARTS: usize> Depot<HARTS> {
    /// An empty depot for slab class `class`.
    pub const fn new(class: usize) -> Self {
        Self {
            class,
            partial: [const { SlabList::new() }; HARTS],
            shared: SlabList::new(),
            slabs: 0,
            peak_slabs: 0,
            out: 0,
            peak_out: 0,
        }
    }

    /// The counters now.
    pub fn counts(&self) -> DepotCounts {
        DepotCounts {
            out: self.out,
            peak_out: self.peak_out,
            slabs: self.slabs,
            peak_slabs: self.peak_slabs,
        }
    }

    fn slab_bytes(&self) -> usize {
        PAGE_SIZE << SLAB_ORDER[self.class]
    }

    fn magic(&self) -> u32 {
        SLAB_MAGIC + self.class as u32
    }

    /// A slab for this class: a kept empty one if the reserve has one of the right order,
    /// else a new block from `src`.
    fn new_slab(&mut self, src: &impl PageSource, meter: &PageMeter) -> Option<*mut SlabHeader> {
        let order = SLAB_ORDER[self.class];
        let base = match meter.reuse(order) {
            Some(b) => b,
            None => {
                let b = src.alloc_pages(order)?;
                meter.take(1 << order);
                b
            }
        };
        let hdr = base
            .as_ptr()
            .wrapping_add(self.slab_bytes() - SLAB_HEADER_SIZE)
            .cast::<SlabHeader>();
        // SAFETY: the block is ours (fresh or an unused kept slab), `slab_bytes` long and
        // page aligned, so the header location is inside it and suitably aligned.
        unsafe {
            hdr.write(SlabHeader {
                free: ptr::null_mut(),
                next: ptr::null_mut(),
                prev: ptr::null_mut(),
                bump: 0,
                in_use: 0,
                magic: self.magic(),
                list: 0,
            });
        }
        self.slabs += 1;
        self.peak_slabs = self.peak_slabs.max(self.slabs);
        Some(hdr)
    }

    /// The partial list with index `id` (`HARTS` is the shared one).
    fn list_mut(&mut self, id: usize) -> &mut SlabList {
        match self.partial.get_mut(id) {
            Some(l) => l,
            None => &mut self.shared,
        }
    }

    /// The slab the next object for `list`'s hart comes from, on the list it is on, or
    /// `None` when every list is empty and `src` is dry. In order of preference: the
    /// hart's own partial slab; a shared one (moved to the hart's list); a new one (put on
    /// the hart's list); any other hart's.
    fn next_slab(
        &mut self,
        list: usize,
        src: &impl PageSource,
        meter: &PageMeter,
    ) -> Option<(*mut SlabHeader, usize)> {
        let own = list.min(HARTS);
        let head = self.list_mut(own).head;
        if !head.is_null() {
            return Some((head, own));
        }
        let s = match self.shared.head {
            s if !s.is_null() => {
                // SAFETY: `s` is a live header on the shared list.
                unsafe { self.shared.remove(s) };
                s
            }
            _ => match self.new_slab(src, meter) {
                Some(s) => s,
                None => {
                    let (id, l) = self.partial.iter().enumerate().find(|(_, l)| l.len > 0)?;
                    return Some((l.head, id));
                }
            },
        };
        // SAFETY: `s` is a live header on no list.
        unsafe { self.list_mut(own).push(s, own) };
        Some((s, own))
    }

    /// Fills `out` with objects for the hart of partial list `list` (see [`Depot`]), taking
    /// new slabs from `src` as needed. Returns how many were taken: fewer than `out.len()`
    /// only when the page source ran dry and no slab has a free object.
    pub fn take(
        &mut self,
        list: usize,
        src: &impl PageSource,
        meter: &PageMeter,
        out: &mut [*mut u8],
    ) -> usize {
        let size = CLASS_SIZES[self.class];
        let cap = SLAB_OBJECTS[self.class] as u32;
        let mut n = 0;
        while n < out.len() {
            let Some((s, id)) = self.next_slab(list, src, meter) else {
                break;
            };
            // SAFETY: `s` is a live header of this class on list `id`; objects are
            // computed inside its slab.
            unsafe {
                let base = s
                    .cast::<u8>()
                    .wrapping_sub(self.slab_bytes() - SLAB_HEADER_SIZE);
                while n < out.len() && (*s).in_use < cap {
                    let obj = if (*s).free.is_null() {
                        // in_use < cap with no freed object means bump < cap.
                        let o = base.add((*s).bump as usize * size);
                        (*s).bump += 1;
                        o
                    } else {
                        let o = (*s).free;
                        (*s).free = o.cast::<*mut u8>().read();
                        o
                    };
                    (*s).in_use += 1;
                    out[n] = obj;
                    n += 1;
                }
                if (*s).in_use == cap {
                    self.list_mut(id).remove(s);
                }
            }
        }
        self.out += n;
        self.peak_out = self.peak_out.max(self.out);
        n
    }

    /// The header of the slab that would hold `obj`, if `obj` is a plausible object of this
    /// class: a live header of this class, at an object boundary, among the objects handed
    /// out since the slab was last empty.
    ///
    /// # Safety
    /// The slab-sized block containing `obj` is readable (true for every pointer this heap
    /// handed out for a class whose slabs are at least as large).
    pub unsafe fn header_of(&self, obj: *mut u8) -> Option<NonNull<u8>> {
        let bytes = self.slab_bytes();
        let off = obj as usize & (bytes - 1);
        let hdr = obj
            .wrapping_sub(off)
            .wrapping_add(bytes - SLAB_HEADER_SIZE)
            .cast::<SlabHeader>();
        // SAFETY: inside the readable block by the caller's promise.
        let h = unsafe { &*hdr };
        let size = CLASS_SIZES[self.class];
        let ok = h.magic == self.magic()
            && off.is_multiple_of(size)
            && off / size < h.bump as usize
            && h.in_use > 0;
        if ok { NonNull::new(hdr.cast()) } else { None }
    }

    /// Gives objects back to their slabs, from the hart of partial list `list`. An object
    /// that fails [`header_of`](Self::header_of) is refused (counted in `meter.rejected`,
    /// left untouched). A full slab that gets an object back joins `list` if that hart's
    /// list has room, else the shared list. A slab that becomes empty leaves the class for
    /// the heap's reserve (which may give older slabs back to `src`).
    ///
    /// # Safety
    /// Each object was handed out by [`take`](Self::take) of this depot and is not used any
    /// more, or is at least a pointer into readable memory (see `header_of`).
    pub unsafe fn give(
        &mut self,
        list: usize,
        src: &impl PageSource,
        meter: &PageMeter,
        objs: &[*mut u8],
    ) {
        let cap = SLAB_OBJECTS[self.class] as u32;
        for &obj in objs {
            // SAFETY: the caller's promise.
            let Some(h) = (unsafe { self.header_of(obj) }) else {
                meter.rejected.fetch_add(1, Relaxed);
                continue;
            };
            let s = h.as_ptr().cast::<SlabHeader>();
            // SAFETY: `s` is a live header of this depot and `obj` one of its handed-out
            // objects, which the caller no longer uses.
            unsafe {
                let was_full = (*s).in_use == cap;
                obj.cast::<*mut u8>().write((*s).free);
                (*s).free = obj;
                (*s).in_use -= 1;
                if (*s).in_use == 0 {
                    // It held one object of at least two, so it was partial, not full.
                    self.list_mut((*s).list as usize).remove(s);
                    self.retire_slab(src, meter, s);
                } else if was_full {
                    let home = match self.partial.get(list) {
                        Some(l) if l.len < HART_PARTIAL_SLABS => list,
                        _ => HARTS,
                    };
                    self.list_mut(home).push(s, home);
                }
            }
            self.out -= 1;
        }
    }

    /// # Safety
    /// `s` is a live, empty header of this depot on no list.
    unsafe fn retire_slab(&mut self, src: &impl PageSource, meter: &PageMeter, s: *mut SlabHeader) {
        let order = SLAB_ORDER[self.class];
        // SAFETY: `s` is live; clearing the magic makes stale pointers into the block fail
        // `header_of` while it stays readable. The block came from `src.alloc_pages(order)`
        // (directly or through the reserve) and nothing uses it any more.
        unsafe {
            (*s).magic = 0;
            let base = s
                .cast::<u8>()
                .wrapping_sub(self.slab_bytes() - SLAB_HEADER_SIZE);
            meter.retire(src, NonNull::new_unchecked(base), order);
        }
        self.slabs -= 1;
    }
}
