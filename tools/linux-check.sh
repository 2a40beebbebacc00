#!/usr/bin/env bash
# Prove pagoda's user tests right against Linux: build them (make -C user) and run each
# /tests program under qemu-riscv64-static, Linux's riscv64 user-mode emulation.
#
#   tools/linux-check.sh [--init] [NAME...]     (default: every program in /tests)
#   tools/linux-check.sh --bench [NAME...]      (default: every program in /bench)
#
# Prints `TEST linux/NAME PASS` or `TEST linux/NAME FAIL <reason>` per test, then
# `N passed, N failed`; exits non-zero if any failed. With --init the suite is run by
# the initramfs's own /init (`init test ...`), as pagoda runs it, instead of directly.
# --bench runs the benchmarks through /init (`init bench ...`): a smoke test of them,
# whose figures are host wall-clock times, not pagoda's instruction counts.
#
# How the programs see the same file tree as on pagoda: each runs chrooted into
# $BUILD/initramfs, so /tests/x, /libexec/probe and /data/y are the initramfs's files. The
# tests fork and execve other riscv64 programs; the host kernel hands those to QEMU via
# binfmt_misc, registered with the F flag (interpreter opened at registration, so it
# works inside the chroot) and P (argv[0] preserved). QEMU's -L prefix is not enough:
# QEMU 7.2 applies it to open/stat but not to execve. /proc and /dev are bind-mounted into the
# root inside a private mount namespace, so nothing stays mounted afterwards.
#
# Needs root (chroot, mount, binfmt_misc). Registering the binfmt handler is idempotent.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$REPO/build}
ROOT=$BUILD/initramfs
TIMEOUT=${TIMEOUT:-120}
BINFMT=/proc/sys/fs/binfmt_misc
BINFMT_CONF=/usr/lib/binfmt.d/qemu-riscv64.conf # from Debian's qemu-user-static

die() { echo "linux-check: $*" >&2; exit 2; }

[ "$(id -u)" -eq 0 ] || die "needs root (chroot, mount, binfmt_misc registration)"
command -v qemu-riscv64-static >/dev/null || die "qemu-riscv64-static missing (apt-get install qemu-user-static)"
CHROOT=$(command -v chroot) || die "chroot missing"
TIMEOUT_CMD=$(command -v timeout) || die "timeout missing"

via_init=0 suite=tests mode=test
case "${1:-}" in
--init) via_init=1; shift ;;
--bench) via_init=1 suite=bench mode=bench; shift ;;
esac

make -s -C "$REPO/user" BUILD="$BUILD" >/dev/null

# binfmt_misc: riscv64 ELF files run by QEMU, with flags P, O, F.
[ -e "$BINFMT/register" ] || mount -t binfmt_misc binfmt_misc "$BINFMT" ||
    die "cannot mount binfmt_misc on $BINFMT"
entry=$BINFMT/qemu-riscv64
if [ -e "$entry" ] && ! grep -q '^flags: .*F' "$entry"; then
    echo -1 > "$entry" # registered without F: the interpreter would not be found in the chroot
fi
if [ ! -e "$entry" ]; then
    [ -r "$BINFMT_CONF" ] || die "$BINFMT_CONF missing (Debian's qemu-user-static provides it)"
    line=$(grep -v '^#' "$BINFMT_CONF" | head -n 1)
    case "${line##*:}" in *F*) ;; *) line="${line}F" ;; esac
    printf '%s' "$line" > "$BINFMT/register" || die "cannot register qemu-riscv64 with binfmt_misc"
fi
grep -q '^enabled' "$entry" || die "binfmt_misc entry $entry is disabled"

if [ $# -eq 0 ]; then
    mapfile -t names < <(cd "$ROOT/$suite" && LC_ALL=C ls)
else
    names=("$@")
fi

# The run itself, inside a private mount namespace holding /proc at $ROOT/proc.
# Environment as on pagoda: nothing but what the kernel command line would give.
ulimit -c 0
if [ $via_init -eq 1 ]; then
    # /init prints TEST user/NAME ... (TEST bench/NAME ...); it exits (instead of
    # powering off) when not pid 1.
    unshare --mount --fork -- sh -c 'mount --bind /proc "$1/proc" &&
        mount --bind /dev "$1/dev" && shift &&
        exec env -i "$@"' sh "$ROOT" "$TIMEOUT_CMD" "$((TIMEOUT * ${#names[@]}))" \
        "$CHROOT" "$ROOT" /init "$mode" "${names[@]}" |
        sed -u 's#^TEST \(user\|bench\)/#TEST linux/#' | tee "$BUILD/linux-check.log" || true
    passed=$(grep -c '^TEST linux/.* PASS$' "$BUILD/linux-check.log" || true)
    failed=$(grep -c '^TEST linux/.* FAIL' "$BUILD/linux-check.log" || true)
    grep -q '^\(TESTS\|BENCHES\) DONE$' "$BUILD/linux-check.log" ||
        { echo "init did not finish"; failed=$((failed + 1)); }
else
    # One namespace for the whole suite; each test chrooted with a timeout.
    unshare --mount --fork -- bash -c '
        root=$1 timeout=$2 timeout_cmd=$3 chroot_cmd=$4; shift 4
        mount --bind /proc "$root/proc" || exit 2
        mount --bind /dev "$root/dev" || exit 2
        passed=0 failed=0
        for name in "$@"; do
            status=0
            env -i "$timeout_cmd" "$timeout" "$chroot_cmd" "$root" "/tests/$name" || status=$?
            if [ $status -eq 0 ]; then
                echo "TEST linux/$name PASS"; passed=$((passed + 1))
            else
                if [ $status -eq 124 ]; then why="timed out after ${timeout} s"
                elif [ $status -gt 128 ]; then why="killed by signal $((status - 128))"
                else why="exit status $status"; fi
                echo "TEST linux/$name FAIL $why"; failed=$((failed + 1))
            fi
        done
        echo "$passed $failed" > "$root/../linux-check.counts"
    ' bash "$ROOT" "$TIMEOUT" "$TIMEOUT_CMD" "$CHROOT" "${names[@]}"
    read -r passed failed < "$BUILD/linux-check.counts"
    rm -f "$BUILD/linux-check.counts"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
