#!/usr/bin/env python3
"""`make test`: every test pagoda has, folded into one total.

Suites: lints; host tests of pagoda-mm (unit, property, boundary, stress); in-QEMU boots
on several machine shapes running the in-kernel tests; the user test programs under
Linux user-mode emulation (qemu-riscv64), which proves them right against Linux; boots with broken device trees and
a deliberate panic, which must end with a clear message and a failure status, never a
hang. Each result is one line `TEST <suite>/<name> PASS|FAIL [why]`; the last line is
`N passed, N failed`, and the exit status is non-zero when anything failed.
"""

import argparse
import os
import random
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
import qemu  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, RUSTC_BOOTSTRAP="1")
BOOT_TIMEOUT = 90


class Tally:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def record(self, name, ok, why=""):
        if ok:
            self.passed += 1
            print(f"TEST {name} PASS", flush=True)
        else:
            self.failed += 1
            print(f"TEST {name} FAIL {why}".rstrip(), flush=True)


def run(cmd, **kw):
    return subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, **kw)


def lints(t: Tally):
    checks = {
        "fmt": ["cargo", "fmt", "--all", "--check"],
        "clippy-mm": ["cargo", "clippy", "-p", "pagoda-mm", "--all-targets", "--quiet",
                      "--", "-D", "warnings"],
        "clippy-formats": ["cargo", "clippy", "-p", "pagoda-formats", "--all-targets",
                           "--quiet", "--", "-D", "warnings"],
        "clippy-kernel": ["cargo", "clippy", "-p", "pagoda-kernel", "--release", "--target",
                          "riscv64gc-unknown-none-elf", "-Z", "build-std=core,alloc",
                          "--quiet", "--", "-D", "warnings"],
    }
    for name, cmd in checks.items():
        r = run(cmd)
        if r.returncode != 0:
            sys.stdout.write(r.stdout[-4000:] + r.stderr[-4000:])
        t.record(f"lint/{name}", r.returncode == 0, "see output above")


def host_tests(t: Tally):
    r = run(["cargo", "test", "-p", "pagoda-mm", "-p", "pagoda-formats", "--release", "--",
             "--test-threads=2"])
    out = r.stdout + r.stderr
    names = re.findall(r"^test (\S+) \.\.\. (ok|FAILED)$", out, re.M)
    for name, status in names:
        if status != "ok":
            t.record(f"host/{name}", False)
    ok = sum(1 for _, s in names if s == "ok")
    t.passed += ok
    print(f"host: {ok} pagoda-mm and pagoda-formats tests passed", flush=True)
    if r.returncode != 0 and all(s == "ok" for _, s in names):
        sys.stdout.write(out[-6000:])
        t.record("host/cargo-test", False, f"cargo test exited {r.returncode}")


def kernel_lines(t: Tally, prefix, out):
    """Folds the TEST lines a boot printed into the tally."""
    found = 0
    for m in re.finditer(r"^TEST (\S+) (PASS|FAIL)(.*)$", out, re.M):
        found += 1
        t.record(f"{prefix}{m.group(1)}", m.group(2) == "PASS", m.group(3).strip())
    return found


def summary_of(out):
    ram = re.search(r"^pagoda: RAM (\d+) MiB", out, re.M)
    harts = re.search(r"^pagoda: harts (\d+) \((\d+) online\)", out, re.M)
    return (int(ram.group(1)) if ram else None,
            (int(harts.group(1)), int(harts.group(2))) if harts else None)


def shapes(t: Tally, kernel):
    for mem, mib in (("128M", 128), ("1G", 1024), ("4G", 4096)):
        for smp in (1, 4):
            shape = f"m{mem}-smp{smp}"
            b = qemu.boot(kernel, timeout=BOOT_TIMEOUT, mem=mem, smp=smp, append="ktest=all")
            n = kernel_lines(t, f"{shape}/", b.output)
            ram, harts = summary_of(b.output)
            ok = (not b.timed_out and b.status == 0 and n > 0 and ram == mib
                  and harts == (smp, smp))
            why = "" if ok else (f"timeout" if b.timed_out else
                                 f"status {b.status}, RAM {ram} MiB, harts {harts}, {n} tests")
            if not ok:
                sys.stdout.write(b.output[-3000:])
            t.record(f"boot/{shape}", ok, why)


