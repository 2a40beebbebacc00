//! Static ELF executables: validation and the load plan, with `xmas-elf` parsing.
//!
//! Every check happens before anything is mapped, and the parser is only let loose on
//! bytes whose bounds were checked first (xmas-elf indexes slices directly). A file that
//! is not a well-formed static riscv64 `ET_EXEC` whose loadable segments lie in the user
//! half, inside the file, without overlapping, gets `ENOEXEC`, never a kernel fault.

use alloc::vec::Vec;

use pagoda_mm::addr::{PAGE_SIZE, align_down, align_up};
use pagoda_mm::layout::USER_END;
use xmas_elf::ElfFile;
use xmas_elf::header::{Class, Data, Machine, Type};
use xmas_elf::program::Type as PType;

/// Why an executable is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElfError {
    /// Not a well-formed static riscv64 `ET_EXEC` fitting the user half (`ENOEXEC`).
    NotExecutable,
    /// No memory for the header copy or the segment list (`ENOMEM`).
    OutOfMemory,
}

/// Size of one 64-bit program header.
const PHDR_SIZE: usize = 56;
/// Most program headers accepted (Linux refuses more than 64 KiB of them).
const MAX_PHDRS: usize = 64;

/// `PF_X`, `PF_W`, `PF_R`.
const PF_X: u32 = 1;
const PF_W: u32 = 2;
const PF_R: u32 = 4;

/// One loadable segment.
#[derive(Clone, Copy, Debug)]
pub struct Segment {
    /// Virtual address of the first byte (not necessarily page aligned).
    pub vaddr: usize,
    /// Bytes in memory (≥ `filesz`; the rest is zero).
    pub memsz: usize,
    /// Bytes taken from the file.
    pub filesz: usize,
    /// File offset of the first byte (same page offset as `vaddr`).
    pub offset: usize,
    /// Readable.
    pub read: bool,
    /// Writable.
    pub write: bool,
    /// Executable.
    pub exec: bool,
}

impl Segment {
    /// Page-aligned start of the segment's mapping.
    pub fn map_start(&self) -> usize {
        align_down(self.vaddr, PAGE_SIZE)
    }

    /// Page-aligned end of the segment's mapping (checked not to overflow in `plan`).
    pub fn map_end(&self) -> usize {
        align_up(self.vaddr + self.memsz, PAGE_SIZE).unwrap_or(usize::MAX)
    }
}

/// What `execve` maps, decided before the old image is dropped.
#[derive(Debug)]
pub struct LoadPlan {
    /// Entry point.
    pub entry: usize,
    /// Loadable segments, sorted by address.
    pub segments: Vec<Segment>,
    /// Where the program headers appear in memory (for `AT_PHDR`), if they are loaded.
    pub phdr: usize,
    /// Number of program headers (`AT_PHNUM`).
    pub phnum: usize,
}

/// Size of the 64-bit ELF header.
const EHDR_SIZE: usize = 64;
/// Offsets of `e_phoff`, `e_phentsize` and `e_phnum` in the ELF header.
const E_PHOFF: usize = 32;
const E_PHNUM: usize = 56;

/// The ELF header and the program headers of `file` copied to an 8-byte aligned buffer,
/// the program headers right after the ELF header (the copy's `e_phoff` says 64): the
/// parser reads them in place as structs and requires that alignment, which neither a
/// file inside a cpio archive (4-byte aligned) nor an `e_phoff` that is not a multiple
/// of 8 gives (Linux reads the table wherever it is; such a table once made the parser
/// panic, found by `make fuzz-host`). Returns the copy and the file's own `e_phoff`.
fn aligned_headers(file: &[u8]) -> Result<(Vec<u64>, usize), ElfError> {
    let header = file.get(..EHDR_SIZE).ok_or(ElfError::NotExecutable)?;
    let word = |at: usize| u64::from_le_bytes(header[at..at + 8].try_into().unwrap_or_default());
    let half = |at: usize| usize::from(u16::from_le_bytes([header[at], header[at + 1]]));
    let phoff = usize::try_from(word(E_PHOFF)).map_err(|_| ElfError::NotExecutable)?;
    let table = half(E_PHNUM)
        .checked_mul(PHDR_SIZE)
        .and_then(|n| Some(phoff..n.checked_add(phoff)?))
        .and_then(|range| file.get(range))
        .ok_or(ElfError::NotExecutable)?;
    let mut bytes: Vec<u8> = Vec::new();
    bytes
        .try_reserve_exact(EHDR_SIZE + table.len())
        .map_err(|_| ElfError::OutOfMemory)?;
    bytes.extend_from_slice(header);
    bytes[E_PHOFF..E_PHOFF + 8].copy_from_slice(&(EHDR_SIZE as u64).to_le_bytes());
    bytes.extend_from_slice(table);
    let mut words: Vec<u64> = Vec::new();
    words
        .try_reserve_exact(bytes.len().div_ceil(8))
        .map_err(|_| ElfError::OutOfMemory)?;
    words.extend(bytes.chunks(8).map(|c| {
        let mut w = [0u8; 8];
        w[..c.len()].copy_from_slice(c);
        u64::from_le_bytes(w)
    }));
    Ok((words, phoff))
}

