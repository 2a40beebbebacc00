//! Error values of the frame allocator. Nothing in `frame` panics on bad input or on
//! exhaustion; every failure is one of these.

use core::fmt;

use crate::addr::Pfn;

/// Why an allocation failed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum AllocError {
    /// No free block of the requested order, even after draining every hart cache.
    OutOfMemory,
    /// The order is above [`super::MAX_ORDER`].
    InvalidOrder,
    /// The hart id is not below [`crate::layout::MAX_HARTS`].
    InvalidHart,
    /// The use is `Free`, `Tail` or `Reserved` (see [`super::FrameUse::is_allocatable`]).
    InvalidUse,
    /// `FrameAllocator::init` has not run (or failed).
    Uninitialised,
}

/// Why an operation on an allocated frame (free, reference count, use) was refused.
/// When it is returned, nothing was changed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FrameError {
    /// The frame number is outside the managed span (or the allocator is uninitialised).
    OutOfRange,
    /// The frame is inside the span but is not managed RAM.
    Reserved,
    /// The frame is free (for a free: a double free).
    NotAllocated,
    /// The frame lies inside a larger block; operations name the block's first frame.
    NotHead,
    /// The block was allocated with another order (given here).
    WrongOrder {
        /// The order the block really has.
        allocated: usize,
    },
    /// `free` requires the only reference, but the block has `refs` of them (use `put`).
    Shared {
        /// References currently held.
        refs: u32,
    },
    /// Another reference would overflow the 32-bit count.
    RefOverflow,
    /// The order is above [`super::MAX_ORDER`].
    InvalidOrder,
    /// The hart id is not below [`crate::layout::MAX_HARTS`].
    InvalidHart,
    /// The use is `Free`, `Tail` or `Reserved`.
    InvalidUse,
}

/// Why `FrameAllocator::init` refused its arguments. The allocator stays uninitialised.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum InitError {
    /// `init` already succeeded once.
    AlreadyInitialised,
    /// The metadata memory has fewer entries than `FrameAllocator::metadata_len` says.
    MetadataTooSmall {
        /// Entries needed.
        needed: usize,
        /// Entries given.
        given: usize,
    },
    /// Two free ranges overlap at this frame.
    Overlap(Pfn),
    /// The span from the lowest to the highest frame exceeds 2^32 - 1 frames (16 TiB).
    SpanTooLarge,
}

/// The allocator's structures contradict an invariant (found by `FrameAllocator::verify`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Corruption {
    /// The frame where the contradiction was seen (the span base when it is global).
    pub pfn: Pfn,
    /// Which invariant failed.
    pub what: &'static str,
}

impl fmt::Display for AllocError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            AllocError::OutOfMemory => "out of physical memory",
            AllocError::InvalidOrder => "block order too large",
            AllocError::InvalidHart => "hart id out of range",
            AllocError::InvalidUse => "not an allocatable frame use",
            AllocError::Uninitialised => "frame allocator not initialised",
        };
        f.write_str(s)
    }
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::OutOfRange => f.write_str("frame outside managed memory"),
            FrameError::Reserved => f.write_str("frame is reserved"),
            FrameError::NotAllocated => f.write_str("frame is not allocated"),
            FrameError::NotHead => f.write_str("frame is inside a larger block"),
            FrameError::WrongOrder { allocated } => {
                write!(f, "block was allocated with order {allocated}")
            }
            FrameError::Shared { refs } => write!(f, "block has {refs} references"),
            FrameError::RefOverflow => f.write_str("reference count overflow"),
            FrameError::InvalidOrder => f.write_str("block order too large"),
            FrameError::InvalidHart => f.write_str("hart id out of range"),
            FrameError::InvalidUse => f.write_str("not an allocatable frame use"),
        }
    }
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InitError::AlreadyInitialised => f.write_str("frame allocator already initialised"),
            InitError::MetadataTooSmall { needed, given } => {
                write!(f, "metadata has {given} entries, {needed} needed")
            }
            InitError::Overlap(pfn) => write!(f, "free ranges overlap at frame {:#x}", pfn.0),
            InitError::SpanTooLarge => f.write_str("managed span exceeds 2^32 - 1 frames"),
        }
    }
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "frame {:#x}: {}", self.pfn.0, self.what)
    }
}
