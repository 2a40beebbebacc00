#!/usr/bin/env python3
"""`make bench`, in-guest part: pagoda's user benchmarks under `-icount shift=0,sleep=off
-smp 1 -m 512M`, where one guest nanosecond is one guest instruction, so the figures are
exact and repeatable instruction counts.

    tools/bench.py PAGODA_BIN [--linux IMAGE] [--out DIR]
    tools/bench.py --replot DIR/runs.json [--out DIR]

Three boots of the same QEMU machine with the same initramfs (build/initramfs.cpio),
whose /init runs `init bench all` from the kernel command line:
  - pagoda as it is (lazy: demand paging, copy-on-write fork);
  - pagoda with `vm=eager` (populate at map time, copy at fork, as the seed's kernel did);
  - with --linux, the reference Linux 6.1 (tools/linux/build.sh builds it; `make bench`
    passes build/linux/Image): the same static programs, timed the same way.
Then the same on four harts (threads, signals, pipes, shootdowns: pagoda, pagoda with
`tlb=broadcast`, Linux) and on 256 MiB with a swap disk (pagoda, Linux).
Prints the exact QEMU command lines, then one table per machine: every benchmark any boot
reported, with its unit, each kernel's figure and their ratios; a figure a boot did not
give is `-`. Beside the tables it writes, into --out (default build/bench):
  runs.json     every boot: command line, exit status, its whole console output (with
                the date and `git describe` of the tree when the boots began);
  *.csv         each table (a missing figure is an empty cell, never 0);
  *.svg         plots of them (tools/plots.py, Debian's python3-matplotlib).
--replot reads a runs.json instead of booting and writes the tables, CSV files and plots
again (the figures are parsed anew from the saved console output).
Exits non-zero if a pagoda boot does not finish; a failed Linux boot or program is
reported and leaves its column `-`."""

import argparse
import csv
import datetime
import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
import qemu  # noqa: E402

ROOT = os.path.join(os.path.dirname(__file__), "..")
# Relative to the working directory, so the printed command lines are short.
INITRD = os.path.relpath(os.path.join(ROOT, "build", "initramfs.cpio"))
OUT_DIR = os.path.relpath(os.path.join(ROOT, "build", "bench"))
# The machine every boot gets: one hart, 512 MiB, instruction counting (one instruction
# per virtual nanosecond; sleep=off: an idle hart jumps to the next timer instead of
# waiting for real time, so the boots are fast and the counts host-independent).
MACHINE = dict(mem="512M", smp=1, initrd=INITRD, extra=("-icount", "shift=0,sleep=off"))
# The same on four harts, for the thread, signal, pipe and shootdown benchmarks.
MACHINE4 = dict(MACHINE, smp=4)
# The benchmarks of the one-hart boots, and of the four-hart boots.
SMP1_BENCHES = "fault fork mmap syscall thp"
# Huge pages only where a program asks (MADV_HUGEPAGE), on both kernels: the figures of
# the 4 KiB benchmarks stay comparable, and bench/thp asks per mapping.
PAGODA_THP = "thp=madvise"
LINUX_THP = "transparent_hugepage=madvise"
SMP4_BENCHES = "threads"
# Swapping (issue 16): 256 MiB, one hart, a fresh 1 GiB mkswap disk per boot; the program
# turns swap on itself (pagoda boots with `swap=off`, Linux has no swap until then), and
# reports busy instructions (idle time taken out) and pages moved per operation.
SWAP_MACHINE = dict(MACHINE, mem="256M")
SWAP_BENCHES = "swap"
SWAP_MIB = 1024
# `BENCH <name> <value> <unit>` (user/lib/bench.h; the unit is the program's own word:
# `ns` for bench_report's clock_gettime(CLOCK_MONOTONIC) times, `pages`, `faults`,
# `requests` for counts per operation).
BENCH_LINE = re.compile(r"^BENCH (\S+) ([\d.]+) (\S+)\r?$", re.M)
FAIL_LINE = re.compile(r"^TEST bench/\S+ FAIL.*$", re.M)
# Decimals a figure is printed with, by unit (counts per operation are fractions).
DECIMALS = {"instructions": 0, "ns": 1, "requests": 2, "pages": 3, "faults": 3}


