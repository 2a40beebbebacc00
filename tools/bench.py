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
BENCH_LINE = re.compile(r"^BENCH (\S+) ([\d.]+) ns\r?$", re.M)
FAIL_LINE = re.compile(r"^TEST bench/\S+ FAIL.*$", re.M)


class Run:
    """One boot: its command line, its figures, and what went wrong (None if nothing)."""

    def __init__(self, label, kernel, append):
        self.label = label
        self.cmd = qemu.command(kernel, append=append, **MACHINE)
        b = qemu.boot(kernel, timeout=1800, append=append, **MACHINE)
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


def ratio(a, b):
    return f"{a / b:.2f}x" if a is not None and b else "-"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("kernel", help="pagoda's flat binary (build/pagoda.bin)")
    ap.add_argument("--linux", help="the reference Linux Image (build/linux/Image)")
    args = ap.parse_args()

    runs = [Run("pagoda", args.kernel, "bench all"),
            Run("eager", args.kernel, "vm=eager bench all")]
    if args.linux:
        # Linux hands the words it does not know to /init as argv (and `x=y` as envp),
        # as pagoda does. `norandmaps`: no address-space randomisation, as on pagoda
        # (QEMU puts a fresh rng-seed in the device tree at every boot, and the random
        # stack and mmap bases move Linux's counts by up to 6 % from boot to boot;
        # without them every count repeats exactly). `quiet` only shortens the log.
        runs.append(Run("Linux", args.linux, "quiet norandmaps bench all"))

    print("in-guest benchmarks: guest instructions per operation; QEMU command lines:")
    for r in runs:
        print(f"  {r.label}: {shlex.join(r.cmd)}")
    bad = False
    for r in runs:
        if r.problem:
            bad = bad or r.label != "Linux"
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
    if bad:
        sys.exit("bench: a pagoda boot did not finish cleanly (above)")


if __name__ == "__main__":
    main()
