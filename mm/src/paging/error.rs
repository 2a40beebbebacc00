//! The one error type of the page-table layer.

use core::fmt;

/// Why a page-table request was refused. A refused request changes nothing, except where
/// a function documents partial progress (running out of memory in the middle of a range).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PagingError {
    /// An address or length is not a multiple of the page size it must be aligned to.
    Misaligned,
    /// A virtual address is not canonical for Sv39, or a range wraps or passes through the
    /// non-canonical hole.
    NonCanonical,
    /// A virtual range lies outside what this table may change (the shared kernel half of
    /// a user table), or a physical range reaches beyond Sv39's 56-bit physical addresses.
    OutOfRange,
    /// Part of the range is already mapped.
    AlreadyMapped,
    /// Nothing is mapped where a mapping was required.
    NotMapped,
    /// A page-table page could not be allocated.
    OutOfMemory,
    /// The flags are not a legal leaf (neither `R` nor `X`, or `W` without `R`).
    InvalidFlags,
}

impl fmt::Display for PagingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Misaligned => "misaligned address or length",
            Self::NonCanonical => "non-canonical virtual address",
            Self::OutOfRange => "address outside the range this table may change",
            Self::AlreadyMapped => "already mapped",
            Self::NotMapped => "not mapped",
            Self::OutOfMemory => "out of memory for page tables",
            Self::InvalidFlags => "invalid leaf flags",
        })
    }
}

impl core::error::Error for PagingError {}
