#!/usr/bin/env bash
# Fetches a second, current QEMU for the rig's QEMU D-Bus tests (they run on Debian
# bookworm's 7.2 from /usr/bin and on this one) into the cache outside the clone, once.
#
# Source: Debian's bookworm-backports suite (QEMU 10.0.x there runs on bookworm's
# libraries; trixie's own packages need glibc 2.38). No system install: a private apt
# configuration downloads the four packages and dpkg-deb -x unpacks them into
# $cache/qemu/<Debian version>/. ui-dbus.so is in qemu-system-modules-opengl since 10.x.
# The tree is used with QEMU_MODULE_DIR=<tree>/usr/lib/x86_64-linux-gnu/qemu and
# -L <tree>/usr/share/qemu -L /usr/share/seabios -L /usr/share/qemu.
#
# Idempotent: once a tree is complete ($cache/qemu/<series> links to it, .complete inside)
# the script prints it without touching the network. Prints the tree's path on stdout's
# last line; progress goes to stderr. Exit 2: the archive could not be reached and nothing
# is cached (the only case in which the rig's QEMU 10 tests may skip); 1: anything else.
#
# Env: GUESTPLANE_CACHE (default ~/.cache/guestplane), GUESTPLANE_QEMU_SERIES (upstream
# series wanted, default 10.0), GUESTPLANE_QEMU_REFETCH=1 (ignore the cached tree).
set -euo pipefail

cache=${GUESTPLANE_CACHE:-$HOME/.cache/guestplane}
series=${GUESTPLANE_QEMU_SERIES:-10.0}
suite=bookworm-backports
pkgs=(qemu-system-x86 qemu-system-modules-opengl qemu-system-common qemu-system-data)

log() { printf '[qemu] %s\n' "$*" >&2; }
die() { printf '[qemu] error: %s\n' "$*" >&2; exit "${2:-1}"; }

base=$cache/qemu
link=$base/$series
mkdir -p "$base"
# The rig, the demo and a second test run may start at once: one fetches, the others wait.
exec 9>"$base/.lock-$series"
flock 9

complete() { [ -e "$1/.complete" ] && [ -x "$1/usr/bin/qemu-system-x86_64" ]; }
if [ -z "${GUESTPLANE_QEMU_REFETCH:-}" ] && complete "$link"; then
  log "cached: $(readlink -f "$link") ($(cat "$link/.complete"))"
  readlink -f "$link"; exit 0
fi

for tool in apt-get apt-cache dpkg-deb flock; do command -v "$tool" >/dev/null || die "'$tool' is missing (Debian's apt and dpkg)"; done

aptdir=$base/apt
mkdir -p "$aptdir"/{lists/partial,cache/archives/partial,etc/preferences.d}
cat > "$aptdir/etc/sources.list" <<EOF
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $suite main
EOF
O=(-o Dir::Etc::sourcelist="$aptdir/etc/sources.list" -o Dir::Etc::sourceparts=/nonexistent
   -o Dir::Etc::preferencesparts="$aptdir/etc/preferences.d" -o Dir::State::lists="$aptdir/lists"
   -o Dir::Cache="$aptdir/cache" -o Dir::State::status=/var/lib/dpkg/status -o Debug::NoLocking=1)

start=$(date +%s)
log "apt-get update ($suite, private lists in $aptdir)"
apt-get -q "${O[@]}" update >&2 || die "apt-get update of $suite failed (no network? deb.debian.org unreachable?)" 2
ver=$(apt-cache "${O[@]}" policy qemu-system-x86 | awk '/Candidate:/ {print $2}')
[ -n "$ver" ] && [ "$ver" != "(none)" ] || die "$suite offers no qemu-system-x86"
upstream=${ver#*:}; upstream=${upstream%%+*}
case "$upstream" in "$series".*) ;; *) die "$suite has QEMU $upstream ($ver), not $series.x: set GUESTPLANE_QEMU_SERIES or update the rig";; esac

# Keyed by the Debian version: a new backport gets a tree of its own.
tree=$base/$(printf '%s' "$ver" | tr -c 'A-Za-z0-9.+~-' '_')
rm -rf "$tree.tmp" && mkdir -p "$tree.tmp/debs"
log "downloading ${pkgs[*]} $ver"
(cd "$tree.tmp/debs" && apt-get -q "${O[@]}" download "${pkgs[@]/%/=$ver}" >&2) || die "apt-get download of QEMU $ver failed" 2
for deb in "$tree.tmp"/debs/*.deb; do dpkg-deb -x "$deb" "$tree.tmp"; done
rm -rf "$tree.tmp/debs"
[ -e "$tree.tmp/usr/lib/x86_64-linux-gnu/qemu/ui-dbus.so" ] || die "no ui-dbus.so in the unpacked packages (moved to another package?)"
got=$(QEMU_MODULE_DIR="$tree.tmp/usr/lib/x86_64-linux-gnu/qemu" "$tree.tmp/usr/bin/qemu-system-x86_64" \
        -L "$tree.tmp/usr/share/qemu" -L /usr/share/seabios -L /usr/share/qemu --version 2>&1 | head -1) \
  || die "the unpacked QEMU does not run here: $got"
echo "$got" > "$tree.tmp/.complete"
rm -rf "$tree" && mv "$tree.tmp" "$tree"
ln -sfn "$(basename "$tree")" "$link"
log "$got in $tree ($(( $(date +%s) - start )) s, $(du -sm "$tree" | cut -f1) MB)"
echo "$tree"
