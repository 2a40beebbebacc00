//! Per-frame metadata: one [`FrameMeta`] entry per 4 KiB frame of the managed span.
//!
//! Every field is an atomic so that the entries can be shared by all harts without
//! `unsafe`: the buddy lists are only modified under the buddy lock, the reference count
//! and mapping count are modified lock-free, and the page-replacement words belong to
//! whoever holds a reference to the frame. On RV64 and x86-64 a relaxed atomic load or
//! store is an ordinary load or store, so this costs nothing on the allocation path.
//!
//! # The state word
//!
//! Each entry's state is one `u32`: the [`FrameUse`] in bits 0..8, the block order in
//! bits 8..13, and a "held in a hart cache" bit. Every frame of the span is in exactly
//! one of these states (the allocator keeps it so; `FrameAllocator::verify` checks it):
//!
//! | state | meaning |
//! |---|---|
//! | free head, order k | first frame of a free block of 2^k frames on the buddy list k |
//! | cached | a free single frame held in some hart's cache (not on a buddy list) |
//! | allocated head, order k, use u | first frame of an allocated block of 2^k frames |
//! | [`FrameUse::Tail`] | any other frame of a free or allocated block |
//! | [`FrameUse::Reserved`] | a frame inside the span that is not managed RAM |
//!
//! Only heads carry a use, order and reference count, so allocating or freeing a block
//! of any order writes one entry (plus its buddies' entries while splitting or merging),
//! never all 2^k of them.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::addr::PAGE_SHIFT;
use crate::layout::GIGAPAGE_SIZE;

use super::error::FrameError;

/// The largest block order: 2^18 frames of 4 KiB = 1 GiB, the Sv39 gigapage.
pub const MAX_ORDER: usize = GIGAPAGE_SIZE.trailing_zeros() as usize - PAGE_SHIFT;
/// Number of block orders, 0 ..= [`MAX_ORDER`].
pub const ORDERS: usize = MAX_ORDER + 1;

/// What a frame is used for.
///
/// `Free`, `Tail` and `Reserved` are states the allocator gives; the other variants are
/// uses a caller names when it allocates ([`FrameUse::is_allocatable`]). Accounting
/// ([`super::Stats`]) counts frames by use.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
#[repr(u8)]
pub enum FrameUse {
    /// The first frame of a free block (on a buddy list or in a hart cache).
    Free = 0,
    /// A frame inside a block whose first frame (the head) carries the block's state.
    Tail = 1,
    /// Inside the managed span but not RAM the allocator may hand out (a gap between
    /// RAM regions, firmware, the kernel image, the metadata array itself).
    Reserved = 2,
    /// General kernel memory.
    Kernel = 3,
    /// Pages of the slab kernel heap.
    Slab = 4,
    /// Page-table pages.
    PageTable = 5,
    /// Kernel stacks.
    KernelStack = 6,
    /// Anonymous user memory (heap, stack, private copy-on-write pages).
    UserAnon = 7,
    /// User pages backed by a file.
    UserFile = 8,
    /// Anonymous pages that also have a copy in swap (the swap cache).
    SwapCache = 9,
    /// User huge pages: 2 MiB blocks of anonymous memory (transparent huge pages).
    UserHuge = 10,
}

impl FrameUse {
    /// Number of variants; [`FrameUse::index`] is below it.
    pub const COUNT: usize = 11;

    /// Every variant, in [`FrameUse::index`] order.
    pub const ALL: [FrameUse; FrameUse::COUNT] = [
        FrameUse::Free,
        FrameUse::Tail,
        FrameUse::Reserved,
        FrameUse::Kernel,
        FrameUse::Slab,
        FrameUse::PageTable,
        FrameUse::KernelStack,
        FrameUse::UserAnon,
        FrameUse::UserFile,
        FrameUse::SwapCache,
        FrameUse::UserHuge,
    ];

    /// A dense index in `0..COUNT`, for per-use arrays.
    #[inline]
    pub const fn index(self) -> usize {
        self as usize
    }

    /// Whether a caller may allocate a frame for this use (everything except `Free`,
    /// `Tail` and `Reserved`).
    #[inline]
    pub const fn is_allocatable(self) -> bool {
        self as u8 >= FrameUse::Kernel as u8
    }