def broken_machines(t: Tally, kernel):
    """Bad input must give a clear message and a failure status, never a hang."""
    with tempfile.TemporaryDirectory() as tmp:
        base = os.path.join(tmp, "virt.dtb")
        qemu.dump_dtb(base, mem="128M", smp=1)
        dts = qemu.dtb_to_dts(base)

        def variant(name, text):
            path = os.path.join(tmp, name + ".dtb")
            qemu.dts_to_dtb(text, path)
            return path

        no_ram = re.sub(r"\n\tmemory@[0-9a-f]+ \{.*?\n\t\};", "", dts, flags=re.S)
        tiny = re.sub(r'(memory@80000000 \{.*?reg = <)[^>]*>',
                      r"\g<1>0x00 0x80000000 0x00 0x100000>", dts, flags=re.S)
        cases = [
            ("no-ram", variant("no-ram", no_ram), "pagoda: fatal: the device tree describes no RAM", 2),
            ("ram-smaller-than-kernel", variant("tiny", tiny), "pagoda: fatal: the kernel image", 2),
        ]
        for name, dtb, expect, status in cases:
            b = qemu.boot(kernel, timeout=BOOT_TIMEOUT, mem="128M", smp=1, dtb=dtb,
                          append="ktest=all")
            ok = not b.timed_out and b.status == status and expect in b.output
            if not ok:
                sys.stdout.write(b.output[-2000:])
            t.record(f"badinput/{name}", ok, "" if ok else f"status {b.status}")

    # A broken initramfs: the kernel must say it cannot start /init and power off with
    # status 4, never fault while reading the archive. Random bytes, a real archive cut
    # in the middle of a header, an archive whose header fields are out of range, no
    # initramfs at all, and init= naming a missing program.
    with tempfile.TemporaryDirectory() as tmp:
        archive = open(INITRD, "rb").read()
        rng = random.Random(7)
        garbage = bytes(rng.randrange(256) for _ in range(65536))
        bad_fields = bytearray(archive[:4096])
        bad_fields[94:102] = b"FFFFFFFF"  # c_namesize of the first entry
        bad_fields[54:62] = b"FFFFFFFF"   # c_filesize
        zero_name = bytearray(archive[:4096])
        zero_name[94:102] = b"00000000"  # c_namesize 0: no room even for the NUL
        cases = [("initrd-garbage", garbage, ""), ("initrd-truncated", archive[:1000], ""),
                 ("initrd-bad-fields", bytes(bad_fields), ""),
                 ("initrd-zero-namesize", bytes(zero_name), ""), ("initrd-none", None, ""),
                 ("init-missing", archive, "init=/nonexistent")]
        for name, data, append in cases:
            path = None
            if data is not None:
                path = os.path.join(tmp, name + ".cpio")
                with open(path, "wb") as f:
                    f.write(data)
            b = qemu.boot(kernel, timeout=BOOT_TIMEOUT, mem="128M", smp=1, initrd=path,
                          append=append)
            ok = (not b.timed_out and b.status == 4 and "pagoda: cannot start" in b.output
                  and "panic" not in b.output)
            if not ok:
                sys.stdout.write(b.output[-2000:])
            t.record(f"badinput/{name}", ok, "" if ok else f"status {b.status}")

    b = qemu.boot(kernel, timeout=BOOT_TIMEOUT, mem="128M", smp=1, append="ktest=panic")
    ok = (not b.timed_out and b.status == 1
          and re.search(r"^pagoda: panic at kernel/src/\S+:\d+: ", b.output, re.M) is not None)
    t.record("badinput/panic-exits-nonzero", ok, "" if ok else f"status {b.status}")

    b = qemu.boot(kernel, timeout=BOOT_TIMEOUT, mem="128M", smp=1, append="ktest=stack_overflow")
    ok = (not b.timed_out and b.status == 1
          and "kernel stack overflow on hart" in b.output and "ran into the guard page" in b.output)
    if not ok:
        sys.stdout.write(b.output[-3000:])
    t.record("badinput/kernel-stack-overflow-reported", ok, "" if ok else f"status {b.status}")


def linux(t: Tally):
    """The user test programs under Linux user-mode emulation (qemu-riscv64): proves each
    test right against Linux before it is trusted on pagoda."""
    r = run(["bash", "tools/linux-check.sh"])
    n = kernel_lines(t, "", r.stdout)
    if n == 0 or r.returncode != 0 and "FAIL" not in r.stdout:
        sys.stdout.write(r.stdout[-3000:] + r.stderr[-3000:])
        t.record("linux/check", False, f"linux-check exited {r.returncode}")


