//! Static ELF executables: validation and the load plan, by
//! [`pagoda_formats::elf`] (host-tested there with hostile files). A file that is not a
//! well-formed static riscv64 `ET_EXEC` whose loadable segments lie in the user half,
//! inside the file, without overlapping, gets `ENOEXEC`, never a kernel fault.

#![deny(unsafe_code)]

use pagoda_formats::elf::ElfError;
pub use pagoda_formats::elf::LoadPlan;

use crate::syscall::errno::Errno;

/// Validates `file` and returns what to map.
pub fn plan(file: &[u8]) -> Result<LoadPlan, Errno> {
    pagoda_formats::elf::plan(file).map_err(|e| match e {
        ElfError::NotExecutable => Errno::ENOEXEC,
        ElfError::OutOfMemory => Errno::ENOMEM,
    })
}