/// Validates `file` and returns what to map.
pub fn plan(file: &[u8]) -> Result<LoadPlan, ElfError> {
    let (words, phoff) = aligned_headers(file)?;
    let bytes = words.len() * 8;
    // SAFETY: a `u64` buffer viewed as its bytes (any bit pattern is a valid `u8`); the
    // view lives no longer than `words`.
    let headers = unsafe { core::slice::from_raw_parts(words.as_ptr().cast::<u8>(), bytes) };
    let elf = ElfFile::new(headers).map_err(|_| ElfError::NotExecutable)?;
    let h = &elf.header;
    if h.pt1.class() != Class::SixtyFour || h.pt1.data() != Data::LittleEndian {
        return Err(ElfError::NotExecutable);
    }
    let pt2 = &h.pt2;
    if pt2.type_().as_type() != Type::Executable || pt2.machine().as_machine() != Machine::RISC_V {
        return Err(ElfError::NotExecutable);
    }
    let phnum = pt2.ph_count() as usize;
    if pt2.ph_entry_size() as usize != PHDR_SIZE || phnum == 0 || phnum > MAX_PHDRS {
        return Err(ElfError::NotExecutable);
    }
    let ph_end = phnum
        .checked_mul(PHDR_SIZE)
        .and_then(|n| n.checked_add(phoff));
    if ph_end.is_none_or(|end| end > file.len()) {
        return Err(ElfError::NotExecutable);
    }

    let mut segments = Vec::new();
    let mut phdr = 0;
    for ph in elf.program_iter() {
        match ph.get_type() {
            Ok(PType::Load) => {}
            Ok(PType::Interp) | Ok(PType::Dynamic) => return Err(ElfError::NotExecutable),
            _ => continue,
        }
        let (vaddr, memsz) = (ph.virtual_addr() as usize, ph.mem_size() as usize);
        let (offset, filesz) = (ph.offset() as usize, ph.file_size() as usize);
        if memsz == 0 {
            continue;
        }
        let in_user = vaddr
            .checked_add(memsz)
            .is_some_and(|end| end <= USER_END.as_usize());
        let in_file = offset
            .checked_add(filesz)
            .is_some_and(|end| end <= file.len());
        if !in_user || !in_file || filesz > memsz || vaddr % PAGE_SIZE != offset % PAGE_SIZE {
            return Err(ElfError::NotExecutable);
        }
        let flags = ph.flags().0;
        let seg = Segment {
            vaddr,
            memsz,
            filesz,
            offset,
            read: flags & PF_R != 0,
            write: flags & PF_W != 0,
            exec: flags & PF_X != 0,
        };
        if offset <= phoff && ph_end.is_some_and(|e| e <= offset + filesz) {
            phdr = vaddr + (phoff - offset);
        }
        segments.try_reserve(1).map_err(|_| ElfError::OutOfMemory)?;
        segments.push(seg);
    }
    if segments.is_empty() {
        return Err(ElfError::NotExecutable);
    }
    segments.sort_unstable_by_key(|s| s.vaddr);
    if segments
        .windows(2)
        .any(|w| w[0].map_end() > w[1].map_start())
    {
        return Err(ElfError::NotExecutable);
    }
    let entry = pt2.entry_point() as usize;
    if !segments
        .iter()
        .any(|s| s.exec && s.vaddr <= entry && entry < s.vaddr + s.memsz)
    {
        return Err(ElfError::NotExecutable);
    }
    Ok(LoadPlan {
        entry,
        segments,
        phdr,
        phnum,
    })
}
