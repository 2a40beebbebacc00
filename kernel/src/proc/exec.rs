//! `execve`: replaces a process's image with a static ELF from the initramfs.
//!
//! Nothing is loaded eagerly: segments become file-backed private areas and the stack an
//! anonymous area; pages arrive on first touch. The new image is built completely before
//! the old one is dropped, so a failing `execve` returns an error to the old image.
//!
//! The initial stack is laid out as Linux does:
//!
//! ```text
//!  stack top →  8 zero bytes
//!               AT_EXECFN string (the path given to execve)
//!               envp strings, then argv strings below them (argv[0] lowest)
//!               16 random bytes (AT_RANDOM)
//!               (16-byte aligned)
//!               auxv pairs ... AT_NULL
//!               NULL, envp[envc-1] ... envp[0]
//!               NULL, argv[argc-1] ... argv[0]
//!        sp  →  argc
//! ```

#![deny(unsafe_code)]

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use pagoda_mm::addr::{PAGE_SIZE, VirtAddr, align_down};
use pagoda_mm::layout::{USER_STACK_INITIAL, USER_STACK_TOP};
use pagoda_mm::vm::Prot;

use super::Process;
use super::elf;
use crate::arch::trap::{FpState, TrapFrame, initial_user_sstatus, load_fp, reg};
use crate::fs::initramfs::Kind;
use crate::memory::uspace;
use crate::syscall::errno::Errno;

/// Most bytes of argv + envp strings and pointers (Linux: a quarter of the stack limit).
pub const MAX_ARG_BYTES: usize = 2 * 1024 * 1024;

/// Auxiliary-vector keys pagoda provides.
mod at {
    pub const NULL: usize = 0;
    pub const PHDR: usize = 3;
    pub const PHENT: usize = 4;
    pub const PHNUM: usize = 5;
    pub const PAGESZ: usize = 6;
    pub const BASE: usize = 7;
    pub const FLAGS: usize = 8;
    pub const ENTRY: usize = 9;
    pub const UID: usize = 11;
    pub const EUID: usize = 12;
    pub const GID: usize = 13;
    pub const EGID: usize = 14;
    pub const HWCAP: usize = 16;
    pub const CLKTCK: usize = 17;
    pub const SECURE: usize = 23;
    pub const RANDOM: usize = 25;
    pub const EXECFN: usize = 31;
}

/// `AT_HWCAP` for RV64IMAFDC: one bit per single-letter extension.
const HWCAP_RV64GC: usize = {
    let letters = *b"imafdc";
    let mut bits = 0;
    let mut i = 0;
    while i < letters.len() {
        bits |= 1 << (letters[i] - b'a');
        i += 1;
    }
    bits
};

/// Replaces `p`'s image with the program at `path`; returns the trap frame that enters
/// it (the caller installs it: the running process's own frame, or a new process's).
pub fn exec_into(
    p: &Arc<Process>,
    path: &str,
    argv: &[String],
    envp: &[String],
) -> Result<TrapFrame, Errno> {
    let node = crate::fs::lookup(path)?;
    if node.perm & 0o111 == 0 {
        return Err(Errno::EACCES);
    }
    if node.kind == Kind::Dir {
        return Err(Errno::EACCES);
    }
    let plan = elf::plan(node.data)?;
    let file = crate::fs::initramfs::mem_object(&node)?;
    let mut vm = uspace::new_space().map_err(|_| Errno::ENOMEM)?;
    // Resource limits survive exec.
    vm.set_as_limit(p.group.lock().as_limit());
    let mut brk = 0;
    for seg in &plan.segments {
        let mut prot = Prot::empty();
        prot.set(Prot::READ, seg.read);
        prot.set(Prot::WRITE, seg.write);
        prot.set(Prot::EXEC, seg.exec);
        let start = seg.map_start();
        let len = seg.map_end() - start;
        let page_off = seg.vaddr - start;
        let result = if seg.filesz == 0 {
            vm.map_anon(VirtAddr(start), len, prot)
        } else {
            let offset = align_down(seg.offset, PAGE_SIZE) as u64;
            vm.map_file_private(
                VirtAddr(start),
                len,
                prot,
                file.clone(),
                offset,
                page_off + seg.filesz,
            )
        };
        result.map_err(Errno::from_vm)?;
        brk = brk.max(seg.map_end());
    }
    vm.init_brk(VirtAddr(brk)).map_err(Errno::from_vm)?;
    vm.map_stack(USER_STACK_TOP, USER_STACK_INITIAL)
        .map_err(Errno::from_vm)?;

    let (sp, image) = stack_image(&plan, path, argv, envp)?;
    uspace::write_bytes(&mut vm, sp, &image).map_err(|_| Errno::ENOMEM)?;

    let mut regs = [0; 32];
    regs[reg::SP] = sp;
    let frame = TrapFrame {
        regs,
        sstatus: initial_user_sstatus(),
        sepc: plan.entry,
    };

    // The point of no return: the other threads go, then the new space replaces the old
    // one, which is freed unless a `vfork` parent still runs in it.
    super::kill_other_threads(p)?;
    let mm = super::Mm::new(vm)?;
    let old = core::mem::replace(&mut *p.vm.lock(), mm);
    let running = super::sched::with_current(|c| c.is_some_and(|c| core::ptr::eq(c, &**p)));
    if running {
        p.activate_on_this_hart();
        if let Some(vm) = &*old.lock() {
            crate::memory::uspace::left(vm.mmu(), crate::smp::hart_id());
        }
        load_fp(&FpState::default());
    }
    super::release_mm(&old);
    drop(old);
    if let Some(parent) = p.thread.lock().vfork_parent.take() {
        super::sched::wake(&parent);
    }
    p.thread.lock().signals.altstack = Default::default();
    let cmdline = cmdline_of(argv);
    let mut inner = p.group.lock();
    inner.set_cmdline(cmdline);
    let name = path.rsplit('/').next().unwrap_or(path);
    inner.set_comm(name.as_bytes());
    // The program's own path, links resolved (what Linux's /proc/PID/exe shows); the
    // command name stays the name it was run by.
    inner.exe = String::from("/");
    inner.exe.push_str(node.path);
    inner.execed = true;
    inner.trampoline = 0;
    inner.signals.exec();
    Ok(frame)
}

