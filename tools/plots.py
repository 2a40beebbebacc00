#!/usr/bin/env python3
"""Plots of `make bench`'s in-guest figures, drawn from the CSV files tools/bench.py
writes (DIR/guest-1hart.csv, guest-4harts.csv, swap.csv), as SVG files beside them:

    python3 tools/plots.py [DIR]        (default build/bench; tools/bench.py calls it)

  fork.svg     fork + exit + wait against the memory the process touched: pagoda,
               pagoda vm=eager and Linux 6.1
  faults.svg   the page-fault costs, pagoda beside Linux
  swap.svg     the swap phases, pagoda beside Linux: busy instructions, pages moved
  ratios.svg   pagoda / Linux for every cost both kernels gave

A figure missing from a CSV file (an empty cell) is left out of its plot, never drawn as
0; a plot with nothing to draw is not written (an old file of that name is removed).
Needs matplotlib (Debian's python3-matplotlib, installed by scripts/setup.sh). Prints the
files it wrote."""

import csv
import os
import re
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

# The same SVG text for the same figures (no date, fixed element ids), so the copies in
# docs/plots/ change only when the figures do; text stays text.
plt.rcParams.update({"svg.hashsalt": "pagoda-bench", "svg.fonttype": "none",
                     "font.size": 10, "axes.spines.top": False,
                     "axes.spines.right": False})
SVG_META = {"Date": None}
# One colour per kernel, in every plot.
COLOURS = {"pagoda": "#1f6fb4", "eager": "#e0802a", "Linux 6.1": "#3a9a3a",
           "broadcast": "#9467bd"}
LABELS = {"pagoda": "pagoda", "eager": "pagoda vm=eager", "Linux 6.1": "Linux 6.1"}
# What the benchmarks measure, for axis labels (the name is kept beneath).
WHAT = {
    "zero_write_fault": "demand-zero write",
    "zero_read_fault": "zero-page read",
    "cow_write_fault": "copy-on-write write",
    "swap_write": "write 2x RAM",
    "swap_read_seq": "read it back",
    "swap_random": "random reads",
    "swap_munmap": "munmap it",
}
FORK = re.compile(r"^fork_exit_wait_(\d+)M$")
SPINNERS = re.compile(r"_T\d+$")
PLOTS = ("fork", "faults", "swap", "ratios")


class Csv:
    """One table of tools/bench.py: one row per benchmark with its unit and every column
    (the kernels' figures, then the ratios `X/Y`); a missing figure is None."""

    def __init__(self, path):
        self.rows, self.kernels = {}, []
        if not os.path.exists(path):
            return
        with open(path, newline="") as f:
            reader = csv.reader(f)
            head = next(reader, None) or []
            columns = head[2:]
            self.kernels = [c for c in columns if "/" not in c]
            for row in reader:
                cells = dict(zip(columns, row[2:]))
                self.rows[row[0]] = dict(unit=row[1], **{
                    c: float(v) if v != "" else None for c, v in cells.items()})

    def get(self, name, column):
        return self.rows.get(name, {}).get(column)


def short(value, thousands=False):
    """A bar or point label: 4.28 M, 11,554 (135 k with `thousands`), 0.524."""
    if value >= 1e6:
        return f"{value / 1e6:.2f} M"
    if value >= 1e4 and thousands:
        return f"{value / 1e3:.0f} k"
    if value >= 10:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def axis_count(value, _pos=None):
    if value >= 1e6:
        return f"{value / 1e6:g} M"
    if value >= 1e3:
        return f"{value / 1e3:g} k"
    return f"{value:g}"


def save(fig, out_dir, name):
    path = os.path.join(out_dir, f"{name}.svg")
    fig.savefig(path, format="svg", metadata=SVG_META, bbox_inches="tight")
    plt.close(fig)
    return path


