#!/usr/bin/env python3
"""Counts the guest instructions one kernel function (or one trap) executes, per function,
by single-stepping pagoda under QEMU with gdb: the tool behind PERFORMANCE.md's
per-function comparisons (session 10).

    python3 tools/insn-profile.py build/pagoda.bin target/.../pagoda APPEND \
        --func SYMBOL_OR_*ADDRESS [--skip N] [--out FILE]
    python3 tools/insn-profile.py ... --trap SCAUSE [--skip N]

`--func`: stops at the function's (N+1)-th entry (a hardware breakpoint) and steps until
it returns to its caller; `--trap`: stops at the (N+1)-th `trap_entry` with that scause
(13 load page fault, 15 store page fault, 8 system call) and steps to the `sret`. Prints
the total, the instructions per function (inlined code counts for the function the
debug info names) and, in --out, the sequence. QEMU runs without `-icount` (gdb
single-stepping hangs with it); the counts are the same instructions `make bench`
counts. Needs gdb-multiarch; steps about 1,000 instructions a second.
"""
import argparse
import collections
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import qemu  # noqa: E402

GDB_SCRIPT = r'''
import gdb, collections, os
mode, target, skip, out = os.environ["P_MODE"], os.environ["P_TARGET"], int(os.environ["P_SKIP"]), os.environ["P_OUT"]
gdb.execute("set pagination off")
gdb.execute("target remote :" + os.environ["P_PORT"])
if mode == "func":
    bp = gdb.Breakpoint(target, type=gdb.BP_HARDWARE_BREAKPOINT)
else:
    bp = gdb.Breakpoint("*trap_entry", type=gdb.BP_HARDWARE_BREAKPOINT)
    bp.condition = "$scause == " + target
bp.ignore_count = skip
gdb.execute("continue")
bp.enabled = False
ra = int(gdb.parse_and_eval("$ra")) & 0xffffffffffffffff
sp0 = int(gdb.parse_and_eval("$sp")) & 0xffffffffffffffff
counts, seq, names, n = collections.Counter(), [], {}, 0
def name_of(pc):
    if pc not in names:
        b, fn = gdb.block_for_pc(pc), None
        while b is not None and fn is None:
            fn, b = b.function, b.superblock
        names[pc] = fn.print_name if fn else "?"
    return names[pc]
while True:
    pc = int(gdb.parse_and_eval("$pc")) & 0xffffffffffffffff
    if mode == "func":
        if pc == ra and (int(gdb.parse_and_eval("$sp")) & 0xffffffffffffffff) >= sp0:
            break
    elif pc < 0x4000000000 or int.from_bytes(bytes(gdb.selected_inferior().read_memory(pc, 4)), "little") == 0x10200073:
        n += 1
        break
    nm = name_of(pc)
    counts[nm] += 1
    n += 1
    if not seq or seq[-1][0] != nm:
        seq.append([nm, 0])
    seq[-1][1] += 1
    gdb.execute("stepi", to_string=True)
with open(out, "w") as fh:
    fh.write(f"total {n}\n")
    for k, v in counts.most_common():
        fh.write(f"{v:7d} {k}\n")
    fh.write("\nsequence:\n")
    for k, v in seq:
        fh.write(f"{v:7d} {k}\n")
gdb.execute("kill")
'''


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("kernel", help="the image QEMU boots (build/pagoda.bin)")
    ap.add_argument("elf", help="the same kernel's ELF, for symbols")
    ap.add_argument("append", help="the kernel command line, e.g. 'bench fork'")
    what = ap.add_mutually_exclusive_group(required=True)
    what.add_argument("--func", help="a symbol, or *ADDRESS")
    what.add_argument("--trap", help="an scause value")
    ap.add_argument("--skip", type=int, default=0, help="entries to let pass first")
    ap.add_argument("--out", default=None, help="where the full report goes")
    ap.add_argument("--mem", default="512M")
    ap.add_argument("--initrd", default=os.path.join(HERE, "..", "build", "initramfs.cpio"))
    ap.add_argument("--port", default="1234")
    args = ap.parse_args()
    out = args.out or tempfile.mktemp(prefix="insn-profile-", suffix=".txt")
    cmd = qemu.command(args.kernel, mem=args.mem, smp=1, append=args.append,
                       initrd=args.initrd, extra=("-gdb", f"tcp::{args.port}", "-S"))
    env = dict(os.environ, P_MODE="func" if args.func else "trap",
               P_TARGET=args.func or args.trap, P_SKIP=str(args.skip), P_OUT=out,
               P_PORT=args.port)
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as script:
        script.write(GDB_SCRIPT)
    vm = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
    try:
        time.sleep(1)
        subprocess.run(["gdb-multiarch", "--batch", "-x", script.name, args.elf], env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    finally:
        vm.kill()
        vm.wait()
        os.unlink(script.name)
    if not os.path.exists(out):
        sys.exit("insn-profile: gdb wrote no report (symbol not hit, or gdb failed)")
    with open(out) as fh:
        report = fh.read()
    print(report.split("\nsequence:")[0])
    print(f"(full report with the sequence: {out})")


if __name__ == "__main__":
    main()
