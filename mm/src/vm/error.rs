//! Error values of the virtual-memory layer and their Linux errno numbers.

use core::fmt;

use super::hal::SwapEntry;

/// Why an address-space operation (`mmap`, `munmap`, `mprotect`, `madvise`, the exec-time
/// mappers, [`ensure_user_range`](super::AddressSpace::ensure_user_range)) failed. Each
/// variant is one Linux errno; [`VmError::to_errno`] gives its number for the system-call
/// return value (negated by the caller).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VmError {
    /// `EPERM` (1): a fixed mapping below `mmap_min_addr`.
    Perm,
    /// `EBADF` (9): a file mapping without a valid file descriptor.
    BadFd,
    /// `EAGAIN` (11): a locked mapping (`MAP_LOCKED`, or any mapping after
    /// `mlockall(MCL_FUTURE)`) would pass `RLIMIT_MEMLOCK`; `mlock` could not fault its
    /// pages in for want of memory.
    Again,
    /// `ENOMEM` (12): no room in the address space, a range not (fully) mapped, too many
    /// areas, or out of physical memory.
    NoMem,
    /// `EACCES` (13): the file's open mode forbids the requested protection.
    Access,
    /// `EFAULT` (14): a user buffer is not accessible as requested.
    Fault,
    /// `EEXIST` (17): `MAP_FIXED_NOREPLACE` over an existing mapping.
    Exist,
    /// `ENODEV` (19): the file cannot be memory-mapped.
    NoDev,
    /// `EINVAL` (22): a malformed argument (alignment, length 0, unknown type or advice).
    Inval,
    /// `EOVERFLOW` (75): the file offset plus length overflows.
    Overflow,
    /// `EOPNOTSUPP` (95): `MAP_SHARED_VALIDATE` with a flag the mapping does not support.
    OpNotSupp,
}

impl VmError {
    /// The Linux errno number (positive).
    pub const fn to_errno(self) -> i32 {
        match self {
            VmError::Perm => 1,
            VmError::BadFd => 9,
            VmError::Again => 11,
            VmError::NoMem => 12,
            VmError::Access => 13,
            VmError::Fault => 14,
            VmError::Exist => 17,
            VmError::NoDev => 19,
            VmError::Inval => 22,
            VmError::Overflow => 75,
            VmError::OpNotSupp => 95,
        }
    }
}

impl fmt::Display for VmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            VmError::Perm => "EPERM",
            VmError::BadFd => "EBADF",
            VmError::Again => "EAGAIN",
            VmError::NoMem => "ENOMEM",
            VmError::Access => "EACCES",
            VmError::Fault => "EFAULT",
            VmError::Exist => "EEXIST",
            VmError::NoDev => "ENODEV",
            VmError::Inval => "EINVAL",
            VmError::Overflow => "EOVERFLOW",
            VmError::OpNotSupp => "EOPNOTSUPP",
        };
        f.write_str(name)
    }
}

/// Why a page fault could not be resolved: the signal the faulting thread gets, or out of
/// memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultError {
    /// `SIGSEGV` with `SEGV_MAPERR`: no area covers the address (including kernel-half and
    /// non-canonical addresses, and stack growth refused by the limit or the guard gap).
    Unmapped,
    /// `SIGSEGV` with `SEGV_ACCERR`: the area exists but forbids this kind of access.
    AccessDenied,
    /// `SIGBUS`: a file page wholly beyond the end of the file, or the file read failed.
    Bus,
    /// No physical memory for the page or for a page-table page.
    OutOfMemory,
    /// The page is in swap (its PTE remembers this entry): the kernel reads it in without
    /// holding the space, then maps it with
    /// [`AddressSpace::swap_in_page`](super::AddressSpace::swap_in_page) and retries.
    SwappedOut(SwapEntry),
}

impl FaultError {
    /// The errno a kernel-mode user access (`copy_from_user`) reports for this failure:
    /// `EFAULT` for the signals, `ENOMEM` when memory ran out.
    pub const fn to_vm_error(self) -> VmError {
        match self {
            FaultError::OutOfMemory => VmError::NoMem,
            // A swapped-out page needs the kernel's I/O first; a caller that cannot do it
            // reports the access as failed.
            FaultError::Unmapped
            | FaultError::AccessDenied
            | FaultError::Bus
            | FaultError::SwappedOut(_) => VmError::Fault,
        }
    }
}