INITRD = os.path.join(os.path.dirname(__file__), "..", "build", "initramfs.cpio")
PAGODA_TIMEOUT = 1500


def pagoda(t: Tally, kernel):
    """The same user test binaries the linux suite ran, now on pagoda: /init runs every
    /tests program and prints TEST user/NAME PASS|FAIL, then powers off. Two machine
    shapes: two harts (processes migrate, remote TLB shootdowns) and one hart."""
    for mem, smp in (("256M", 2), ("128M", 1)):
        shape = f"m{mem}-smp{smp}"
        b = qemu.boot(kernel, timeout=PAGODA_TIMEOUT, mem=mem, smp=smp, initrd=INITRD,
                      append="test all")
        out = b.output.replace("TEST user/", f"TEST pagoda-{shape}/")
        n = kernel_lines(t, "", out)
        done = "TESTS DONE" in b.output
        ok = not b.timed_out and b.status == 0 and done and n > 0
        if not ok or "FAIL" in out:
            sys.stdout.write(b.output[-4000:])
        why = "" if ok else ("timeout" if b.timed_out else f"status {b.status}, done {done}, {n} tests")
        t.record(f"pagoda-{shape}/run", ok, why)

    # Threads and shootdowns on four harts.
    b = qemu.boot(kernel, timeout=PAGODA_TIMEOUT, mem="256M", smp=4, initrd=INITRD,
                  append="test " + " ".join(SMP4_TESTS))
    out = b.output.replace("TEST user/", "TEST pagoda-m256M-smp4/")
    n = kernel_lines(t, "", out)
    if b.timed_out or n != len(SMP4_TESTS) or "FAIL" in out:
        sys.stdout.write(b.output[-4000:])
        t.record("pagoda-m256M-smp4/run", False, "timeout" if b.timed_out else f"{n} tests")

    # The proof that remote flushes matter: on a kernel booted with tlb=noremote (the
    # remote half of every flush skipped on purpose) tlb_shootdown must fail, and say
    # why; QEMU itself catches nothing.
    b = qemu.boot(kernel, timeout=PAGODA_TIMEOUT, mem="256M", smp=2, initrd=INITRD,
                  append="test tlb_shootdown tlb=noremote")
    ok = (not b.timed_out and "TEST user/tlb_shootdown FAIL" in b.output
          and "accesses after" in b.output)
    if not ok:
        sys.stdout.write(b.output[-3000:])
    t.record("pagoda-noremote/tlb_shootdown-must-fail", ok, "" if ok else "it did not fail")


# The console suite: a person typing on the console, played by qemu.converse. Each
# boot is (name, append, steps, what the output must hold, in order, timeout).
CONSOLE_SESSIONS = (
    # `make run`'s boot (same console flags): BusyBox ash with a prompt, a pipeline, ^C
    # ending a foreground `sleep 30`, ^Z stopping `sleep 40` and fg bringing it back
    # (the whole session must end well before either sleep would).
    ("busybox-shell", "shell", (
        ("~ # ", b"echo $((6*7)) | cat\r"),
        ("~ # ", b"sleep 30\r"),
        ("sleep 30\r\n", b"\x03"),
        # ^Z stops a foreground job, fg continues it, ^C ends it.
        ("~ # ", b"sleep 40\r"),
        ("sleep 40\r\n", b"\x1a"),
        ("Stopped", b"jobs; fg\r"),
        ("sleep 40\r\n", b"\x03"),
        # /dev: seven devices and shm (a tmpfs).
        ("~ # ", b"ls /dev | wc -l; echo done\r"),
        ("done", b"exit\r"),
    ), ("\r\n42\r\n", "^C", "^Z", "Stopped", "^C", "\r\n8\r\ndone",
        "power off requested by init"), 25),
    ("line-discipline", "test tty_console TTY_DRIVEN=1", (
        ("TTY-ERASE", b"abc\x7fd\r"),
        ("TTY-KILL", b"xyz\x15hello\r"),
        ("TTY-WERASE", b"one two\x17three\r"),
        ("TTY-EOF", b"par\x04"),
        ("\n", b"\x04"),
        ("TTY-RAW", b"q\x7f\x04"),
        ("TTY-INTR", b"\x03"),
    ), ("abc\x08 \x08d\r\n", "xyz\x08 \x08\x08 \x08\x08 \x08hello", "one two\x08 \x08\x08 \x08\x08 \x08three",
        "^C", "TEST user/tty_console PASS"), 120),
)


