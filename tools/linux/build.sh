#!/usr/bin/env bash
# Build the reference Linux 6.1 of `make bench` once; later runs reuse it.
#
#   tools/linux/build.sh [BUILD_DIR]        (default: build/ of the repository)
#
# Prints the path of the kernel image (BUILD_DIR/linux/Image) on stdout; progress and
# errors go to stderr. The image is rebuilt only when this script, config-6.1 or
# sv39.patch change (their hash is kept next to the image).
#
# Source: Debian 12's linux-source-6.1 package (the Debian-patched 6.1 tree as a tarball),
# the version the machine's Debian mirror offers at the first run (6.1.192-3 when this was
# written), fetched with `apt-get download`, kept and unpacked under BUILD_DIR/linux/;
# nothing is installed or changed outside BUILD_DIR except the host build tools (flex,
# bison, bc), installed with apt-get when missing.
# Configuration: `make allnoconfig` with config-6.1 as KCONFIG_ALLCONFIG, then a check
# that every option of config-6.1 has the value it asks for. Patch: sv39.patch.
# Build: `nice -n 15 make -j2 Image` (JOBS=N to change the -j), cross-compiled with
# Debian's riscv64-linux-gnu-gcc, with the build time, user and host fixed (only the
# build number in `uname -v` counts rebuilds).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
BUILD=$(mkdir -p "${1:-$REPO/build}" && cd "${1:-$REPO/build}" && pwd)
OUT=$BUILD/linux
SRC=$OUT/src
OBJ=$OUT/obj
JOBS=${JOBS:-2}
PKG=linux-source-6.1

say() { echo "linux: $*" >&2; }
die() { echo "linux: $*" >&2; exit 1; }

inputs_hash() {
    cat "$HERE/build.sh" "$HERE/config-6.1" "$HERE/sv39.patch" | sha256sum | cut -c1-16
}
want=$(inputs_hash)
if [ -f "$OUT/Image" ] && [ "$(cat "$OUT/Image.inputs" 2>/dev/null)" = "$want" ]; then
    echo "$OUT/Image"
    exit 0
fi

# Host tools the kernel build needs beyond gcc/make (Debian package -> a file it provides).
declare -A NEED=([flex]=/usr/bin/flex [bison]=/usr/bin/bison [bc]=/usr/bin/bc
    [gcc-riscv64-linux-gnu]=/usr/bin/riscv64-linux-gnu-gcc [xz-utils]=/usr/bin/xz
    [libssl-dev]=/usr/include/openssl/ssl.h)
missing=()
for pkg in "${!NEED[@]}"; do
    [ -e "${NEED[$pkg]}" ] || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]} (host tools for the kernel build)"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
        $SUDO apt-get install -y -qq "${missing[@]}"; } >"$OUT.apt.log" 2>&1 ||
        die "could not install ${missing[*]}; see $OUT.apt.log"
fi

mkdir -p "$OUT"

# The source tree, unpacked once, with sv39.patch applied.
if [ ! -f "$SRC/.unpacked" ] || [ "$(cat "$SRC/.unpacked")" != "$(sha256sum < "$HERE/sv39.patch")" ]; then
    deb=$(ls "$OUT"/${PKG}_*_all.deb 2>/dev/null | tail -n 1 || true)
    if [ -z "$deb" ]; then
        say "downloading Debian's $PKG (about 140 MB)"
        (cd "$OUT" && apt-get download -q "$PKG" >"$OUT/download.log" 2>&1) ||
            (cd "$OUT" && apt-get update -qq >>"$OUT/download.log" 2>&1 &&
                apt-get download -q "$PKG" >>"$OUT/download.log" 2>&1) ||
            die "apt-get download $PKG failed (no access to the Debian mirror?); see $OUT/download.log"
        deb=$(ls "$OUT"/${PKG}_*_all.deb | tail -n 1)
    fi
    say "unpacking $(basename "$deb")"
    rm -rf "$SRC" "$SRC.tmp" && mkdir -p "$SRC.tmp"
    dpkg-deb --fsys-tarfile "$deb" | tar -xO "./usr/src/$PKG.tar.xz" |
        tar -xJ -C "$SRC.tmp" --strip-components=1
    patch -s -d "$SRC.tmp" -p1 < "$HERE/sv39.patch"
    sha256sum < "$HERE/sv39.patch" > "$SRC.tmp/.unpacked"
    basename "$deb" > "$SRC.tmp/.debian-package"
    mv "$SRC.tmp" "$SRC"
    rm -rf "$OBJ"
fi

kmake() {
    nice -n 15 make -s -C "$SRC" O="$OBJ" ARCH=riscv CROSS_COMPILE=riscv64-linux-gnu- \
        KBUILD_BUILD_TIMESTAMP="pagoda bench reference" KBUILD_BUILD_USER=pagoda \
        KBUILD_BUILD_HOST=bench "$@"
}

# Configuration: allnoconfig + config-6.1, then every line of config-6.1 must hold.
mkdir -p "$OBJ"
kmake KCONFIG_ALLCONFIG="$HERE/config-6.1" allnoconfig >/dev/null
bad=0
while IFS= read -r line; do
    case "$line" in
    CONFIG_*=*) grep -qxF "$line" "$OBJ/.config" || { say "config-6.1 asks for $line; .config has: $(grep "^${line%%=*}=\|^# ${line%%=*} is not set" "$OBJ/.config" || echo nothing)"; bad=1; } ;;
    "# CONFIG_"*" is not set") opt=${line#\# }; opt=${opt%% *}
        ! grep -q "^$opt=" "$OBJ/.config" || { say "config-6.1 asks for $opt off; .config has it on"; bad=1; } ;;
    esac
done < "$HERE/config-6.1"
[ $bad -eq 0 ] || die "the configuration does not hold (see above); fix tools/linux/config-6.1"

say "building $(cat "$SRC/.debian-package" | sed 's/_all.deb//') with tools/linux/config-6.1 (nice -n 15 make -j$JOBS)"
start=$(date +%s)
kmake -j"$JOBS" Image >"$OUT/build.log" 2>&1 || { tail -n 30 "$OUT/build.log" >&2; die "kernel build failed; see $OUT/build.log"; }
cp "$OBJ/arch/riscv/boot/Image" "$OUT/Image"
echo "$want" > "$OUT/Image.inputs"
say "built $OUT/Image in $(( $(date +%s) - start )) s"
echo "$OUT/Image"
