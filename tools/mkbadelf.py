#!/usr/bin/env python3
"""Crafted ELF files for the exec_badelf test: malformed or hostile executables that
execve must refuse with ENOEXEC (on pagoda) without the kernel faulting.

    tools/mkbadelf.py GOOD_ELF OUT_DIR     write every case into OUT_DIR (mode 0755)
    tools/mkbadelf.py --list               print the case names, one a line

GOOD_ELF is a static riscv64 ET_EXEC (the build uses the stripped /libexec/probe). Two
controls come out valid:

  good        an unmodified copy of GOOD_ELF (run as `good exit 0` by the test)
  good_tiny   the small base every bad case is made from: GOOD_ELF's ELF header, its
              first executable and first writable PT_LOAD (same addresses, flags and
              e_flags), and a three-instruction text, `li a0,0; li a7,94; ecall`
              (exit_group(0)); 2.4 KiB instead of the whole program

Every other case is good_tiny with exactly one defect, so that a loader which accepts
good_tiny and refuses the case refused it for that defect. Because the base exits 0 as
soon as it starts, a case that some loader does accept shows up as exit status 0.

Layout of good_tiny (offsets in the file):
    0      ELF header (64 bytes), e_phoff 64, e_entry = text start + STUB
    64     3 program headers: PT_LOAD text (R X, offset 0), PT_LOAD data (R W),
           PT_GNU_STACK
    232    STUB: the exit_group(0) instructions (end of the text segment's file bytes)
    256    room for a PT_INTERP string (used only by the `interp` case)
    D      data: 16 file bytes (D = data vaddr mod 4096), memsz 64

Output is a pure function of GOOD_ELF (no time stamps, no randomness).
"""

import os
import struct
import sys

PAGE = 4096
EHDR_SIZE = 64
PHDR_SIZE = 56

PT_NULL, PT_LOAD, PT_INTERP = 0, 1, 3
PT_GNU_STACK = 0x6474E551
PF_X, PF_W, PF_R = 1, 2, 4
ET_REL, ET_EXEC = 1, 2
EM_RISCV, EM_X86_64 = 243, 62

# Byte offsets in the ELF header.
E_IDENT_CLASS, E_IDENT_DATA = 4, 5
E_TYPE, E_MACHINE, E_ENTRY, E_PHOFF = 16, 18, 24, 32
E_SHOFF, E_PHENTSIZE, E_PHNUM, E_SHNUM, E_SHSTRNDX = 40, 54, 56, 60, 62

STUB_OFF = EHDR_SIZE + 3 * PHDR_SIZE  # 232
# li a0, 0 (addi a0, zero, 0); li a7, 94 (addi a7, zero, 94); ecall
STUB = struct.pack("<III", 0x00000513, 0x05E00893, 0x00000073)
INTERP_OFF = 256
INTERP = b"/lib/ld-linux-riscv64-lp64d.so.1\0"
DATA_FILESZ = 16
DATA_MEMSZ = 64

# Sv39: the user half ends at 2^38; the kernel half starts at 2^64 - 2^38.
USER_TOP = 0x40_0000_0000
KERNEL_HALF = 0xFFFF_FFC0_0000_0000


def fail(msg):
    sys.exit(f"mkbadelf: {msg}")


class Phdr:
    FMT = "<IIQQQQQQ"

    def __init__(self, type_, flags, offset, vaddr, filesz, memsz, align):
        self.type, self.flags, self.offset, self.vaddr = type_, flags, offset, vaddr
        self.filesz, self.memsz, self.align = filesz, memsz, align

    @classmethod
    def parse(cls, raw):
        t, f, off, va, _pa, fs, ms, al = struct.unpack(cls.FMT, raw)
        return cls(t, f, off, va, fs, ms, al)

    def pack(self):
        return struct.pack(self.FMT, self.type, self.flags, self.offset, self.vaddr,
                           self.vaddr, self.filesz, self.memsz, self.align)


class Base:
    """good_tiny as editable fields; build() lays it out."""

    def __init__(self, good):
        if len(good) < EHDR_SIZE or good[:4] != b"\x7fELF":
            fail("input is not an ELF file")
        if good[E_IDENT_CLASS] != 2 or good[E_IDENT_DATA] != 1:
            fail("input is not a 64-bit little-endian ELF file")
        etype, machine = struct.unpack_from("<HH", good, E_TYPE)
        if etype != ET_EXEC or machine != EM_RISCV:
            fail("input is not a riscv64 ET_EXEC")
        phoff, = struct.unpack_from("<Q", good, E_PHOFF)
        phentsize, phnum = struct.unpack_from("<HH", good, E_PHENTSIZE)
        if phentsize != PHDR_SIZE or phoff + phnum * PHDR_SIZE > len(good):
            fail("input's program headers are malformed")
        loads = [Phdr.parse(good[phoff + i * PHDR_SIZE:phoff + (i + 1) * PHDR_SIZE])
                 for i in range(phnum)]
        loads = [p for p in loads if p.type == PT_LOAD]
        text = next((p for p in loads if p.flags & PF_X), None)
        data = next((p for p in loads if p.flags & PF_W and not p.flags & PF_X), None)
        if text is None or data is None:
            fail("input lacks an executable and a writable PT_LOAD")
        text_start = text.vaddr - text.vaddr % PAGE
        data_page = data.vaddr - data.vaddr % PAGE
        if data_page < text_start + PAGE or data.vaddr % PAGE < INTERP_OFF + len(INTERP):
            fail("input's data segment is too close to its text or to its page start")
        self.ehdr = bytearray(good[:EHDR_SIZE])
        struct.pack_into("<Q", self.ehdr, E_ENTRY, text_start + STUB_OFF)
        struct.pack_into("<Q", self.ehdr, E_PHOFF, EHDR_SIZE)
        struct.pack_into("<Q", self.ehdr, E_SHOFF, 0)
        struct.pack_into("<HHHH", self.ehdr, E_PHENTSIZE, PHDR_SIZE, 3, 0, 0)
        text_end = STUB_OFF + len(STUB)
        self.text = Phdr(PT_LOAD, PF_R | PF_X, 0, text_start, text_end, text_end, PAGE)
        self.data = Phdr(PT_LOAD, PF_R | PF_W, data.vaddr % PAGE, data.vaddr,
                         DATA_FILESZ, DATA_MEMSZ, PAGE)
        self.stack = Phdr(PT_GNU_STACK, PF_R | PF_W, 0, 0, 0, 0, 16)
        # The file ends with the base's data bytes, whatever a case does to the headers.
        self.file_len = self.data.offset + DATA_FILESZ

    def set(self, fmt, at, value):
        struct.pack_into(fmt, self.ehdr, at, value)

    def build(self):
        out = bytearray(self.ehdr)
        for p in (self.text, self.data, self.stack):
            out += p.pack()
        out += STUB
        assert len(out) == STUB_OFF + len(STUB)
        out += bytes(INTERP_OFF - len(out)) + INTERP
        out += bytes(self.file_len - len(out))
        return bytes(out)


