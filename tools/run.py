#!/usr/bin/env python3
"""`make run`: boot pagoda. On a terminal, interactively (Ctrl-A X quits QEMU);
otherwise run the demo/test list and power off, so it never waits for input."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import qemu  # noqa: E402


def main():
    kernel = sys.argv[1]
    interactive = sys.stdin.isatty()
    append = "ktest=all" if not interactive else ""
    cmd = qemu.command(kernel, mem="256M", smp=2, append=append)
    if not interactive:
        result = qemu.boot(kernel, timeout=120, mem="256M", smp=2, append=append)
        sys.stdout.write(result.output)
        if result.timed_out:
            print("run: timed out", file=sys.stderr)
            sys.exit(1)
        sys.exit(result.status)
    os.execvp(cmd[0], cmd)


if __name__ == "__main__":
    main()
