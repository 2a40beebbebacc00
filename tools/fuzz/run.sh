#!/bin/sh
# Coverage-guided fuzzing of pagoda's parsers on the host: `make fuzz-host`.
#
#   tools/fuzz/run.sh BUILD_DIR RUNS TARGET...
#
# Installs cargo-fuzz (from crates.io, once, into BUILD_DIR/fuzz/cargo), seeds each
# target's corpus with real inputs (a pagoda user program, a small newc archive, the
# device tree QEMU gives the virt machine, an mkswap header), then runs libFuzzer for
# RUNS executions per target, built by Debian's Rust toolchain without a sanitizer
# (`-s none`: a panic or a failed assertion is a finding, saved under
# BUILD_DIR/fuzz/artifacts/TARGET). Prints one line per target: executions, seconds,
# corpus size, and whether it found anything. Exits non-zero on a finding.
set -eu

build=$(realpath "$1") runs=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
work=$build/fuzz
mkdir -p "$work"

if [ ! -x "$work/cargo/bin/cargo-fuzz" ]; then
    echo "fuzz-host: installing cargo-fuzz into $work/cargo (once)"
    cargo install --quiet --locked cargo-fuzz --version 0.13.2 --root "$work/cargo"
fi
export PATH="$work/cargo/bin:$PATH"
export CARGO_TARGET_DIR="$work/target"

# Seeds (kept between runs with what libFuzzer adds to them).
seed() { # TARGET FILE
    mkdir -p "$work/corpus/$1"
    [ -f "$2" ] && cp "$2" "$work/corpus/$1/seed-$(basename "$2")"
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
[ -f "$root/build/user/bin/hello" ] && seed elf_plan "$root/build/user/bin/hello"
mkdir -p "$tmp/root/dir" && echo hello > "$tmp/root/dir/a" && ln -s dir/a "$tmp/root/link"
(cd "$tmp/root" && find . | cpio -o -H newc --quiet > "$tmp/archive.cpio")
printf '\010' > "$tmp/cpio-seed" && printf '/link/..' >> "$tmp/cpio-seed" &&
    cat "$tmp/archive.cpio" >> "$tmp/cpio-seed"
seed cpio_index "$tmp/cpio-seed"
python3 -c "import sys; sys.path.insert(0, '$root/tools'); import qemu; qemu.dump_dtb('$tmp/virt.dtb')" &&
    seed devicetree "$tmp/virt.dtb"
truncate -s 1M "$tmp/swap.img" && mkswap -q "$tmp/swap.img" >/dev/null &&
    { python3 -c "import sys; sys.stdout.buffer.write((256).to_bytes(8, 'little'))"
      head -c 4096 "$tmp/swap.img"; } > "$tmp/swap-seed" && seed swap_header "$tmp/swap-seed"

found=0
for t in "$@"; do
    mkdir -p "$work/corpus/$t" "$work/artifacts/$t"
    log=$work/$t.log
    if nice cargo fuzz run --fuzz-dir "$here" -s none "$t" "$work/corpus/$t" -- \
        -runs="$runs" -max_len=8192 -artifact_prefix="$work/artifacts/$t/" \
        -print_final_stats=1 > "$log" 2>&1; then
        verdict="no finding"
    else
        verdict="FINDING (see $log and $work/artifacts/$t/)"
        found=1
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
    corpus=$(ls "$work/corpus/$t" | wc -l)
    echo "fuzz-host: $t: ${execs:-?} executions in ${secs:-?} s, corpus $corpus inputs: $verdict"
done
exit $found