def counts_instructions(machine):
    """Whether `machine` runs under `-icount shift=0`: guest time advances one
    nanosecond per instruction executed (on any hart)."""
    extra = list(machine["extra"])
    if "-icount" not in extra or extra.index("-icount") + 1 >= len(extra):
        return False
    return extra[extra.index("-icount") + 1].split(",")[0] == "shift=0"


def real_unit(unit, machine):
    """The unit a printed figure has on `machine`. The programs time with
    clock_gettime(CLOCK_MONOTONIC) and print `ns`: host wall-clock time when they run
    under qemu-riscv64 (tools/linux-check.sh --bench), but under `-icount shift=0` one
    guest nanosecond is one guest instruction (idle time aside, which sleep=off skips
    and bench/swap subtracts), so there those figures are instruction counts."""
    return "instructions" if unit == "ns" and counts_instructions(machine) else unit


class Run:
    """One boot: its command line, its figures with their units, and what went wrong
    (None if nothing). `Run(...)` boots; `Run.saved(record)` takes a boot of runs.json."""

    def __init__(self, label, kernel, append, machine=MACHINE, swap_mib=0):
        disk = tuple(qemu.swap_args(f"SWAP-{swap_mib}MiB.img")) if swap_mib else ()
        cmd = qemu.command(kernel, append=append,
                           **dict(machine, extra=machine["extra"] + disk))
        b = qemu.boot(kernel, timeout=1800, append=append, swap_mib=swap_mib, **machine)
        self._take(dict(label=label, kernel=kernel, append=append, machine=machine,
                        swap_mib=swap_mib, cmd=cmd, status=b.status, output=b.output))

    @classmethod
    def saved(cls, record):
        run = cls.__new__(cls)
        run._take(record)
        return run

    def _take(self, record):
        self.record = record
        self.label, self.cmd, self.output = record["label"], record["cmd"], record["output"]
        machine = record["machine"]
        self.figures, self.units = {}, {}
        for m in BENCH_LINE.finditer(self.output):
            self.figures[m.group(1)] = float(m.group(2))
            self.units[m.group(1)] = real_unit(m.group(3), machine)
        failures = [m.group(0).strip() for m in FAIL_LINE.finditer(self.output)]
        if record["status"] is None:
            self.problem = "timed out"
        elif "BENCHES DONE" not in self.output:
            self.problem = f"QEMU exited ({record['status']}) before BENCHES DONE"
        elif failures:
            self.problem = "; ".join(failures)
        else:
            self.problem = None


class Table:
    """One machine's figures: a column per boot (None: that boot was not made), ratio
    columns (numerator, denominator: indices of `runs`), one row per benchmark any boot
    reported. `key` names its CSV file (and the plots find it by that name)."""

    def __init__(self, key, title, runs, headings, ratios):
        self.key, self.title, self.runs, self.headings = key, title, runs, headings
        self.ratios = ratios  # [(heading, i, j)]: runs[i] / runs[j]
        names = [n for r in runs if r for n in r.figures]
        self.names = list(dict.fromkeys(names))

    def unit(self, name):
        units = dict.fromkeys(r.units[name] for r in self.runs if r and name in r.units)
        return "/".join(units) or "-"

    def value(self, i, name):
        run = self.runs[i]
        return run.figures.get(name) if run else None

    def ratio(self, name, i, j):
        a, b = self.value(i, name), self.value(j, name)
        if a is None or not b or "/" in self.unit(name):
            return None
        return a / b


def fmt(value, unit):
    return "-" if value is None else f"{value:,.{DECIMALS.get(unit, 1)}f}"


def fmt_ratio(value):
    return "-" if value is None else f"{value:.2f}x"