/// The arguments as `/proc/PID/cmdline` shows them (each ending in a NUL), cut at
/// [`super::CMDLINE_MAX`] bytes; empty if there is no memory for them.
fn cmdline_of(argv: &[String]) -> Vec<u8> {
    let len: usize = argv.iter().map(|a| a.len() + 1).sum();
    let mut out = Vec::new();
    if out.try_reserve_exact(len.min(super::CMDLINE_MAX)).is_err() {
        return out;
    }
    for a in argv {
        let room = super::CMDLINE_MAX - out.len();
        let take = a.len().min(room);
        out.extend_from_slice(&a.as_bytes()[..take]);
        if out.len() < super::CMDLINE_MAX {
            out.push(0);
        }
    }
    out
}

/// Builds the initial stack below [`USER_STACK_TOP`]; returns the user `sp` and the bytes
/// from `sp` up to the top.
fn stack_image(
    plan: &elf::LoadPlan,
    path: &str,
    argv: &[String],
    envp: &[String],
) -> Result<(usize, Vec<u8>), Errno> {
    let top = USER_STACK_TOP.as_usize();
    // Strings area, growing down from the top: built back to front.
    let mut strings: Vec<u8> = Vec::new();
    let push_str = |s: &str, strings: &mut Vec<u8>| -> Result<usize, Errno> {
        strings
            .try_reserve(s.len() + 1)
            .map_err(|_| Errno::ENOMEM)?;
        strings.extend_from_slice(s.as_bytes());
        strings.push(0);
        Ok(strings.len())
    };
    // Built from the lowest byte up, as Linux lays it out from the top down.
    let mut random = [0u8; 16];
    crate::random::fill(&mut random);
    strings.try_reserve(16).map_err(|_| Errno::ENOMEM)?;
    strings.extend_from_slice(&random);
    let mut arg_ends = Vec::new();
    for a in argv {
        arg_ends.push(push_str(a, &mut strings)?);
    }
    let mut env_ends = Vec::new();
    for e in envp {
        env_ends.push(push_str(e, &mut strings)?);
    }
    let execfn_end = push_str(path, &mut strings)?;
    strings.try_reserve(8).map_err(|_| Errno::ENOMEM)?;
    strings.extend_from_slice(&[0; 8]);
    // The block ends just below `top`: a string whose bytes (with its NUL) end at offset
    // `end` of the block starts at block + end - len - 1.
    let total = strings.len();
    let block = top - total;
    let addr_of = |end: usize, len: usize| block + end - len - 1;
    let execfn = addr_of(execfn_end, path.len());
    let random_at = block;

    let auxv: [(usize, usize); 17] = [
        (at::PHDR, plan.phdr),
        (at::PHENT, 56),
        (at::PHNUM, plan.phnum),
        (at::PAGESZ, PAGE_SIZE),
        (at::BASE, 0),
        (at::FLAGS, 0),
        (at::ENTRY, plan.entry),
        (at::UID, 0),
        (at::EUID, 0),
        (at::GID, 0),
        (at::EGID, 0),
        (at::HWCAP, HWCAP_RV64GC),
        (at::CLKTCK, crate::timer::TICKS_PER_SECOND as usize),
        (at::SECURE, 0),
        (at::RANDOM, random_at),
        (at::EXECFN, execfn),
        (at::NULL, 0),
    ];
    let words = 1 + argv.len() + 1 + envp.len() + 1 + 2 * auxv.len();
    if total + words * 8 > MAX_ARG_BYTES {
        return Err(Errno::E2BIG);
    }
    let sp = align_down(block - words * 8, 16);
    let mut table: Vec<u8> = Vec::new();
    table.try_reserve(top - sp).map_err(|_| Errno::ENOMEM)?;
    let mut word = |v: usize| table.extend_from_slice(&v.to_le_bytes());
    word(argv.len());
    for (a, &end) in argv.iter().zip(&arg_ends) {
        word(addr_of(end, a.len()));
    }
    word(0);
    for (e, &end) in envp.iter().zip(&env_ends) {
        word(addr_of(end, e.len()));
    }
    word(0);
    for (k, v) in auxv {
        word(k);
        word(v);
    }
    table.resize(block - sp, 0);
    table.extend_from_slice(&strings);
    Ok((sp, table))
}
