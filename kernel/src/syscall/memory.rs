//! Memory system calls: the `pagoda-mm` address-space operations of the current process.

use alloc::sync::Arc;

use pagoda_mm::vm::abi::MAP_ANONYMOUS;
use pagoda_mm::vm::{MmapFile, VmFile};

use super::{Errno, SysResult};
use crate::fs::File;
use crate::fs::initramfs::Kind;
use crate::memory::uspace::{InitramfsFile, UserSpace};
use crate::proc;

/// Runs `f` on the current process's address space.
fn with_vm<R>(f: impl FnOnce(&mut UserSpace) -> R) -> Result<R, Errno> {
    proc::sched::with_current(|me| {
        let me = me.ok_or(Errno::ESRCH)?;
        let mut vm = me.vm.lock();
        let vm = vm.as_mut().ok_or(Errno::ESRCH)?;
        Ok(f(vm))
    })
}

pub fn brk(addr: usize) -> SysResult {
    with_vm(|vm| vm.brk(addr).0)
}

/// The mapping view of descriptor `fd`: `None` if it is not open.
fn mmap_file(fd: usize) -> Option<MmapFile> {
    let f = proc::current().inner.lock().fds.get(fd).ok()?;
    let file = f.lock();
    let backing: Option<Arc<dyn VmFile>> = match &*file {
        File::Node { node, .. } if node.kind == Kind::File => {
            Some(Arc::new(InitramfsFile::new(node.data)))
        }
        _ => None,
    };
    Some(MmapFile {
        file: backing,
        readable: true,
        writable: false,
    })
}

pub fn mmap(
    addr: usize,
    len: usize,
    prot: usize,
    flags: usize,
    fd: usize,
    offset: usize,
) -> SysResult {
    let file = if flags & MAP_ANONYMOUS != 0 {
        None
    } else {
        mmap_file(fd)
    };
    with_vm(|vm| vm.mmap(addr, len, prot, flags, file, offset))?
        .map(|va| va.0)
        .map_err(Errno::from_vm)
}

pub fn munmap(addr: usize, len: usize) -> SysResult {
    with_vm(|vm| vm.munmap(addr, len))?
        .map(|()| 0)
        .map_err(Errno::from_vm)
}

pub fn mprotect(addr: usize, len: usize, prot: usize) -> SysResult {
    with_vm(|vm| vm.mprotect(addr, len, prot))?
        .map(|()| 0)
        .map_err(Errno::from_vm)
}

pub fn madvise(addr: usize, len: usize, advice: usize) -> SysResult {
    with_vm(|vm| vm.madvise(addr, len, advice))?
        .map(|()| 0)
        .map_err(Errno::from_vm)
}
