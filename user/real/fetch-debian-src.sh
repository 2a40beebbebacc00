#!/bin/sh
# Fetch and unpack one Debian source package (bookworm main), cached under a build dir.
#
#   fetch-debian-src.sh PACKAGE VERSION CACHE_DIR
#
# On success prints the unpacked source tree's path (CACHE_DIR/PACKAGE-VERSION, with
# Debian's patches applied by dpkg-source) on stdout. If the source cannot be had, prints
# nothing and says why on stderr: the caller then builds without the program.
#
# apt-get is used with a private configuration under CACHE_DIR/apt (a deb-src entry for
# bookworm main on the mirror the machine already uses), so the system's apt setup is not
# touched. The Sources index is verified against Debian's archive keyring, and the
# downloaded files against it. Once unpacked, the tree is reused without any network
# access. If VERSION is no longer on the mirror (a point release replaced it), the
# newest bookworm version is taken instead, with a note.
set -u

pkg=$1 ver=$2 cache=$3
# The tree is named without the epoch ("1:"): make cannot handle a colon in a path.
tree=$cache/$pkg-$(echo "$ver" | sed 's/^[0-9]*://')

if [ -f "$tree/.unpacked" ]; then
    echo "$tree"
    exit 0
fi
for t in "$cache"/"$pkg"-*/.unpacked; do # an earlier fallback version
    if [ -f "$t" ]; then
        dirname "$t"
        exit 0
    fi
done

skip() {
    echo "real: skipping $pkg: $*" >&2
    exit 0
}

for tool in apt-get dpkg-source; do
    command -v $tool >/dev/null 2>&1 || skip "$tool not installed (scripts/setup.sh installs it)"
done

apt=$cache/apt
log=$cache/fetch-$pkg.log
mkdir -p "$apt/sources" "$apt/lists/partial" "$apt/cache/archives/partial" "$cache/dl-$pkg" ||
    skip "cannot create $apt"
cat > "$apt/sources/bookworm-src.sources" <<'EOF'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF

aptget() {
    apt-get -q -o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts="$apt/sources" \
        -o Dir::State::Lists="$apt/lists" -o Dir::Cache="$apt/cache" \
        -o Debug::NoLocking=1 -o APT::Sandbox::User=root "$@"
}

echo "  FETCH   Debian source $pkg $ver (cached under $cache)" >&2
: > "$log"
aptget update >> "$log" 2>&1 || skip "apt-get update of the deb-src index failed (no access to the Debian mirror?); see $log"

dl=$cache/dl-$pkg
got=$ver
if ! (cd "$dl" && aptget source --download-only "$pkg=$ver") >> "$log" 2>&1; then
    (cd "$dl" && aptget source --download-only "$pkg") >> "$log" 2>&1 ||
        skip "apt-get source $pkg failed (no access to the Debian mirror?); see $log"
    dsc=$(ls -t "$dl"/"$pkg"_*.dsc 2>/dev/null | head -n 1)
    [ -n "$dsc" ] || skip "no .dsc downloaded; see $log"
    got=$(sed -n 's/^Version: //p' "$dsc")
    echo "real: note: $pkg $ver is no longer on the mirror; using $got" >&2
    tree=$cache/$pkg-$(echo "$got" | sed 's/^[0-9]*://')
fi

dsc=$dl/${pkg}_$(echo "$got" | sed 's/^[0-9]*://').dsc
rm -rf "$tree" "$tree.tmp"
dpkg-source -x "$dsc" "$tree.tmp" >> "$log" 2>&1 || skip "dpkg-source -x $dsc failed; see $log"
# dpkg-source puts a copy of the .orig tarball next to the tree it unpacks, and the
# apt index (20 MB) is not needed once the tree is there.
rm -rf "$cache/${pkg}"_*.orig.tar.* "$apt"
touch "$tree.tmp/.unpacked" && mv "$tree.tmp" "$tree" || skip "cannot move $tree.tmp to $tree"
echo "$tree"
