#!/usr/bin/env python3
"""`make run`: boot pagoda. On a terminal, interactively into BusyBox's ash: the console
is QEMU's stdio multiplexed (Ctrl-A X quits QEMU, Ctrl-A H lists the other keys) with
signals off, so Ctrl-C reaches pagoda's terminal (SIGINT for the foreground job) instead
of killing QEMU. Otherwise run the demo script and power off, so it never waits for
input."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import qemu  # noqa: E402


def main():
    kernel = sys.argv[1]
    interactive = sys.stdin.isatty()
    initrd = os.path.join(os.path.dirname(__file__), "..", "build", "initramfs.cpio")
    append = "demo" if not interactive else "shell"
    # A 1 GiB swap disk (docs/swap.md), formatted by mkswap once and kept in build/.
    swap = os.path.join(os.path.dirname(__file__), "..", "build", "swap.img")
    if not os.path.exists(swap):
        qemu.make_swap_image(swap, 1024)
    cmd = qemu.command(kernel, mem="256M", smp=2, append=append, initrd=initrd,
                       extra=tuple(qemu.INTERACTIVE_CONSOLE) + tuple(qemu.swap_args(swap)))
    if not interactive:
        result = qemu.boot(kernel, timeout=120, mem="256M", smp=2, append=append,
                           initrd=initrd, extra=qemu.swap_args(swap))
        sys.stdout.write(result.output)
        if result.timed_out:
            print("run: timed out", file=sys.stderr)
            sys.exit(1)
        sys.exit(result.status)
    os.execvp(cmd[0], cmd)


if __name__ == "__main__":
    main()
