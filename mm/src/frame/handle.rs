//! [`Frame`]: an owned reference to an allocated block that is put back on drop.

use core::fmt;

use super::allocator::FrameAllocator;
use super::error::{AllocError, FrameError};
use super::meta::{FrameMeta, FrameUse};
use crate::addr::{PAGE_SIZE, Pfn, PhysAddr};
use crate::layout::MAX_HARTS;

/// Recorded instead of a hart id for handles that free through the buddy lock.
const NO_HART: u16 = u16::MAX;
const _: () = assert!(MAX_HARTS < NO_HART as usize);

/// One reference to an allocated block of 2^order frames. Dropping it drops the
/// reference ([`FrameAllocator::put`]); the block goes back to the allocator when its
/// last reference goes, through the cache of the hart it was allocated on (for a single
/// frame) or the buddy lists.
///
/// A `Frame` does not give access to the memory (the allocator never maps or touches
/// it); it owns the right to use it.
pub struct Frame<'a> {
    frames: &'a FrameAllocator,
    meta: &'static FrameMeta,
    pfn: Pfn,
    order: u8,
    hart: u16,
}

impl FrameAllocator {
    /// [`FrameAllocator::alloc`] wrapped in a [`Frame`] handle.
    pub fn alloc_frame(&self, order: usize, u: FrameUse) -> Result<Frame<'_>, AllocError> {
        let pfn = self.alloc(order, u)?;
        Ok(Frame {
            frames: self,
            meta: self.meta(pfn).ok_or(AllocError::Uninitialised)?,
            pfn,
            order: order as u8,
            hart: NO_HART,
        })
    }

    /// [`FrameAllocator::alloc_on`] wrapped in a [`Frame`] handle that, when it drops the
    /// last reference, frees a single frame into `hart`'s cache.
    pub fn alloc_frame_on(
        &self,
        hart: usize,
        order: usize,
        u: FrameUse,
    ) -> Result<Frame<'_>, AllocError> {
        let pfn = self.alloc_on(hart, order, u)?;
        Ok(Frame {
            frames: self,
            meta: self.meta(pfn).ok_or(AllocError::Uninitialised)?,
            pfn,
            order: order as u8,
            hart: hart as u16,
        })
    }

    /// A new handle holding one more reference ([`FrameAllocator::get`]) to the
    /// allocated block headed by `pfn`, which the caller must already hold one to.
    pub fn frame(&self, pfn: Pfn) -> Result<Frame<'_>, FrameError> {
        let meta = self.meta(pfn).ok_or(FrameError::OutOfRange)?;
        self.get(pfn)?;
        Ok(Frame {
            frames: self,
            meta,
            pfn,
            order: meta.order().unwrap_or(0) as u8,
            hart: NO_HART,
        })
    }
}

impl Frame<'_> {
    /// The first frame of the block.
    #[inline]
    pub fn pfn(&self) -> Pfn {
        self.pfn
    }

    /// The physical address of the block.
    #[inline]
    pub fn addr(&self) -> PhysAddr {
        self.pfn.addr()
    }

    /// The block order (2^order frames).
    #[inline]
    pub fn order(&self) -> usize {
        self.order as usize
    }

    /// The block size in bytes.
    #[inline]
    pub fn size(&self) -> usize {
        PAGE_SIZE << self.order
    }

    /// The metadata of the block's first frame.
    #[inline]
    pub fn meta(&self) -> &'static FrameMeta {
        self.meta
    }

    /// Another handle to the same block (one more reference); fails only if the
    /// reference count would overflow.
    pub fn try_clone(&self) -> Result<Self, FrameError> {
        self.frames.get(self.pfn)?;
        Ok(Frame { ..*self })
    }

    /// Gives up the handle without dropping its reference: the caller now holds it and
    /// must release it with [`FrameAllocator::put`] (or `free` if it is the only one).
    #[inline]
    pub fn into_pfn(self) -> Pfn {
        let pfn = self.pfn;
        core::mem::forget(self);
        pfn
    }
}

impl Drop for Frame<'_> {
    fn drop(&mut self) {
        let slot = self.frames.slot(self.hart as usize);
        let res = self.frames.put_inner(slot, self.pfn);
        // A handle owns a reference, so `put` can only fail if someone released that
        // reference behind the handle's back (a programming error in the caller).
        debug_assert!(
            res.is_ok(),
            "Frame handle dropped a reference it did not own: {res:?}"
        );
    }
}

impl fmt::Debug for Frame<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Frame")
            .field("pfn", &self.pfn)
            .field("order", &self.order)
            .finish()
    }
}
