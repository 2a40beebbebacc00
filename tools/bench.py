#!/usr/bin/env python3
"""`make bench`, in-guest part: pagoda's user benchmarks under `-icount shift=0 -smp 1`,
where one guest nanosecond is one guest instruction, so the figures are exact and
repeatable instruction counts. Two boots of the same kernel and initramfs: the normal
(lazy) virtual memory and `vm=eager` (populate at map time, copy at fork, as the seed's
kernel did). Prints one table with the ratios and Linux 6.1's figures on the same QEMU
(from the issue tracker: measured with the same kind of static test program)."""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(__file__))
import qemu  # noqa: E402

INITRD = os.path.join(os.path.dirname(__file__), "..", "build", "initramfs.cpio")

# Linux 6.1 on QEMU 7.2 virt, instructions per operation.
LINUX = {
    "getpid": 198,
    "fork_exit_wait_0M": 110_000,
    "fork_exit_wait_1M": 184_000,
    "fork_exit_wait_16M": 1_260_000,
    "fork_exit_wait_64M": 4_700_000,
    "cow_write_fault": 3_907,
    "zero_write_fault": 2_289,
    "zero_read_fault": 807,
    "mmap_munmap_4K": 10_600,
    "mprotect_1M": 20_700,
}


def run(kernel, append):
    b = qemu.boot(kernel, timeout=1200, mem="512M", smp=1, initrd=INITRD, append=append,
                  extra=("-icount", "shift=0"))
    figures = {m.group(1): float(m.group(2))
               for m in re.finditer(r"^BENCH (\S+) ([\d.]+) ns", b.output, re.M)}
    if b.timed_out or "BENCHES DONE" not in b.output:
        sys.stdout.write(b.output[-3000:])
        sys.exit(f"bench: the {append!r} boot did not finish")
    return figures


def main():
    kernel = sys.argv[1]
    lazy = run(kernel, "bench all")
    eager = run(kernel, "vm=eager bench all")
    print("in-guest benchmarks: guest instructions per operation "
          "(qemu -icount shift=0 -smp 1 -m 512M)")
    print(f"{'benchmark':<22}{'pagoda':>12}{'eager':>12}{'eager/pagoda':>14}"
          f"{'Linux 6.1':>12}{'pagoda/Linux':>14}")
    for name, value in lazy.items():
        e = eager.get(name)
        linux = LINUX.get(name)
        ratio_e = f"{e / value:.2f}x" if e and value else "-"
        ratio_l = f"{value / linux:.2f}x" if linux else "-"
        print(f"{name:<22}{value:>12.0f}{(e or 0):>12.0f}{ratio_e:>14}"
              f"{(linux or 0):>12}{ratio_l:>14}")


if __name__ == "__main__":
    main()