def print_table(t):
    w = max([22] + [len(n) + 2 for n in t.names])
    print(t.title)
    print(f"{'benchmark':<{w}}{'unit':<14}"
          + "".join(f"{h:>12}" for h in t.headings)
          + "".join(f"{h:>14}" for h, _, _ in t.ratios))
    for n in t.names:
        u = t.unit(n)
        print(f"{n:<{w}}{u:<14}"
              + "".join(f"{fmt(t.value(i, n), u):>12}" for i in range(len(t.runs)))
              + "".join(f"{fmt_ratio(t.ratio(n, i, j)):>14}" for _, i, j in t.ratios))
    if not t.names:
        print("(no boot of this table gave a figure)")


def write_csv(t, out_dir):
    """The table as build/bench/<key>.csv: the figures as the programs printed them,
    ratios to 4 decimals, an empty cell where there is no figure."""
    path = os.path.join(out_dir, f"{t.key}.csv")
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["benchmark", "unit"] + t.headings + [h for h, _, _ in t.ratios])
        for n in t.names:
            values = [t.value(i, n) for i in range(len(t.runs))]
            ratios = [t.ratio(n, i, j) for _, i, j in t.ratios]
            w.writerow([n, t.unit(n)] + ["" if v is None else repr(v) for v in values]
                       + ["" if r is None else f"{r:.4f}" for r in ratios])
    return path


def tables(runs, runs4, runs_swap):
    """The three tables of `make bench`. A run list is [pagoda, other pagoda, Linux] (the
    Linux entry missing without --linux)."""
    def pad(rs, n):
        return list(rs) + [None] * (n - len(rs))
    return [
        Table("guest-1hart", "1 hart, 512 MiB: guest instructions per operation, lower is better",
              pad(runs, 3), ["pagoda", "eager", "Linux 6.1"],
              [("eager/pagoda", 1, 0), ("pagoda/Linux", 0, 2)]),
        # Four harts: targeted shootdowns against broadcast ones and Linux (every hart's
        # instructions count: the spinning threads' too). `.remote`: flush requests per
        # operation, pagoda only.
        Table("guest-4harts", "4 harts, 512 MiB: instructions of all harts per operation"
              " (spinning threads' too), remote flush requests per operation (pagoda only),"
              " lower is better", pad(runs4, 3), ["pagoda", "broadcast", "Linux 6.1"],
              [("bcast/pagoda", 1, 0), ("pagoda/Linux", 0, 2)]),
        # Swapping: busy instructions per page (or touch), and the pages moved per
        # operation. SWAP-1024MiB.img in the command lines stands for a fresh disk image
        # formatted by mkswap (tools/qemu.py, swap_disk).
        Table("swap", "swap, 256 MiB, 1 hart: busy instructions (idle and iowait taken out)"
              " and pages moved, per page or touch, lower is better",
              pad(runs_swap, 2), ["pagoda", "Linux 6.1"], [("pagoda/Linux", 0, 1)]),
    ]