def console(t: Tally, kernel):
    """The console as a terminal, typed on: BusyBox's interactive shell as `make run`
    boots it; the line discipline's editing, echo, end of file, raw mode and ^C
    (user/tests/tty_console.c with TTY_DRIVEN=1)."""
    for name, append, steps, wants, timeout in CONSOLE_SESSIONS:
        b = qemu.converse(kernel, steps, timeout=timeout, mem="256M", smp=2, initrd=INITRD,
                          append=append, extra=qemu.INTERACTIVE_CONSOLE)
        at, missing = 0, None
        for want in wants:
            found = b.output.find(want, at)
            if found < 0:
                missing = want
                break
            at = found + len(want)
        ok = not b.timed_out and b.status == 0 and missing is None
        if not ok:
            sys.stdout.write(b.output[-3000:])
        why = "" if ok else ("timeout" if b.timed_out else f"output lacks {missing!r}")
        t.record(f"console/{name}", ok, why)


# The swap tests (issue 16), booted with a 1 GiB swap disk formatted by mkswap: a working
# set of 3x RAM, fork of swapped-out pages, four processes of 0.75x RAM at once; and the
# memory tour (/bin/memtour via tests/memtour_run), whose swap step runs only here. On the
# boots without a disk they pass with a note. All of them on one hart; on two and four
# harts the ones where several tasks swap at once (the disk's completions arrive on any
# hart, a task that sleeps for a swap-in inside a kernel trap may wake on another: both
# once stalled or crashed pagoda, see docs/swap.md), since every multi-hart boot costs
# several times a one-hart one on the 2-core host (537 s for all six on two harts at a
# host load of 6).
SWAP_TESTS = ("swap_basic", "swap_fork", "swap_multi", "swap_off", "mlock_swap", "swap_mremap",
              "swap_thp", "memtour_run")
SWAP_TESTS_BY_HARTS = {1: SWAP_TESTS, 2: ("swap_fork", "swap_multi", "swap_mremap", "swap_thp"),
                       4: ("swap_multi", "swap_off")}
SWAP_MIB = 1024


# Swap full: a disk much smaller than RAM, so that RAM and swap fill up together and the
# out-of-memory killer must act (exactly once).
SWAP_FULL_TESTS = ("swap_full",)
SWAP_FULL_MIB = 32

# Swap smaller than the working set: the memory tour's swap step at 256 MiB with a 256 MiB
# disk writes 263 MiB and reads it back; every page read back keeps its slot, so the
# disk fills up and reclaim must go on past pages it finds no slot for (it once stopped
# there and the out-of-memory killer ran with clean pages to free; docs/swap.md).
SWAP_SMALL = ("256M", 1, ("memtour_run",), 256)


def swap(t: Tally, kernel):
    """/tests/swap_* on pagoda with a swap disk: the data checks are the tests' own; the
    suite also checks that swap was found and enabled at boot."""
    boots = [("128M", smp, "swap", tests, SWAP_MIB)
             for smp, tests in SWAP_TESTS_BY_HARTS.items()]
    boots += [("128M", smp, "swapfull", SWAP_FULL_TESTS, SWAP_FULL_MIB) for smp in (1, 2)]
    mem, smp, tests, mib = SWAP_SMALL
    boots.append((mem, smp, "swapsmall", tests, mib))
    for mem, smp, kind, tests, mib in boots:
        shape = f"m{mem}-smp{smp}-{kind}"
        start = time.monotonic()
        b = qemu.boot(kernel, timeout=PAGODA_TIMEOUT, mem=mem, smp=smp, initrd=INITRD,
                      append="test " + " ".join(tests), swap_mib=mib)
        print(f"{shape}: {time.monotonic() - start:.0f} s", flush=True)
        out = b.output.replace("TEST user/", f"TEST pagoda-{shape}/")
        n = kernel_lines(t, "", out)
        enabled = "pagoda: swap on" in b.output
        ok = not b.timed_out and b.status == 0 and n == len(tests) and enabled
        if not ok or "FAIL" in out:
            sys.stdout.write(b.output[-4000:])
        why = "" if ok else ("timeout" if b.timed_out else
                             "swap not enabled" if not enabled else f"{n} tests")
        t.record(f"pagoda-{shape}/run", ok, why)


