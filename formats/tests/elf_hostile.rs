//! The ELF load plan against hostile executables: every malformed, truncated,
//! overflowing or overlapping file is refused, none panics, and a file at any alignment
//! reads the same.

use pagoda_formats::elf::{ElfError, plan};
use pagoda_mm::layout::USER_END;

const PT_LOAD: u32 = 1;
const PT_INTERP: u32 = 3;
const PF_X: u32 = 1;
const PF_W: u32 = 2;
const PF_R: u32 = 4;

/// One program header: (type, flags, offset, vaddr, filesz, memsz).
type Ph = (u32, u32, u64, u64, u64, u64);

/// A 64-bit little-endian riscv64 `ET_EXEC` with `phs` right after the ELF header, and
/// `len` bytes in all (zeros after the headers).
fn elf(entry: u64, phs: &[Ph], len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len.max(64 + 56 * phs.len())];
    f[..4].copy_from_slice(b"\x7fELF");
    f[4] = 2; // ELFCLASS64
    f[5] = 1; // little endian
    f[6] = 1; // EV_CURRENT
    f[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    f[18..20].copy_from_slice(&243u16.to_le_bytes()); // EM_RISCV
    f[20..24].copy_from_slice(&1u32.to_le_bytes());
    f[24..32].copy_from_slice(&entry.to_le_bytes());
    f[32..40].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
    f[52..54].copy_from_slice(&64u16.to_le_bytes()); // e_ehsize
    f[54..56].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
    f[56..58].copy_from_slice(&(phs.len() as u16).to_le_bytes());
    for (i, &(ty, flags, offset, vaddr, filesz, memsz)) in phs.iter().enumerate() {
        let p = &mut f[64 + 56 * i..64 + 56 * (i + 1)];
        p[0..4].copy_from_slice(&ty.to_le_bytes());
        p[4..8].copy_from_slice(&flags.to_le_bytes());
        p[8..16].copy_from_slice(&offset.to_le_bytes());
        p[16..24].copy_from_slice(&vaddr.to_le_bytes());
        p[24..32].copy_from_slice(&vaddr.to_le_bytes());
        p[32..40].copy_from_slice(&filesz.to_le_bytes());
        p[40..48].copy_from_slice(&memsz.to_le_bytes());
        p[48..56].copy_from_slice(&4096u64.to_le_bytes());
    }
    f
}

/// Text at 0x10000 (the whole 8 KiB file, headers included), data and bss at 0x12000.
fn good() -> Vec<u8> {
    elf(
        0x10080,
        &[
            (PT_LOAD, PF_R | PF_X, 0, 0x10000, 0x1000, 0x1000),
            (PT_LOAD, PF_R | PF_W, 0x1000, 0x12000, 0x800, 0x3000),
        ],
        0x2000,
    )
}

fn refused(f: &[u8]) -> bool {
    matches!(plan(f), Err(ElfError::NotExecutable))
}

#[test]
fn a_well_formed_executable_gives_its_plan() {
    let p = plan(&good()).unwrap();
    assert_eq!(p.entry, 0x10080);
    assert_eq!(p.phnum, 2);
    assert_eq!(p.phdr, 0x10040);
    assert_eq!(p.segments.len(), 2);
    let (t, d) = (&p.segments[0], &p.segments[1]);
    assert!(t.read && t.exec && !t.write);
    assert!(d.read && d.write && !d.exec);
    assert_eq!((d.map_start(), d.map_end()), (0x12000, 0x15000));
}

#[test]
fn every_truncation_is_refused_without_a_panic() {
    let f = good();
    // The data segment's file bytes end at 0x1800; the rest is padding.
    for len in 0..0x1800 {
        let r = plan(&f[..len]);
        assert!(r.is_err(), "truncated to {len} bytes and accepted");
    }
}

