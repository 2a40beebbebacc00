#!/usr/bin/env bash
# Idempotent machine setup for pagoda: Debian packages and the `debian` Rust toolchain link.
# Silent and fast when everything is present; says clearly what failed otherwise.
set -euo pipefail

# Package -> a file it provides (checked instead of asking dpkg, to stay fast).
declare -A NEED=(
  [rustc-web]=/usr/bin/rustc
  [cargo-web]=/usr/bin/cargo
  [rust-web-src]=/usr/lib/rustlib/src/rust/library/core/Cargo.toml
  [rust-web-clippy]=/usr/bin/cargo-clippy
  [rustfmt-web]=/usr/bin/rustfmt
  [lld]=/usr/bin/ld.lld
  [qemu-system-misc]=/usr/bin/qemu-system-riscv64
  [opensbi]=/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_dynamic.bin
  [gcc-riscv64-linux-gnu]=/usr/bin/riscv64-linux-gnu-gcc
  [libc6-dev-riscv64-cross]=/usr/riscv64-linux-gnu/lib/libc.a
  [qemu-user-static]=/usr/bin/qemu-riscv64-static
  [cpio]=/usr/bin/cpio
  [qemu-utils]=/usr/bin/qemu-img
  [python3]=/usr/bin/python3
  [device-tree-compiler]=/usr/bin/dtc
  [binutils-riscv64-linux-gnu]=/usr/bin/riscv64-linux-gnu-objcopy
  [dpkg-dev]=/usr/bin/dpkg-source # unpacks Debian's lua5.4 and busybox sources (user/real)
  [gcc]=/usr/bin/gcc # the host C compiler: BusyBox's Kconfig tools (and Rust's host linker)
  [util-linux]=/sbin/mkswap # formats the swap disk of the swap tests (tools/qemu.py)
  [python3-matplotlib]=/usr/lib/python3/dist-packages/matplotlib/__init__.py # make bench's plots (tools/plots.py)
)

missing=()
for pkg in "${!NEED[@]}"; do
  [ -e "${NEED[$pkg]}" ] || missing+=("$pkg")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"; } >/tmp/pagoda-setup.log 2>&1; then
    echo "setup: could not install Debian packages: ${missing[*]}" >&2
    echo "setup: see /tmp/pagoda-setup.log; pagoda needs Debian 12 with access to its package mirror" >&2
    exit 1
  fi
fi

if ! command -v rustup >/dev/null 2>&1; then
  echo "setup: rustup is required (to register Debian's Rust as the 'debian' toolchain)" >&2
  exit 1
fi
if ! rustup toolchain list | grep -q '^debian'; then
  rustup toolchain link debian /usr
fi

# The musl C compiler for /bin/hello-musl (user/real/real.mk): Zig's `zig cc`, from PyPI.
if ! python3 -c 'import ziglang' >/dev/null 2>&1; then
  echo "setup: installing ziglang 0.13.0 (PyPI) for the musl user programs"
  if ! python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
      ziglang==0.13.0 >/tmp/pagoda-setup-pip.log 2>&1; then
    echo "setup: could not install ziglang from PyPI; see /tmp/pagoda-setup-pip.log" >&2
    exit 1
  fi
fi
