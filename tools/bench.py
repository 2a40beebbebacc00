#!/usr/bin/env python3
"""`make bench`, in-guest part: pagoda's user benchmarks under `-icount shift=0,sleep=off
-smp 1 -m 512M`, where one guest nanosecond is one guest instruction, so the figures are
exact and repeatable instruction counts.

    tools/bench.py PAGODA_BIN [--linux IMAGE]

Three boots of the same QEMU machine with the same initramfs (build/initramfs.cpio),
whose /init runs `init bench all` from the kernel command line:
  - pagoda as it is (lazy: demand paging, copy-on-write fork);
  - pagoda with `vm=eager` (populate at map time, copy at fork, as the seed's kernel did);
  - with --linux, the reference Linux 6.1 (tools/linux/build.sh builds it; `make bench`
    passes build/linux/Image): the same static programs, timed the same way.
Prints the exact QEMU command lines, then one table: pagoda, eager, eager/pagoda, Linux,
pagoda/Linux for every benchmark any boot reported; a figure a boot did not give is `-`.
Exits non-zero if a pagoda boot does not finish; a failed Linux boot or program is
reported and leaves its column `-`."""

import argparse
import os
import re
import shlex
import sys

sys.path.insert(0, os.path.dirname(__file__))
import qemu  # noqa: E402

# Relative to the working directory, so the printed command lines are short.
INITRD = os.path.relpath(os.path.join(os.path.dirname(__file__), "..", "build",
                                      "initramfs.cpio"))
# The machine every boot gets: one hart, 512 MiB, instruction counting (one instruction
# per virtual nanosecond; sleep=off: an idle hart jumps to the next timer instead of
# waiting for real time, so the boots are fast and the counts host-independent).
MACHINE = dict(mem="512M", smp=1, initrd=INITRD, extra=("-icount", "shift=0,sleep=off"))
# The same on four harts, for the thread, signal, pipe and shootdown benchmarks.
MACHINE4 = dict(MACHINE, smp=4)
# The benchmarks of the one-hart boots, and of the four-hart boots.
SMP1_BENCHES = "fault fork mmap syscall"
SMP4_BENCHES = "threads"
# Swapping (issue 16): 256 MiB, one hart, a fresh 1 GiB mkswap disk per boot; the program
# turns swap on itself (pagoda boots with `swap=off`, Linux has no swap until then), and
# reports busy instructions (idle time taken out) and pages moved per operation.
SWAP_MACHINE = dict(MACHINE, mem="256M")
SWAP_BENCHES = "swap"
SWAP_MIB = 1024
# Figures that are counts per operation (pages, faults), printed with decimals.
PER_OP = ("_pages_in", "_pages_out", "_majflt")
BENCH_LINE = re.compile(r"^BENCH (\S+) ([\d.]+) \S+\r?$", re.M)
FAIL_LINE = re.compile(r"^TEST bench/\S+ FAIL.*$", re.M)


class Run:
    """One boot: its command line, its figures, and what went wrong (None if nothing)."""

    def __init__(self, label, kernel, append, machine=MACHINE, swap_mib=0):
        self.label = label
        disk = tuple(qemu.swap_args(f"SWAP-{swap_mib}MiB.img")) if swap_mib else ()
        self.cmd = qemu.command(kernel, append=append,
                                **dict(machine, extra=machine["extra"] + disk))
        b = qemu.boot(kernel, timeout=1800, append=append, swap_mib=swap_mib, **machine)
        self.output = b.output
        self.figures = {m.group(1): float(m.group(2))
                        for m in BENCH_LINE.finditer(b.output)}
        failures = [m.group(0).strip() for m in FAIL_LINE.finditer(b.output)]
        if b.timed_out:
            self.problem = "timed out"
        elif "BENCHES DONE" not in b.output:
            self.problem = f"QEMU exited ({b.status}) before BENCHES DONE"
        elif failures:
            self.problem = "; ".join(failures)
        else:
            self.problem = None


def fmt(value):
    return f"{value:,.0f}" if value is not None else "-"


def fmt_per_op(value):
    return f"{value:.3f}" if value is not None else "-"


