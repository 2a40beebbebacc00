//! The Linux riscv64 numbers of the memory system calls' arguments (`asm-generic`), so
//! the kernel can pass the raw register values straight through.

/// `PROT_NONE`: no access.
pub const PROT_NONE: usize = 0x0;
/// `PROT_READ`: pages may be read.
pub const PROT_READ: usize = 0x1;
/// `PROT_WRITE`: pages may be written.
pub const PROT_WRITE: usize = 0x2;
/// `PROT_EXEC`: pages may be executed.
pub const PROT_EXEC: usize = 0x4;
/// `PROT_SEM`: accepted and ignored (atomics work on all memory).
pub const PROT_SEM: usize = 0x8;
/// `PROT_GROWSDOWN` (`mprotect` only): extend the change down to the start of the stack
/// area containing the range.
pub const PROT_GROWSDOWN: usize = 0x0100_0000;
/// `PROT_GROWSUP` (`mprotect` only): for upward-growing areas, which RISC-V does not have.
pub const PROT_GROWSUP: usize = 0x0200_0000;

/// `MAP_SHARED`: writes are shared with every other mapper (unknown flags ignored).
pub const MAP_SHARED: usize = 0x01;
/// `MAP_PRIVATE`: writes stay private (copy-on-write).
pub const MAP_PRIVATE: usize = 0x02;
/// `MAP_SHARED_VALIDATE`: `MAP_SHARED` that rejects unknown flags with `EOPNOTSUPP`.
pub const MAP_SHARED_VALIDATE: usize = 0x03;
/// Mask of the mapping-type field.
pub const MAP_TYPE: usize = 0x0f;
/// `MAP_FIXED`: map exactly at `addr`, replacing whatever is there.
pub const MAP_FIXED: usize = 0x10;
/// `MAP_ANONYMOUS`: no file; the `fd` and `offset` arguments are ignored (offset must
/// still be page aligned).
pub const MAP_ANONYMOUS: usize = 0x20;
/// `MAP_GROWSDOWN`: a private anonymous area that grows down on faults below it.
pub const MAP_GROWSDOWN: usize = 0x0100;
/// `MAP_DENYWRITE`: ignored, as in Linux.
pub const MAP_DENYWRITE: usize = 0x0800;
/// `MAP_EXECUTABLE`: ignored, as in Linux.
pub const MAP_EXECUTABLE: usize = 0x1000;
/// `MAP_LOCKED`: the mapping is locked in memory (as by `mlock`) and populated now.
pub const MAP_LOCKED: usize = 0x2000;
/// `MAP_NORESERVE`: accepted; memory is never reserved ahead anyway.
pub const MAP_NORESERVE: usize = 0x4000;
/// `MAP_POPULATE`: fault every page in before returning.
pub const MAP_POPULATE: usize = 0x8000;
/// `MAP_NONBLOCK`: with `MAP_POPULATE`, do not populate.
pub const MAP_NONBLOCK: usize = 0x1_0000;
/// `MAP_STACK`: a hint, ignored.
pub const MAP_STACK: usize = 0x2_0000;
/// `MAP_HUGETLB`: explicit huge pages for private anonymous memory, every 2 MiB page
/// allocated at `mmap` (`ENOMEM` when a 2 MiB block is missing, as Linux without a
/// hugetlb pool); `EINVAL` for files and shared memory.
pub const MAP_HUGETLB: usize = 0x4_0000;
/// `MAP_SYNC`: only for DAX files; `EOPNOTSUPP` with `MAP_SHARED_VALIDATE`.
pub const MAP_SYNC: usize = 0x8_0000;
/// `MAP_FIXED_NOREPLACE`: like `MAP_FIXED` but `EEXIST` if the range is not free.
pub const MAP_FIXED_NOREPLACE: usize = 0x10_0000;
/// `MAP_UNINITIALIZED`: ignored (pages are always zeroed).
pub const MAP_UNINITIALIZED: usize = 0x400_0000;

/// The flags every file system accepts with `MAP_SHARED_VALIDATE` (Linux's
/// `LEGACY_MAP_MASK`).
pub const LEGACY_MAP_MASK: usize = MAP_SHARED
    | MAP_PRIVATE
    | MAP_FIXED
    | MAP_ANONYMOUS
    | MAP_DENYWRITE
    | MAP_EXECUTABLE
    | MAP_UNINITIALIZED
    | MAP_GROWSDOWN
    | MAP_LOCKED
    | MAP_NORESERVE
    | MAP_POPULATE
    | MAP_NONBLOCK
    | MAP_STACK
    | MAP_HUGETLB;

/// `MADV_NORMAL`: no special treatment (accepted, no effect).
pub const MADV_NORMAL: usize = 0;
/// `MADV_RANDOM`: random access expected (accepted, no effect).
pub const MADV_RANDOM: usize = 1;
/// `MADV_SEQUENTIAL`: sequential access expected (accepted, no effect).
pub const MADV_SEQUENTIAL: usize = 2;
/// `MADV_WILLNEED`: will be needed soon (accepted, no effect: nothing to read ahead).
pub const MADV_WILLNEED: usize = 3;
/// `MADV_DONTNEED`: drop the pages now; private pages read back as zeros (anonymous) or
/// as the file's contents (file mappings), shared pages keep their contents.
pub const MADV_DONTNEED: usize = 4;
/// `MADV_HUGEPAGE`: use huge pages for the range (also when `thp=madvise`).
pub const MADV_HUGEPAGE: usize = 14;
/// `MADV_NOHUGEPAGE`: no huge pages for the range (those already there stay).
pub const MADV_NOHUGEPAGE: usize = 15;

/// `MLOCK_ONFAULT` (`mlock2`): lock the pages as they are touched, without faulting the
/// range in now.
pub const MLOCK_ONFAULT: usize = 0x01;
/// `MCL_CURRENT` (`mlockall`): lock every current mapping.
pub const MCL_CURRENT: usize = 0x01;
/// `MCL_FUTURE` (`mlockall`): lock every mapping made from now on (until `munlockall`,
/// `execve` or a later `mlockall` without it).
pub const MCL_FUTURE: usize = 0x02;
/// `MCL_ONFAULT` (`mlockall`, with `MCL_CURRENT` or `MCL_FUTURE`): lock pages as they are
/// touched instead of faulting everything in.
pub const MCL_ONFAULT: usize = 0x04;

/// `MREMAP_MAYMOVE`: `mremap` may move the mapping when it cannot grow in place.
pub const MREMAP_MAYMOVE: usize = 1;
/// `MREMAP_FIXED`: move the mapping to `new_address`, replacing what is there (needs
/// `MREMAP_MAYMOVE`).
pub const MREMAP_FIXED: usize = 2;
/// `MREMAP_DONTUNMAP`: move the pages but leave the old range mapped and empty (needs
/// `MREMAP_MAYMOVE` and an unchanged size).
pub const MREMAP_DONTUNMAP: usize = 4;