def fork_plot(t1):
    """fork + exit + wait against the MiB touched, one line per kernel, on linear axes
    (the slope is the cost per page) and on logarithmic ones (the small sizes)."""
    sizes = sorted((int(m.group(1)), n) for n in t1.rows if (m := FORK.match(n)))
    series = []
    for k in ("pagoda", "eager", "Linux 6.1"):
        points = [(mib, t1.get(n, k)) for mib, n in sizes if t1.get(n, k) is not None]
        if points:
            series.append((k, points))
    if not series:
        return None
    # At each size the lowest figure is labelled below its point, the others above.
    lowest = {mib: min(y for _, points in series for x, y in points if x == mib)
              for mib, _ in sizes}
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.4))
    for ax, log in zip(axes, (False, True)):
        for k, points in series:
            xs, ys = zip(*points)
            ax.plot(xs, ys, marker="o", color=COLOURS[k], label=LABELS[k])
            if log:
                for x, y in points:
                    ax.annotate(short(y, thousands=True), (x, y), textcoords="offset points",
                                xytext=(5, -11 if y == lowest[x] else 4), fontsize=7.5,
                                color=COLOURS[k])
        ax.set_xlabel("private memory touched before fork (MiB)")
        ax.grid(True, alpha=0.3)
        if log:
            ax.set_xscale("symlog", linthresh=1)
            ax.set_yscale("log")
            ax.set_xticks([mib for mib, _ in sizes])
            ax.set_title("logarithmic axes: the small sizes")
        else:
            ax.set_title("linear axes: the slope is the cost per page")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:g}"))
        ax.yaxis.set_major_formatter(FuncFormatter(axis_count))
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _p: ""))
    axes[0].set_ylabel("guest instructions per fork + exit + wait")
    axes[0].legend(frameon=False)
    fig.suptitle("fork + child exit + wait against process size (lower is better)")
    return fig


def bars(ax, groups, kernels, table, unit_label, labels=None):
    """Grouped bars: one group per benchmark in `groups`, one bar per kernel that gave a
    figure (a missing figure leaves a gap with `no figure` under it; a kernel without
    any figure here has no bars), the kernels' legend in a row above them."""
    kernels = [k for k in kernels if any(table.get(n, k) is not None for n in groups)]
    width = 0.8 / len(kernels)
    labelled, top = set(), 0
    for g, name in enumerate(groups):
        for i, k in enumerate(kernels):
            x = g + (i - (len(kernels) - 1) / 2) * width
            v = table.get(name, k)
            if v is None:
                ax.text(x, 0, "no\nfigure", ha="center", va="bottom", fontsize=7,
                        color="grey")
                continue
            ax.bar(x, v, width * 0.92, color=COLOURS[k],
                   label=None if k in labelled else LABELS.get(k, k))
            labelled.add(k)
            top = max(top, v)
            ax.annotate(short(v), (x, v), ha="center", va="bottom", fontsize=7.5,
                        textcoords="offset points", xytext=(0, 2))
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels(labels or [f"{WHAT.get(n, n)}\n{n}" for n in groups], fontsize=8.5)
    ax.set_ylabel(unit_label)
    ax.set_ylim(0, top * 1.22 or 1)
    ax.legend(frameon=False, loc="upper left", ncol=len(kernels))
    ax.yaxis.set_major_formatter(FuncFormatter(axis_count))
    ax.grid(True, axis="y", alpha=0.3)
    ax.set_axisbelow(True)


def faults_plot(t1):
    """The page-fault costs per fault, pagoda beside Linux (pagoda vm=eager takes no
    fault in these loops: its memory was populated by mmap)."""
    names = [n for n in ("zero_write_fault", "zero_read_fault", "cow_write_fault")
             if any(t1.get(n, k) is not None for k in ("pagoda", "Linux 6.1"))]
    if not names:
        return None
    fig, ax = plt.subplots(figsize=(7.5, 4.4))
    bars(ax, names, ["pagoda", "Linux 6.1"], t1, "guest instructions per fault")
    ax.set_title("Page faults: instructions per fault (lower is better)")
    return fig