def case_list():
    """(name, edit) pairs in output order: edit(base) modifies a fresh Base in place,
    or returns the file's bytes itself."""
    def ehdr(fmt, at, value):
        return lambda b: b.set(fmt, at, value)

    def interp(b):
        b.stack = Phdr(PT_INTERP, PF_R, INTERP_OFF, 0, len(INTERP), len(INTERP), 1)

    def past_eof(b):
        # 8 KiB more than the file holds, and a bss tail whose zeroing touches a page
        # wholly past the end of the file.
        b.data.filesz = b.data.filesz + 2 * PAGE
        b.data.memsz = b.data.filesz + PAGE

    def filesz_gt_memsz(b):
        b.data.memsz = b.data.filesz // 2

    def kernel_half(b):
        b.data.vaddr = KERNEL_HALF + b.data.vaddr % PAGE

    def beyond_user_top(b):
        # Starts on the last user page, 8 KiB long: ends past 0x40_0000_0000.
        b.data.vaddr = USER_TOP - PAGE + b.data.vaddr % PAGE
        b.data.memsz = 2 * PAGE

    def memsz_wrap(b):
        # vaddr + memsz wraps around 2^64 (to 4096).
        b.data.memsz = (1 << 64) - b.data.vaddr + PAGE

    def memsz_huge(b):
        b.data.memsz = 1 << 62

    def overlap(b):
        # The data segment's bytes lie inside the text segment's (same page offsets).
        b.data.vaddr = b.text.vaddr + 16
        b.data.offset = 16

    def incongruent(b):
        b.data.offset -= 1

    def entry_in_data(b):
        b.set("<Q", E_ENTRY, b.data.vaddr)

    def entry_unmapped(b):
        b.set("<Q", E_ENTRY, b.text.vaddr - PAGE)

    def no_load(b):
        b.text.type = PT_NULL
        b.data.type = PT_NULL

    return [
        ("good_tiny", lambda b: None),
        ("trunc_ehdr", lambda b: b.build()[:10]),
        # Cut in the middle of the second program header.
        ("trunc_phdrs", lambda b: b.build()[:EHDR_SIZE + PHDR_SIZE + 28]),
        ("phoff_past_end", lambda b: b.set("<Q", E_PHOFF, len(b.build()) + PAGE)),
        ("phnum_huge", ehdr("<H", E_PHNUM, 0xFFFF)),
        ("phnum_zero", ehdr("<H", E_PHNUM, 0)),
        ("phentsize_bad", ehdr("<H", E_PHENTSIZE, 32)),
        ("machine_x86_64", ehdr("<H", E_MACHINE, EM_X86_64)),
        ("class32", ehdr("B", E_IDENT_CLASS, 1)),
        ("bigendian", ehdr("B", E_IDENT_DATA, 2)),
        ("type_rel", ehdr("<H", E_TYPE, ET_REL)),
        ("interp", interp),
        ("load_past_eof", past_eof),
        ("filesz_gt_memsz", filesz_gt_memsz),
        ("vaddr_kernel_half", kernel_half),
        ("beyond_user_top", beyond_user_top),
        ("memsz_wrap", memsz_wrap),
        ("memsz_huge", memsz_huge),
        ("overlap", overlap),
        ("incongruent", incongruent),
        ("entry_in_data", entry_in_data),
        ("entry_unmapped", entry_unmapped),
        ("no_load", no_load),
    ]


def make_cases(good):
    out = {"good": good}
    for name, edit in case_list():
        b = Base(good)
        content = edit(b)
        out[name] = b.build() if content is None else content
    return out


def names():
    return ["good"] + [n for n, _ in case_list()]


def main(argv):
    if argv[1:] == ["--list"]:
        print("\n".join(names()))
        return
    if len(argv) != 3:
        sys.exit(__doc__.split("\n\n")[1])
    with open(argv[1], "rb") as f:
        good = f.read()
    os.makedirs(argv[2], exist_ok=True)
    for name, content in make_cases(good).items():
        path = os.path.join(argv[2], name)
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(content)
        os.chmod(tmp, 0o755)
        os.replace(tmp, path)


if __name__ == "__main__":
    main(sys.argv)