# The tests booted again on four harts (threads on a shared address space, shootdowns).
SMP4_TESTS = ("thread_basic", "thread_futex", "tlb_shootdown", "proc_groups", "sig_handlers",
              "pipe_basic", "vm_fork_stress", "tmpfs_mmap")


# The bounded fuzzing run of `make test` (issue 13): (machine, seeds, calls per seed).
FUZZ_RUNS = (("256M", 1, "1,2,3", 250), ("256M", 4, "4,5,6", 250))


def fuzz(t: Tally, kernel, runs=FUZZ_RUNS):
    """/tests/fuzz, the in-guest system-call fuzzer, booted on its own with its seeds and
    call count in the environment (FUZZ_SEEDS, FUZZ_CALLS: kernel command-line words).
    A run passes when the fuzzer reports no failure (its children survived; on pagoda the
    process count, MemFree and slab objects came back after every batch), the kernel did
    not panic and the machine powered off in time."""
    for mem, smp, seeds, calls in runs:
        shape = f"m{mem}-smp{smp}"
        nseeds = sum(len(range(int(a), int(b) + 1)) if "-" in part else 1
                     for part in seeds.split(",") for a, _, b in [part.partition("-")])
        timeout = 120 + nseeds * max(1, calls // 250) * 120
        b = qemu.boot(kernel, timeout=timeout, mem=mem, smp=smp, initrd=INITRD,
                      append=f"test fuzz FUZZ_SEEDS={seeds} FUZZ_CALLS={calls}")
        total = re.search(r"^FUZZ TOTAL calls (\d+) \((\d+) by children\) seeds (\d+) "
                          r"failures (\d+)", b.output, re.M)
        passed = re.search(r"^TEST user/fuzz PASS", b.output, re.M) is not None
        panic = re.search(r"^pagoda: panic", b.output, re.M) is not None
        ok = (not b.timed_out and b.status == 0 and passed and not panic
              and total is not None and total.group(4) == "0")
        for line in re.findall(r"^FUZZ .*$", b.output, re.M):
            print(f"  {shape}: {line}", flush=True)
        if not ok:
            sys.stdout.write(b.output[-4000:])
        why = "" if ok else ("timeout (hang?)" if b.timed_out else
                             "kernel panic" if panic else
                             f"status {b.status}, fuzz {'passed' if passed else 'failed'}")
        calls_done = total.group(1) if total else "?"
        t.record(f"fuzz/{shape}-seeds-{seeds}-calls-{calls_done}", ok, why)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kernel", required=True)
    ap.add_argument("--only",
                    help="comma-separated suites: lint,host,linux,pagoda,console,fuzz,boot,"
                         "badinput")
    ap.add_argument("--fuzz-seeds", help="fuzz suite: seeds, e.g. 1-40 (default: make test's)")
    ap.add_argument("--fuzz-calls", type=int, default=2500, help="fuzz suite: calls per seed")
    ap.add_argument("--fuzz-smp", default="1,4", help="fuzz suite: hart counts to boot")
    ap.add_argument("--fuzz-mem", default="256M", help="fuzz suite: machine memory")
    args = ap.parse_args()
    fuzz_runs = FUZZ_RUNS
    if args.fuzz_seeds:
        fuzz_runs = tuple((args.fuzz_mem, int(smp), args.fuzz_seeds, args.fuzz_calls)
                          for smp in args.fuzz_smp.split(","))
    suites = {"lint": lambda t: lints(t), "host": host_tests, "linux": linux,
              "pagoda": lambda t: pagoda(t, args.kernel),
              "swap": lambda t: swap(t, args.kernel),
              "console": lambda t: console(t, args.kernel),
              "fuzz": lambda t: fuzz(t, args.kernel, fuzz_runs),
              "boot": lambda t: shapes(t, args.kernel),
              "badinput": lambda t: broken_machines(t, args.kernel)}
    chosen = args.only.split(",") if args.only else list(suites)
    t = Tally()
    took = []
    for s in chosen:
        print(f"== {s}", flush=True)
        start = time.monotonic()
        suites[s](t)
        took.append(f"{s} {time.monotonic() - start:.0f} s")
    # How long each suite took: CI shows only the tail of the output.
    print("suite times: " + ", ".join(took))
    print(f"{t.passed} passed, {t.failed} failed")
    sys.exit(1 if t.failed else 0)


if __name__ == "__main__":
    main()