def swap_plot(ts):
    """The swap phases: busy instructions per page (or touch), and the pages read and
    written per page (or touch)."""
    phases = [n for n in ("swap_write", "swap_read_seq", "swap_random", "swap_munmap")
              if any(ts.get(n, k) is not None for k in ts.kernels)]
    if not phases:
        return None
    kernels = [k for k in ("pagoda", "Linux 6.1") if k in ts.kernels]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.6),
                                      gridspec_kw={"width_ratios": [1, 1.2]})
    bars(left, phases, kernels, ts, "busy guest instructions per page")
    left.set_title("work: busy instructions (idle and iowait taken out)")
    # Pages moved: for every phase, pages read then pages written, per kernel (a pair
    # that no kernel moved a page in is left out).
    moved = Csv.__new__(Csv)
    moved.rows, groups, labels = {}, [], []
    for n in phases:
        for kind in ("in", "out"):
            key = f"{n}_pages_{kind}"
            if any(ts.get(key, k) for k in kernels):
                moved.rows[key] = ts.rows[key]
                groups.append(key)
                labels.append(f"{WHAT.get(n, n)}:\n{'read' if kind == 'in' else 'written'}")
    if groups:
        bars(right, groups, kernels, moved, "pages per page (or touch)", labels)
        right.set_title("disk traffic: pages read and written (none: left out)")
    else:
        right.set_visible(False)
    fig.suptitle("Swap, 256 MiB RAM, 1 GiB disk (lower is better)")
    return fig


def ratios_plot(tables):
    """pagoda / Linux for every benchmark measured in instructions that both gave, one
    bar each, below 1 where pagoda costs less. Not bench/threads' mprotect and munmap rows
    (`_T<n>`, n threads): with threads spinning on other harts, under -icount a hart
    waiting for another (a remote fence) counts the other harts' instructions until that
    hart's turn (they take turns on one host thread), and even with one thread Linux's
    figures there have been thousands of times pagoda's; as ratios they would flatten
    every other bar (guest-4harts.csv has them)."""
    rows = []
    for title, t in tables:
        for n, row in t.rows.items():
            r = row.get("pagoda/Linux")
            if r is not None and row["unit"] == "instructions" and not SPINNERS.search(n):
                rows.append((f"{n} ({title})" if title else n, r))
    if not rows:
        return None
    rows.reverse()
    fig, ax = plt.subplots(figsize=(7.5, 0.28 * len(rows) + 1.2))
    ys = range(len(rows))
    values = [r for _, r in rows]
    ax.barh(ys, values, color=[COLOURS["pagoda"] if r <= 1 else "#c0504d" for r in values],
            height=0.7)
    for y, r in zip(ys, values):
        ax.annotate(f"{r:.2f}x", (r, y), va="center", fontsize=7.5,
                    textcoords="offset points", xytext=(3, 0))
    ax.axvline(1, color="black", linewidth=0.8)
    ax.set_yticks(list(ys))
    ax.set_yticklabels([n for n, _ in rows], fontsize=8)
    ax.set_xlabel("pagoda / Linux 6.1, guest instructions (below 1: pagoda costs less)")
    ax.set_xlim(0, max(values + [1]) * 1.12)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:g}x"))
    ax.grid(True, axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    ax.set_title("pagoda against Linux 6.1 (lower is better)\n"
                 "every instruction count both gave, but the 4-hart mprotect/munmap _T<n> rows",
                 fontsize=10)
    return fig


def draw(out_dir):
    """Every plot the CSV files of `out_dir` have figures for; returns the paths written."""
    t1 = Csv(os.path.join(out_dir, "guest-1hart.csv"))
    t4 = Csv(os.path.join(out_dir, "guest-4harts.csv"))
    ts = Csv(os.path.join(out_dir, "swap.csv"))
    figures = {"fork": fork_plot(t1), "faults": faults_plot(t1), "swap": swap_plot(ts),
               "ratios": ratios_plot([("", t1), ("4 harts", t4), ("swap", ts)])}
    written = []
    for name in PLOTS:
        if figures[name] is not None:
            written.append(save(figures[name], out_dir, name))
        elif os.path.exists(os.path.join(out_dir, f"{name}.svg")):
            os.remove(os.path.join(out_dir, f"{name}.svg"))
    return written


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(__file__), "..", "build", "bench")
    print("\n".join(draw(out_dir)))


if __name__ == "__main__":
    main()