    /// The variant whose [`FrameUse::index`] is `i`, if any.
    #[inline]
    pub const fn from_index(i: usize) -> Option<FrameUse> {
        if i < Self::COUNT {
            Some(Self::ALL[i])
        } else {
            None
        }
    }
}

bitflags::bitflags! {
    /// Page-replacement flags of an allocated frame, owned by the memory manager above
    /// the allocator (the allocator only clears them when it hands the frame out).
    #[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
    pub struct FrameFlags: u32 {
        /// Accessed since the replacement scan last looked (second-chance bit).
        const REFERENCED = 1 << 0;
        /// Contents differ from the backing store; write back before reuse.
        const DIRTY = 1 << 1;
        /// On the active (recently used) list rather than the inactive one.
        const ACTIVE = 1 << 2;
        /// Linked on a replacement list through [`FrameMeta::lru_links`].
        const ON_LRU = 1 << 3;
        /// Under I/O or otherwise pinned: not a candidate for reclaim.
        const LOCKED = 1 << 4;
    }
}

/// "No frame": the end of a list in [`FrameMeta`] links.
pub const NO_FRAME: u32 = u32::MAX;

const USE_MASK: u32 = 0xff;
const ORDER_SHIFT: u32 = 8;
const ORDER_MASK: u32 = 0x1f;
const CACHED_BIT: u32 = 1 << 13;

/// The state word of the head of a block of `order` with use `u`.
#[inline]
pub(super) const fn head_state(u: FrameUse, order: usize) -> u32 {
    u as u32 | ((order as u32) << ORDER_SHIFT)
}

/// State of a frame held in a hart cache.
pub(super) const STATE_CACHED: u32 = head_state(FrameUse::Free, 0) | CACHED_BIT;
/// State of a frame inside a block (not its head).
pub(super) const STATE_TAIL: u32 = head_state(FrameUse::Tail, 0);
/// State of a frame that is not managed.
pub(super) const STATE_RESERVED: u32 = head_state(FrameUse::Reserved, 0);

/// A decoded state word.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum State {
    /// Head of a free block on buddy list `order`.
    FreeHead(usize),
    /// Free single frame in a hart cache.
    Cached,
    /// Head of an allocated block.
    Allocated(FrameUse, usize),
    /// Inside a block.
    Tail,
    /// Not managed.
    Reserved,
}

impl State {
    #[inline]
    pub(super) const fn decode(word: u32) -> State {
        let order = ((word >> ORDER_SHIFT) & ORDER_MASK) as usize;
        match FrameUse::from_index((word & USE_MASK) as usize) {
            Some(FrameUse::Free) if word & CACHED_BIT != 0 => State::Cached,
            Some(FrameUse::Free) => State::FreeHead(order),
            Some(FrameUse::Tail) => State::Tail,
            Some(u) if u.is_allocatable() => State::Allocated(u, order),
            // Only this module writes state words; an unknown value cannot occur, and
            // treating it as "not managed" keeps every caller away from the frame.
            _ => State::Reserved,
        }
    }
}

/// Metadata of one 4 KiB frame (32 bytes, one per frame: 0.8 % of RAM).
///
/// Obtained from `FrameAllocator::meta`. The allocator owns the state word and, while
/// the frame is free, the links; everything else belongs to the holders of the frame's
/// references and is reset to zero when the frame is allocated.
///
/// ```text
///  0        4        8         12       16              24                 32
///  +--------+--------+---------+--------+-------+-------+------------------+
///  |refcount| state  |mapcount | flags  | link0 | link1 |   owner word     |
///  +--------+--------+---------+--------+-------+-------+------------------+
///                                        free: buddy list prev/next
///                                        allocated: replacement (LRU) list
/// ```
#[derive(Debug)]
#[repr(C, align(32))]
pub struct FrameMeta {
    refcount: AtomicU32,
    state: AtomicU32,
    mapcount: AtomicU32,
    flags: AtomicU32,
    links: [AtomicU32; 2],
    owner: AtomicU64,
}

const _: () = assert!(core::mem::size_of::<FrameMeta>() == 32);

impl FrameMeta {
    /// An entry for a frame that is not managed.
    pub(super) const fn reserved() -> FrameMeta {
        FrameMeta {
            refcount: AtomicU32::new(0),
            state: AtomicU32::new(STATE_RESERVED),
            mapcount: AtomicU32::new(0),
            flags: AtomicU32::new(0),
            links: [AtomicU32::new(NO_FRAME), AtomicU32::new(NO_FRAME)],
            owner: AtomicU64::new(0),
        }
    }

