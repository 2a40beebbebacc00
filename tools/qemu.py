"""Booting pagoda in QEMU `virt`: the one place that knows the QEMU command line."""

import os
import subprocess
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass

QEMU = "qemu-system-riscv64"


@dataclass
class Boot:
    """The result of one boot: QEMU's exit status and everything the console printed."""

    status: int | None  # None when the boot hit the timeout
    output: str

    @property
    def timed_out(self) -> bool:
        return self.status is None


# The console of an interactive boot (`make run`): QEMU's stdio multiplexed (Ctrl-A X
# quits, Ctrl-A H lists the other keys), with signals off so that Ctrl-C is typed to
# the guest instead of killing QEMU.
INTERACTIVE_CONSOLE = ("-chardev", "stdio,id=con,mux=on,signal=off", "-serial", "chardev:con")


def command(kernel, mem="128M", smp=1, append="", initrd=None, dtb=None, extra=()):
    cmd = [QEMU, "-machine", "virt", "-bios", "default", "-m", str(mem), "-smp", str(smp),
           "-nographic", "-monitor", "none", "-kernel", kernel]
    if append:
        cmd += ["-append", append]
    if initrd:
        cmd += ["-initrd", initrd]
    if dtb:
        cmd += ["-dtb", dtb]
    cmd += list(extra)
    return cmd


MKSWAP = "/sbin/mkswap"


def swap_args(path):
    """QEMU arguments attaching the disk image `path` as a virtio block device."""
    return ["-drive", f"file={path},if=none,format=raw,id=swap",
            "-device", "virtio-blk-device,drive=swap"]


def make_swap_image(path, mib):
    """A sparse image of `mib` MiB formatted by util-linux `mkswap` (Linux's own swap
    format)."""
    with open(path, "wb") as f:
        f.truncate(mib * 1024 * 1024)
    os.chmod(path, 0o600)
    subprocess.run([MKSWAP, "-L", "pagoda-swap", path], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@contextmanager
def swap_disk(mib):
    """A fresh sparse disk image of `mib` MiB formatted by util-linux `mkswap` (Linux's
    own swap format), as QEMU arguments for a virtio block device; deleted afterwards.
    Each boot gets its own image (QEMU locks an image for writing)."""
    with tempfile.TemporaryDirectory(prefix="pagoda-swap-") as d:
        path = os.path.join(d, "swap.img")
        make_swap_image(path, mib)
        yield swap_args(path)


def boot(kernel, timeout=60, swap_mib=0, **kw) -> Boot:
    """Boots non-interactively and returns when QEMU exits or `timeout` seconds pass;
    with `swap_mib`, a swap disk of that size is attached."""
    if swap_mib:
        with swap_disk(swap_mib) as extra:
            return boot(kernel, timeout, extra=tuple(kw.pop("extra", ())) + tuple(extra), **kw)
    cmd = command(kernel, **kw)
    with subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT) as p:
        try:
            out, _ = p.communicate(timeout=timeout)
            return Boot(p.returncode, out.decode(errors="replace"))
        except subprocess.TimeoutExpired:
            p.kill()
            out, _ = p.communicate()
            return Boot(None, out.decode(errors="replace"))


def converse(kernel, steps, timeout=60, **kw) -> Boot:
    """Boots with the console on a pipe and plays `steps`, a list of (marker, data):
    waits until `marker` appears in the output (after the previous one), then types
    `data` (bytes) on the console. Returns when QEMU exits or `timeout` seconds pass;
    a marker that never comes ends the boot at the timeout, with the output so far."""
    import select
    import time
    cmd = command(kernel, **kw)
    deadline = time.monotonic() + timeout
    out = b""
    seen = 0
    pending = list(steps)
    with subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT) as p:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                p.kill()
                p.wait()
                return Boot(None, out.decode(errors="replace"))
            ready, _, _ = select.select([p.stdout], [], [], min(left, 0.2))
            if ready:
                chunk = os.read(p.stdout.fileno(), 65536)
                if not chunk:
                    p.wait()
                    return Boot(p.returncode, out.decode(errors="replace"))
                out += chunk
            while pending:
                marker, data = pending[0]
                at = out.find(marker.encode(), seen)
                if at < 0:
                    break
                seen = at + len(marker)
                pending.pop(0)
                # Typed a little later, as a person would (and after the program asked).
                time.sleep(0.3)
                p.stdin.write(data)
                p.stdin.flush()


def dump_dtb(path, mem="128M", smp=1):
    """Writes the device tree QEMU would give a `virt` machine of this shape."""
    subprocess.run([QEMU, "-machine", f"virt,dumpdtb={path}", "-bios", "default",
                    "-m", str(mem), "-smp", str(smp), "-nographic"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def dtb_to_dts(dtb) -> str:
    return subprocess.run(["dtc", "-q", "-I", "dtb", "-O", "dts", dtb], check=True,
                          capture_output=True, text=True).stdout


def dts_to_dtb(dts: str, path):
    subprocess.run(["dtc", "-q", "-I", "dts", "-O", "dtb", "-o", path], input=dts,
                   check=True, text=True)
    os.chmod(path, 0o644)
