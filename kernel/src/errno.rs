//! Linux errno values: the one error type of what a system call reports, shared by the
//! system-call layer and the services under it (`fs`, `proc`).
//!
//! Every error a lower layer returns is converted into an [`Errno`] here; the system-call
//! dispatcher returns `-errno` in `a0`, as the Linux riscv64 ABI says. It lives outside
//! `syscall` so that the services do not depend on the system-call layer above them.

/// A Linux error number, named as in Linux's headers.
#[allow(clippy::upper_case_acronyms)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum Errno {
    /// Operation not permitted.
    EPERM = 1,
    /// No such file or directory.
    ENOENT = 2,
    /// No such process.
    ESRCH = 3,
    /// Interrupted system call.
    EINTR = 4,
    /// I/O error (a background read of the terminal that cannot be stopped).
    EIO = 5,
    /// Argument list too long.
    E2BIG = 7,
    /// Exec format error.
    ENOEXEC = 8,
    /// Bad file descriptor.
    EBADF = 9,
    /// No child processes.
    ECHILD = 10,
    /// Try again.
    EAGAIN = 11,
    /// Out of memory.
    ENOMEM = 12,
    /// Permission denied.
    EACCES = 13,
    /// Bad address.
    EFAULT = 14,
    /// Device or resource busy.
    EBUSY = 16,
    /// File exists.
    EEXIST = 17,
    /// Not a directory.
    ENOTDIR = 20,
    /// Is a directory.
    EISDIR = 21,
    /// Invalid argument.
    EINVAL = 22,
    /// File table overflow (the system's open-file limit).
    ENFILE = 23,
    /// Too many open files.
    EMFILE = 24,
    /// Not a typewriter.
    ENOTTY = 25,
    /// No space left on device (`/dev/full`).
    ENOSPC = 28,
    /// Illegal seek.
    ESPIPE = 29,
    /// Read-only file system.
    EROFS = 30,
    /// Broken pipe.
    EPIPE = 32,
    /// Result too large.
    ERANGE = 34,
    /// File name too long.
    ENAMETOOLONG = 36,
    /// Function not implemented.
    ENOSYS = 38,
    /// Too many symbolic links encountered.
    ELOOP = 40,
    /// Invalid cross-device link (a rename or link between file systems).
    EXDEV = 18,
    /// No such device.
    ENODEV = 19,
    /// File too large.
    EFBIG = 27,
    /// Directory not empty.
    ENOTEMPTY = 39,
    /// Value too large for defined data type.
    EOVERFLOW = 75,
    /// Operation not supported.
    EOPNOTSUPP = 95,
    /// Connection timed out (a futex wait's deadline passed).
    ETIMEDOUT = 110,
}

impl Errno {
    /// The value a system call returns in `a0` for this error.
    pub fn as_return(self) -> usize {
        (-(self as i32) as isize) as usize
    }
}

impl Errno {
    /// The errno of a virtual-memory error.
    pub fn from_vm(e: pagoda_mm::vm::VmError) -> Errno {
        use pagoda_mm::vm::VmError;
        match e {
            VmError::Perm => Errno::EPERM,
            VmError::BadFd => Errno::EBADF,
            VmError::Again => Errno::EAGAIN,
            VmError::NoMem => Errno::ENOMEM,
            VmError::Access => Errno::EACCES,
            VmError::Fault => Errno::EFAULT,
            VmError::Exist => Errno::EEXIST,
            VmError::NoDev => Errno::ENODEV,
            VmError::Inval => Errno::EINVAL,
            VmError::Overflow => Errno::EOVERFLOW,
            VmError::OpNotSupp => Errno::EOPNOTSUPP,
        }
    }
}

/// The result type of every system call handler.
pub type SysResult = Result<usize, Errno>;