def draw_plots(out_dir):
    """tools/plots.py on the CSV files of `out_dir`, in this interpreter if it has
    matplotlib, else in Debian's /usr/bin/python3, where scripts/setup.sh installs
    python3-matplotlib (a python3 earlier in PATH, e.g. pyenv's, does not see it)."""
    here = os.path.dirname(os.path.abspath(__file__))
    if importlib.util.find_spec("matplotlib"):
        import plots
        return plots.draw(out_dir)
    debian = "/usr/bin/python3"
    if os.path.realpath(sys.executable) != os.path.realpath(debian) and os.path.exists(debian):
        r = subprocess.run([debian, os.path.join(here, "plots.py"), out_dir],
                           capture_output=True, text=True)
        if r.returncode == 0:
            return r.stdout.split()
        sys.stderr.write(r.stderr)
    print("bench: no plots: matplotlib is missing (scripts/setup.sh installs Debian's"
          " python3-matplotlib)")
    return []


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("kernel", nargs="?", help="pagoda's flat binary (build/pagoda.bin)")
    ap.add_argument("--linux", help="the reference Linux Image (build/linux/Image)")
    ap.add_argument("--out", default=OUT_DIR,
                    help=f"where runs.json, the CSV files and plots go (default {OUT_DIR})")
    ap.add_argument("--replot", metavar="FILE",
                    help="a runs.json of an earlier run: print and write everything from"
                    " it instead of booting")
    args = ap.parse_args()
    if not args.kernel and not args.replot:
        ap.error("give pagoda's binary, or --replot FILE")
    os.makedirs(args.out, exist_ok=True)

    if args.replot:
        with open(args.replot) as f:
            saved = json.load(f)
        print(f"bench: the boots of {args.replot} ({saved['date']}, pagoda"
              f" {saved['commit']})")
        groups = {g: [Run.saved(r) for r in saved["runs"][g]]
                  for g in ("smp1", "smp4", "swap")}
    else:
        # The tree's state when the boots start (the binaries were built from it).
        date, tree = datetime.datetime.now().isoformat(timespec="seconds"), commit()
        groups = boot_all(args.kernel, args.linux)
        path = os.path.join(args.out, "runs.json")
        with open(path, "w") as f:
            json.dump(dict(date=date, commit=tree, runs={g: [r.record for r in rs]
                                                         for g, rs in groups.items()}),
                      f, indent=1)
            f.write("\n")
    runs, runs4, runs_swap = groups["smp1"], groups["smp4"], groups["swap"]

    print("in-guest benchmarks; QEMU command lines:")
    for r in runs + runs4 + runs_swap:
        print(f"  {r.label}: {shlex.join(r.cmd)}")
    bad = False
    for r in runs + runs4 + runs_swap:
        if r.problem:
            bad = bad or not r.label.startswith("Linux")
            print(f"bench: the {r.label} boot: {r.problem}; its last output:")
            print("\n".join("  | " + line for line in r.output[-3000:].splitlines()))
    written = [] if args.replot else [os.path.join(args.out, "runs.json")]
    print("\nX/Y: the ratio of two columns; below 1.00x, X costs less")
    for t in tables(runs, runs4, runs_swap):
        print()
        print_table(t)
        written.append(write_csv(t, args.out))
    written += draw_plots(args.out)
    print(f"\nbench: wrote {', '.join(written)}")
    if bad:
        sys.exit("bench: a pagoda boot did not finish cleanly (above)")


def boot_all(kernel, linux):
    """Every boot of `make bench`, by machine: smp1, smp4, swap."""
    runs = [Run("pagoda", kernel, f"{PAGODA_THP} bench {SMP1_BENCHES}"),
            Run("eager", kernel, f"vm=eager {PAGODA_THP} bench {SMP1_BENCHES}")]
    if linux:
        # Linux hands the words it does not know to /init as argv (and `x=y` as envp),
        # as pagoda does. `norandmaps`: no address-space randomisation, as on pagoda
        # (QEMU puts a fresh rng-seed in the device tree at every boot, and the random
        # stack and mmap bases move Linux's counts by up to 6 % from boot to boot;
        # without them every count repeats exactly). `quiet` only shortens the log.
        runs.append(Run("Linux", linux,
                        f"quiet norandmaps {LINUX_THP} bench {SMP1_BENCHES}"))
    runs4 = [Run("pagoda-smp4", kernel, f"bench {SMP4_BENCHES}", MACHINE4),
             Run("broadcast-smp4", kernel, f"tlb=broadcast bench {SMP4_BENCHES}",
                 MACHINE4)]
    if linux:
        runs4.append(Run("Linux-smp4", linux, f"quiet norandmaps bench {SMP4_BENCHES}",
                         MACHINE4))
    runs_swap = [Run("pagoda-swap", kernel, f"swap=off bench {SWAP_BENCHES}",
                     SWAP_MACHINE, SWAP_MIB)]
    if linux:
        runs_swap.append(Run("Linux-swap", linux, f"quiet norandmaps bench {SWAP_BENCHES}",
                             SWAP_MACHINE, SWAP_MIB))
    return dict(smp1=runs, smp4=runs4, swap=runs_swap)


def commit():
    """The pagoda commit measured (`git describe --always --dirty` of this tree)."""
    r = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"],
                       capture_output=True, text=True)
    return r.stdout.strip() or "unknown"


if __name__ == "__main__":
    main()