    #[inline]
    pub(super) fn state_word(&self) -> u32 {
        self.state.load(Ordering::Relaxed)
    }

    #[inline]
    pub(super) fn state(&self) -> State {
        State::decode(self.state_word())
    }

    #[inline]
    pub(super) fn set_state(&self, word: u32) {
        self.state.store(word, Ordering::Relaxed);
    }

    /// Atomically replaces the state `old` by `new`; false if it was not `old`.
    #[inline]
    pub(super) fn swap_state(&self, old: u32, new: u32) -> bool {
        self.state
            .compare_exchange(old, new, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }

    #[inline]
    pub(super) fn link(&self, which: usize) -> u32 {
        self.links[which].load(Ordering::Relaxed)
    }

    #[inline]
    pub(super) fn set_link(&self, which: usize, v: u32) {
        self.links[which].store(v, Ordering::Relaxed);
    }

    /// Makes a just-allocated head ready for its owner: one reference, no mappings, no
    /// flags, no owner word, unlinked, then the allocated state.
    #[inline]
    pub(super) fn prepare(&self, word: u32) {
        self.prepare_owned(word, 0);
    }

    /// As [`prepare`](Self::prepare), with owner word `owner` (the reverse map's, given
    /// with the allocation so that it costs no second visit to the entry).
    #[inline]
    pub(super) fn prepare_owned(&self, word: u32, owner: u64) {
        self.mapcount.store(0, Ordering::Relaxed);
        self.flags.store(0, Ordering::Relaxed);
        self.owner.store(owner, Ordering::Relaxed);
        self.links[0].store(NO_FRAME, Ordering::Relaxed);
        self.links[1].store(NO_FRAME, Ordering::Relaxed);
        self.refcount.store(1, Ordering::Relaxed);
        self.state.store(word, Ordering::Relaxed);
    }

    /// Takes the only reference: 1 -> 0. On failure returns the count found.
    ///
    /// A load and a store, no read-modify-write: the caller says it holds the only
    /// reference, and while it does nobody else may change the count (adding one needs a
    /// reference of one's own). The load catches a sequential double free or a free of a
    /// shared frame; a free racing with another free or a `get` of the same frame (a
    /// caller bug either way) may go unseen. Dropping a possibly shared reference is
    /// [`FrameMeta::dec_ref`], which is atomic. The acquire load orders every access of
    /// the earlier holders (whose drops were releases) before the frame is reused.
    #[inline]
    pub(super) fn claim_sole(&self) -> Result<(), u32> {
        match self.refcount.load(Ordering::Acquire) {
            1 => {
                self.refcount.store(0, Ordering::Relaxed);
                Ok(())
            }
            refs => Err(refs),
        }
    }

    /// Drops one reference; `Ok(true)` when it was the last. One atomic subtraction (the
    /// common case of fork's and exit's reference traffic); a drop from zero, which only
    /// a caller bug racing with the frame's release can reach (callers check the frame is
    /// allocated first), is undone and reported as `NotAllocated`.
    #[inline]
    pub(super) fn dec_ref(&self) -> Result<bool, FrameError> {
        match self.refcount.fetch_sub(1, Ordering::Release) {
            0 => {
                self.refcount.fetch_add(1, Ordering::Relaxed);
                Err(FrameError::NotAllocated)
            }
            1 => {
                // Everything the other holders did to the frame happens before it is
                // released.
                core::sync::atomic::fence(Ordering::Acquire);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Drops one of the references to a frame unless it is the last: `true` if it did
    /// (others remain), `false` if the count is 1 or less (nothing changed). For a block
    /// whose holders each hold a reference and whose last holder must do more than free
    /// it (a page-table page fork shares: the last holder empties it first).
    pub(super) fn dec_ref_unless_last(&self) -> bool {
        self.refcount
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n > 1).then(|| n - 1)
            })
            .is_ok()
    }

    /// Adds one reference to a frame that has at least one (the caller holds it); returns
    /// the new count. One atomic addition; the impossible cases (no reference, or 2^32 of
    /// them) are undone and reported.
    #[inline]
    pub(super) fn inc_ref(&self) -> Result<u32, FrameError> {
        match self.refcount.fetch_add(1, Ordering::Relaxed) {
            0 => {
                self.refcount.fetch_sub(1, Ordering::Relaxed);
                Err(FrameError::NotAllocated)
            }
            u32::MAX => {
                self.refcount.fetch_sub(1, Ordering::Relaxed);
                Err(FrameError::RefOverflow)
            }
            n => Ok(n + 1),
        }
    }

    /// What the frame is used for. A frame inside a multi-frame block reports
    /// [`FrameUse::Tail`]; `FrameAllocator::block_of` finds its head.
    #[inline]
    pub fn frame_use(&self) -> FrameUse {
        match self.state() {
            State::FreeHead(_) | State::Cached => FrameUse::Free,
            State::Allocated(u, _) => u,
            State::Tail => FrameUse::Tail,
            State::Reserved => FrameUse::Reserved,
        }
    }

    /// The order of the block this frame heads (free or allocated); `None` for a tail or
    /// reserved frame.
    #[inline]
    pub fn order(&self) -> Option<usize> {
        match self.state() {
            State::FreeHead(k) | State::Allocated(_, k) => Some(k),
            State::Cached => Some(0),
            State::Tail | State::Reserved => None,
        }
    }

    /// Number of references to the block (0 when it is free, a tail or reserved).
    #[inline]
    pub fn refcount(&self) -> u32 {
        self.refcount.load(Ordering::Acquire)
    }

    /// Number of page-table entries that map the frame (reverse-map bookkeeping kept by
    /// the virtual-memory layer; the allocator only resets it to 0 on allocation).
    #[inline]
    pub fn mapcount(&self) -> u32 {
        self.mapcount.load(Ordering::Acquire)
    }

    /// Records one more mapping; returns the new count, or `None` (unchanged) at
    /// `u32::MAX`.
    #[inline]
    pub fn inc_mapcount(&self) -> Option<u32> {
        self.mapcount
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |n| n.checked_add(1))
            .ok()
            .map(|n| n + 1)
    }