def ratio(a, b):
    return f"{a / b:.2f}x" if a is not None and b else "-"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("kernel", help="pagoda's flat binary (build/pagoda.bin)")
    ap.add_argument("--linux", help="the reference Linux Image (build/linux/Image)")
    args = ap.parse_args()

    runs = [Run("pagoda", args.kernel, f"bench {SMP1_BENCHES}"),
            Run("eager", args.kernel, f"vm=eager bench {SMP1_BENCHES}")]
    if args.linux:
        # Linux hands the words it does not know to /init as argv (and `x=y` as envp),
        # as pagoda does. `norandmaps`: no address-space randomisation, as on pagoda
        # (QEMU puts a fresh rng-seed in the device tree at every boot, and the random
        # stack and mmap bases move Linux's counts by up to 6 % from boot to boot;
        # without them every count repeats exactly). `quiet` only shortens the log.
        runs.append(Run("Linux", args.linux, f"quiet norandmaps bench {SMP1_BENCHES}"))
    runs4 = [Run("pagoda-smp4", args.kernel, f"bench {SMP4_BENCHES}", MACHINE4),
             Run("broadcast-smp4", args.kernel, f"tlb=broadcast bench {SMP4_BENCHES}",
                 MACHINE4)]
    if args.linux:
        runs4.append(Run("Linux-smp4", args.linux, f"quiet norandmaps bench {SMP4_BENCHES}",
                         MACHINE4))

    runs_swap = [Run("pagoda-swap", args.kernel, f"swap=off bench {SWAP_BENCHES}",
                     SWAP_MACHINE, SWAP_MIB)]
    if args.linux:
        runs_swap.append(Run("Linux-swap", args.linux,
                             f"quiet norandmaps bench {SWAP_BENCHES}", SWAP_MACHINE,
                             SWAP_MIB))

    print("in-guest benchmarks: guest instructions per operation; QEMU command lines:")
    for r in runs + runs4 + runs_swap:
        print(f"  {r.label}: {shlex.join(r.cmd)}")
    bad = False
    for r in runs + runs4 + runs_swap:
        if r.problem:
            bad = bad or not r.label.startswith("Linux")
            print(f"bench: the {r.label} boot: {r.problem}; its last output:")
            print("\n".join("  | " + line for line in r.output[-3000:].splitlines()))
    pagoda, eager = runs[0].figures, runs[1].figures
    linux = runs[2].figures if len(runs) > 2 else {}
    names = list(pagoda) + [n for r in runs[1:] for n in r.figures if n not in pagoda]
    names = list(dict.fromkeys(names))

    print(f"{'benchmark':<22}{'pagoda':>12}{'eager':>12}{'eager/pagoda':>14}"
          f"{'Linux 6.1':>12}{'pagoda/Linux':>14}")
    for n in names:
        p, e, lx = pagoda.get(n), eager.get(n), linux.get(n)
        print(f"{n:<22}{fmt(p):>12}{fmt(e):>12}{ratio(e, p):>14}{fmt(lx):>12}"
              f"{ratio(p, lx):>14}")
    # Four harts: targeted shootdowns against broadcast ones and Linux (every hart's
    # instructions count: the spinning threads' too). `.remote`: flush requests per
    # operation, pagoda only.
    p4, b4 = runs4[0].figures, runs4[1].figures
    l4 = runs4[2].figures if len(runs4) > 2 else {}
    print(f"{'benchmark (4 harts)':<22}{'pagoda':>12}{'broadcast':>12}{'bcast/pagoda':>14}"
          f"{'Linux 6.1':>12}{'pagoda/Linux':>14}")
    for n in dict.fromkeys(list(p4) + list(b4) + list(l4)):
        p, b, lx = p4.get(n), b4.get(n), l4.get(n)
        pf = (lambda v: f"{v:.2f}" if v is not None else "-") if n.endswith(".remote") else fmt
        print(f"{n:<22}{pf(p):>12}{pf(b):>12}{ratio(b, p):>14}{pf(lx):>12}"
              f"{ratio(p, lx):>14}")
    # Swapping: busy instructions per page (or touch), and the pages moved per operation
    # (lower is better for all of them). SWAP-1024MiB.img above stands for a fresh disk
    # image formatted by mkswap (tools/qemu.py, swap_disk).
    ps = runs_swap[0].figures
    ls = runs_swap[1].figures if len(runs_swap) > 1 else {}
    print(f"{'swap (256M, 1 hart)':<26}{'pagoda':>12}{'Linux 6.1':>12}{'pagoda/Linux':>14}"
          "   (lower is better)")
    for n in dict.fromkeys(list(ps) + list(ls)):
        p, lx = ps.get(n), ls.get(n)
        f = fmt_per_op if n.endswith(PER_OP) else fmt
        print(f"{n:<26}{f(p):>12}{f(lx):>12}{ratio(p, lx):>14}")
    if bad:
        sys.exit("bench: a pagoda boot did not finish cleanly (above)")


if __name__ == "__main__":
    main()