/// Regression (found by `make fuzz-host`): a program-header table at an offset that is
/// not a multiple of 8 made the parser panic on a misaligned read. Linux reads the table
/// wherever it is: so does `plan`, with the same result.
#[test]
fn program_headers_at_any_offset_read_the_same() {
    let f = good();
    let want = plan(&f).unwrap();
    for phoff in [65usize, 66, 68, 71, 72, 0x100 + 4] {
        let mut g = f.clone();
        // Move the table: zero the old place, copy it to `phoff`, point e_phoff there.
        let table: Vec<u8> = f[64..64 + 2 * 56].to_vec();
        g[64..64 + 2 * 56].fill(0);
        g[phoff..phoff + table.len()].copy_from_slice(&table);
        g[32..40].copy_from_slice(&(phoff as u64).to_le_bytes());
        let got = plan(&g).unwrap_or_else(|e| panic!("phoff {phoff}: {e:?}"));
        let shape = |p: &pagoda_formats::elf::LoadPlan| {
            p.segments
                .iter()
                .map(|s| (s.vaddr, s.memsz, s.filesz, s.offset, s.write, s.exec))
                .collect::<Vec<_>>()
        };
        assert_eq!(shape(&got), shape(&want), "phoff {phoff}");
        assert_eq!(got.phdr, 0x10000 + phoff, "AT_PHDR follows the table");
    }
    // The fuzzer's input, minimised: e_phoff 4, one program header (inside the ELF
    // header), refused without a panic.
    let mut tiny = vec![0u8; 64];
    tiny[..16].copy_from_slice(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
    tiny[16..20].copy_from_slice(&[2, 0, 0xf3, 0]);
    tiny[32..40].copy_from_slice(&4u64.to_le_bytes());
    tiny[54..58].copy_from_slice(&[56, 0, 1, 0]);
    assert!(refused(&tiny));
}

#[test]
fn any_alignment_of_the_file_reads_the_same() {
    let f = good();
    for shift in 1..8 {
        let mut buf = vec![0u8; f.len() + shift];
        buf[shift..].copy_from_slice(&f);
        assert_eq!(
            plan(&buf[shift..]).unwrap().segments.len(),
            2,
            "shift {shift}"
        );
    }
}

#[test]
fn overflowing_offsets_and_sizes_are_refused() {
    let max = u64::MAX;
    let user_end = USER_END.as_usize() as u64;
    for ph in [
        (PT_LOAD, PF_R | PF_X, max - 10, 0x10000, 0x100, 0x100),
        (PT_LOAD, PF_R | PF_X, 0, 0x10000, max, max),
        (PT_LOAD, PF_R | PF_X, 0, max - 0xfff, 0x100, 0x1000),
        (PT_LOAD, PF_R | PF_X, 0, user_end - 0x1000, 0x100, 0x2000),
        (PT_LOAD, PF_R | PF_X, 0, 0x10000, 0x3000, 0x3000), // past the end of the file
        (PT_LOAD, PF_R | PF_X, 0, 0x10000, 0x200, 0x100),   // filesz > memsz
        (PT_LOAD, PF_R | PF_X, 0x10, 0x10000, 0x100, 0x100), // page offsets differ
    ] {
        assert!(refused(&elf(0x10000, &[ph], 0x2000)), "accepted {ph:x?}");
    }
    // A program-header table that runs off the file, or whose offset overflows.
    let mut f = good();
    f[32..40].copy_from_slice(&(u64::MAX - 8).to_le_bytes());
    assert!(refused(&f));
    let mut f = good();
    f[32..40].copy_from_slice(&0x1fd0u64.to_le_bytes());
    assert!(refused(&f));
}

#[test]
fn huge_and_zero_counts_are_refused() {
    for phnum in [0u16, 65, 0xffff] {
        let mut f = good();
        f.resize(64 + 56 * 0xffff + 64, 0);
        f[56..58].copy_from_slice(&phnum.to_le_bytes());
        assert!(refused(&f), "{phnum} program headers accepted");
    }
    let mut f = good();
    f[54..56].copy_from_slice(&32u16.to_le_bytes()); // e_phentsize of a 32-bit file
    assert!(refused(&f));
}

#[test]
fn overlapping_segments_are_refused() {
    // (vaddr, memsz) of a second segment against text at [0x10000, 0x11000): the same
    // page, inside it, reaching into it from below, sharing its last page.
    for (second, memsz) in [
        (0x10000u64, 0x10),
        (0x10800, 0x10),
        (0xf000, 0x1001),
        (0x10fff, 1),
    ] {
        let f = elf(
            0x10080,
            &[
                (PT_LOAD, PF_R | PF_X, 0, 0x10000, 0x1000, 0x1000),
                (
                    PT_LOAD,
                    PF_R | PF_W,
                    0x1000 + (second & 0xfff),
                    second,
                    0x1,
                    memsz,
                ),
            ],
            0x3000,
        );
        assert!(refused(&f), "overlap at {second:#x} accepted");
    }
}

#[test]
fn zero_sized_segments_are_ignored_but_a_file_of_only_them_is_refused() {
    let only_empty = elf(0x10000, &[(PT_LOAD, PF_R | PF_X, 0, 0x10000, 0, 0)], 0x1000);
    assert!(refused(&only_empty));
    let with_empty = elf(
        0x10080,
        &[
            (PT_LOAD, PF_R | PF_X, 0, 0x10000, 0x1000, 0x1000),
            (PT_LOAD, PF_R, 0, 0x10000, 0, 0),
        ],
        0x1000,
    );
    assert_eq!(plan(&with_empty).unwrap().segments.len(), 1);
}

#[test]
fn wrong_kinds_of_file_are_refused() {
    let text = (PT_LOAD, PF_R | PF_X, 0, 0x10000, 0x1000, 0x1000);
    let interp = elf(
        0x10080,
        &[text, (PT_INTERP, PF_R, 0x100, 0x10100, 0x10, 0x10)],
        0x1000,
    );
    assert!(refused(&interp), "a dynamically linked file");
    let outside = elf(0x20000, &[text], 0x1000);
    assert!(refused(&outside), "an entry outside every segment");
    let not_exec = elf(
        0x10080,
        &[(PT_LOAD, PF_R, 0, 0x10000, 0x1000, 0x1000)],
        0x1000,
    );
    assert!(
        refused(&not_exec),
        "an entry in a segment that is not executable"
    );
    for (at, value) in [(4, 1u8), (5, 2), (16, 3), (18, 62), (0, 0)] {
        let mut f = good();
        f[at] = value;
        assert!(refused(&f), "byte {at} = {value} accepted");
    }
}