    /// Records one mapping fewer; returns the new count, or `None` (unchanged) if it was
    /// already 0.
    #[inline]
    pub fn dec_mapcount(&self) -> Option<u32> {
        self.mapcount
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |n| n.checked_sub(1))
            .ok()
            .map(|n| n - 1)
    }

    /// The owner word: reverse-map information chosen by the virtual-memory layer (for
    /// example an address-space id and page index, a file id and offset, or a swap slot).
    #[inline]
    pub fn owner(&self) -> u64 {
        self.owner.load(Ordering::Acquire)
    }

    /// Sets the owner word. Meaningful only while the caller holds a reference.
    #[inline]
    pub fn set_owner(&self, word: u64) {
        self.owner.store(word, Ordering::Release);
    }

    /// The replacement flags.
    #[inline]
    pub fn flags(&self) -> FrameFlags {
        FrameFlags::from_bits_retain(self.flags.load(Ordering::Acquire))
    }

    /// Sets `f` in the flags; returns the flags before.
    #[inline]
    pub fn insert_flags(&self, f: FrameFlags) -> FrameFlags {
        FrameFlags::from_bits_retain(self.flags.fetch_or(f.bits(), Ordering::AcqRel))
    }

    /// Clears `f` in the flags; returns the flags before (so `remove_flags(REFERENCED)`
    /// is the test-and-clear of a second-chance scan).
    #[inline]
    pub fn remove_flags(&self, f: FrameFlags) -> FrameFlags {
        FrameFlags::from_bits_retain(self.flags.fetch_and(!f.bits(), Ordering::AcqRel))
    }

    /// The two replacement-list links (`[prev, next]`, frame indices as given by
    /// `FrameAllocator::index_of`, [`NO_FRAME`] for none), if the frame is the head of an
    /// allocated block; `None` otherwise (while a block is free the allocator uses the
    /// same words for its own lists).
    #[inline]
    pub fn lru_links(&self) -> Option<[u32; 2]> {
        match self.state() {
            State::Allocated(..) => Some([self.link(0), self.link(1)]),
            _ => None,
        }
    }

    /// Sets the replacement-list links of the head of an allocated block; on any other
    /// frame nothing is written and `Err(NotAllocated)` is returned, so a stale caller
    /// cannot corrupt the free lists. A block whose last reference was just dropped is
    /// still allocated, and still on its list until its owner takes it off (the
    /// allocator's `put_local_with` callback, before the block is freed): its links
    /// must still follow its neighbours' removal. Refusing them there (as this once
    /// did, for a reference count of 0) left a dying frame pointing at a removed
    /// neighbour, and the list looped: reclaim spun for ever on two harts while the
    /// other hart waited to take the dying frame off.
    #[inline]
    pub fn set_lru_links(&self, links: [u32; 2]) -> Result<(), FrameError> {
        match self.state() {
            State::Allocated(..) => {
                self.set_link(0, links[0]);
                self.set_link(1, links[1]);
                Ok(())
            }
            _ => Err(FrameError::NotAllocated),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_order_is_one_gigapage() {
        assert_eq!(MAX_ORDER, 18);
        assert_eq!(crate::addr::PAGE_SIZE << MAX_ORDER, GIGAPAGE_SIZE);
    }

    #[test]
    fn states_round_trip() {
        for k in 0..ORDERS {
            assert_eq!(
                State::decode(head_state(FrameUse::Free, k)),
                State::FreeHead(k)
            );
            for u in FrameUse::ALL.iter().copied().filter(|u| u.is_allocatable()) {
                assert_eq!(State::decode(head_state(u, k)), State::Allocated(u, k));
            }
        }
        assert_eq!(State::decode(STATE_CACHED), State::Cached);
        assert_eq!(State::decode(STATE_TAIL), State::Tail);
        assert_eq!(State::decode(STATE_RESERVED), State::Reserved);
        assert_eq!(State::decode(0xff), State::Reserved);
    }

    #[test]
    fn use_indices_are_dense() {
        for (i, u) in FrameUse::ALL.iter().enumerate() {
            assert_eq!(u.index(), i);
            assert_eq!(FrameUse::from_index(i), Some(*u));
        }
        assert_eq!(FrameUse::from_index(FrameUse::COUNT), None);
    }

    #[test]
    fn reference_counts_never_wrap() {
        let m = FrameMeta::reserved();
        assert_eq!(m.inc_ref(), Err(FrameError::NotAllocated));
        assert_eq!(m.dec_ref(), Err(FrameError::NotAllocated));
        m.prepare(head_state(FrameUse::Kernel, 0));
        assert_eq!(m.inc_ref(), Ok(2));
        assert_eq!(m.dec_ref(), Ok(false));
        assert_eq!(m.claim_sole(), Ok(()));
        assert_eq!(m.claim_sole(), Err(0));
        assert_eq!(m.dec_mapcount(), None);
        assert_eq!(m.inc_mapcount(), Some(1));
        assert_eq!(m.dec_mapcount(), Some(0));
    }

    #[test]
    fn lru_links_follow_a_frame_whose_last_reference_was_dropped() {
        // Still allocated and still on its list until its owner takes it off: its
        // links must follow a neighbour's removal (refusing them once made the
        // replacement list loop).
        let m = FrameMeta::reserved();
        m.prepare(head_state(FrameUse::UserAnon, 0));
        assert_eq!(m.dec_ref(), Ok(true));
        assert_eq!(m.refcount(), 0);
        assert_eq!(m.set_lru_links([3, 4]), Ok(()));
        assert_eq!(m.lru_links(), Some([3, 4]));
    }

    #[test]
    fn lru_links_only_on_allocated_heads() {
        let m = FrameMeta::reserved();
        assert_eq!(m.set_lru_links([1, 2]), Err(FrameError::NotAllocated));
        assert_eq!(m.lru_links(), None);
        m.prepare(head_state(FrameUse::UserAnon, 0));
        assert_eq!(m.lru_links(), Some([NO_FRAME, NO_FRAME]));
        m.set_lru_links([1, 2]).unwrap();
        assert_eq!(m.lru_links(), Some([1, 2]));
        assert_eq!(m.remove_flags(FrameFlags::REFERENCED), FrameFlags::empty());
        m.insert_flags(FrameFlags::REFERENCED | FrameFlags::DIRTY);
        assert!(
            m.remove_flags(FrameFlags::REFERENCED)
                .contains(FrameFlags::REFERENCED)
        );
        assert_eq!(m.flags(), FrameFlags::DIRTY);
    }
}
