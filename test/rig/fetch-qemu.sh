#!/usr/bin/env bash
# Fetches a current QEMU for the rig's QEMU D-Bus tests (they run on Debian bookworm's 7.2
# from /usr/bin and on these) into the cache outside the clone, once. Two kinds:
#
# series 10.0 (default): Debian's bookworm-backports suite (QEMU 10.0.x there runs on
#   bookworm's libraries). A private apt configuration downloads the four packages and
#   dpkg-deb -x unpacks them into $cache/qemu/<Debian version>/. ui-dbus.so is in
#   qemu-system-modules-opengl since 10.x. Used with QEMU_MODULE_DIR=<tree>/usr/lib/x86_64-linux-gnu/qemu
#   and -L <tree>/usr/share/qemu -L /usr/share/seabios -L /usr/share/qemu.
# series 11 (or any newer): Debian's trixie-backports suite, built against trixie's glibc
#   2.41 (bookworm has 2.36), so it cannot use this host's libraries. apt resolves, with an
#   empty package database, everything `apt-get install -t trixie-backports` would install
#   on a bare trixie (libc6 and every library from trixie, newer ones from trixie-backports,
#   plus Mesa's EGL for gl=on) and each package is unpacked into one tree, which is then a
#   small trixie of its own. <tree>/qemu-system-x86_64 (written here) runs the QEMU through
#   the tree's own dynamic loader with only the tree's libraries (--inhibit-cache: not the
#   host's ld.so.cache), its modules (QEMU_MODULE_DIR), its Mesa (EGL vendor file, GBM
#   backend) and its firmware (-L): nothing of the host's but the kernel.
#
# Idempotent: once a tree is complete ($cache/qemu/<series> links to it, .complete inside)
# the script prints it without touching the network. Prints the tree's path on stdout's
# last line; progress goes to stderr. Exit 2: the archive could not be reached or offers no
# such QEMU, and nothing is cached (the rig's tests on that QEMU then skip with the reason);
# 1: anything else.
#
# Env: GUESTPLANE_CACHE (default ~/.cache/guestplane), GUESTPLANE_QEMU_SERIES (upstream
# series wanted, default 10.0; "11" takes trixie-backports' 11.x), GUESTPLANE_QEMU_REFETCH=1
# (ignore the cached tree).
set -euo pipefail

cache=${GUESTPLANE_CACHE:-$HOME/.cache/guestplane}
series=${GUESTPLANE_QEMU_SERIES:-10.0}
pkgs=(qemu-system-x86 qemu-system-modules-opengl qemu-system-common qemu-system-data)
case "$series" in
  10.0) suites=(bookworm-backports); target=bookworm-backports; closure= ;;
  *) suites=(trixie trixie-backports); target=trixie-backports; closure=1 ;;
esac

log() { printf '[qemu] %s\n' "$*" >&2; }
die() { printf '[qemu] error: %s\n' "$1" >&2; exit "${2:-1}"; }

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

# One private apt state per suite set (the bookworm-backports one keeps its old place).
aptdir=$base/apt${closure:+-$target}
mkdir -p "$aptdir"/{lists/partial,cache/archives/partial,etc/preferences.d}
for s in "${suites[@]}"; do
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $s main"
done > "$aptdir/etc/sources.list"
# The closure is resolved against an empty package database: nothing of this host counts
# as installed, so every library comes from the suites.
status=/var/lib/dpkg/status
if [ -n "$closure" ]; then status=$aptdir/status; : > "$status"; fi
O=(-o Dir::Etc::sourcelist="$aptdir/etc/sources.list" -o Dir::Etc::sourceparts=/nonexistent
   -o Dir::Etc::preferencesparts="$aptdir/etc/preferences.d" -o Dir::State::lists="$aptdir/lists"
   -o Dir::Cache="$aptdir/cache" -o Dir::State::status="$status" -o Debug::NoLocking=1
   -o APT::Default-Release="$target" -o APT::Install-Recommends=false)

start=$(date +%s)
log "apt-get update (${suites[*]}, private lists in $aptdir)"
apt-get -q "${O[@]}" update >&2 || die "apt-get update of ${suites[*]} failed (no network? deb.debian.org unreachable?)" 2
ver=$(apt-cache "${O[@]}" policy qemu-system-x86 | awk '/Candidate:/ {print $2}')
[ -n "$ver" ] && [ "$ver" != "(none)" ] || die "$target offers no qemu-system-x86" 2
upstream=${ver#*:}; upstream=${upstream%%+*}
case "$upstream" in "$series".*) ;; *) die "$target has QEMU $upstream ($ver), not $series.x: set GUESTPLANE_QEMU_SERIES or update the rig" 2;; esac

# Keyed by the Debian version: a new backport gets a tree of its own.
tree=$base/$(printf '%s' "$ver" | tr -c 'A-Za-z0-9.+~-' '_')
rm -rf "$tree.tmp" && mkdir -p "$tree.tmp/debs/partial"
if [ -z "$closure" ]; then
  log "downloading ${pkgs[*]} $ver"
  (cd "$tree.tmp/debs" && apt-get -q "${O[@]}" download "${pkgs[@]/%/=$ver}" >&2) || die "apt-get download of QEMU $ver failed" 2
else
  # libegl1 + libegl-mesa0: what gl=on needs and no QEMU package depends on (libepoxy
  # dlopens libEGL; a trixie desktop has them).
  log "resolving and downloading ${pkgs[*]} $ver with every library they need from ${suites[*]}"
  apt-get -qq "${O[@]}" -o Dir::Cache::archives="$tree.tmp/debs" -y --download-only install \
    "${pkgs[@]/%/=$ver}" libegl1 libegl-mesa0 >&2 || die "apt-get could not resolve or download QEMU $ver and its libraries from ${suites[*]}" 2
fi
n=0; for deb in "$tree.tmp"/debs/*.deb; do dpkg-deb -x "$deb" "$tree.tmp"; n=$((n + 1)); done
ls "$tree.tmp/debs" | grep '\.deb$' > "$tree.tmp/packages"
rm -rf "$tree.tmp/debs" "$tree.tmp/usr/share/doc" "$tree.tmp/usr/share/man" "$tree.tmp/usr/share/locale"
[ -e "$tree.tmp/usr/lib/x86_64-linux-gnu/qemu/ui-dbus.so" ] || die "no ui-dbus.so in the unpacked packages (moved to another package?)"
if [ -z "$closure" ]; then
  run=("$tree.tmp/usr/bin/qemu-system-x86_64" -L "$tree.tmp/usr/share/qemu" -L /usr/share/seabios -L /usr/share/qemu)
  export QEMU_MODULE_DIR="$tree.tmp/usr/lib/x86_64-linux-gnu/qemu"
else
  [ -e "$tree.tmp/usr/lib64/ld-linux-x86-64.so.2" ] || die "no usr/lib64/ld-linux-x86-64.so.2 in the unpacked libc6"
  # Paths are taken from where the wrapper lies, so the tree can be renamed or mounted anywhere.
  cat > "$tree.tmp/qemu-system-x86_64" <<'EOF'
#!/bin/sh
# QEMU from Debian trixie-backports with its own glibc and libraries (this tree, unpacked by
# guestplane's test/rig/fetch-qemu.sh), run through the tree's dynamic loader.
t=$(dirname "$(readlink -f "$0")")
L=$t/usr/lib/x86_64-linux-gnu
export QEMU_MODULE_DIR="$L/qemu" __EGL_VENDOR_LIBRARY_DIRS="$t/usr/share/glvnd/egl_vendor.d" GBM_BACKENDS_PATH="$L/gbm" LIBGL_DRIVERS_PATH="$L/dri"
exec "$t/usr/lib64/ld-linux-x86-64.so.2" --inhibit-cache --library-path "$L" "$t/usr/bin/qemu-system-x86_64" -L "$t/usr/share/qemu" -L "$t/usr/share/seabios" "$@"
EOF
  chmod +x "$tree.tmp/qemu-system-x86_64"
  run=("$tree.tmp/qemu-system-x86_64")
  # Every library QEMU and its D-Bus display module load must come from the tree.
  L=$tree.tmp/usr/lib/x86_64-linux-gnu
  for obj in "$tree.tmp/usr/bin/qemu-system-x86_64" "$L/qemu/ui-dbus.so" "$L/qemu/ui-opengl.so" "$L/libEGL_mesa.so.0"; do
    outside=$("$tree.tmp/usr/lib64/ld-linux-x86-64.so.2" --inhibit-cache --library-path "$L" --list "$obj" 2>&1 | grep -v -F "$tree.tmp" | grep -E '=>|not found' || true)
    [ -z "$outside" ] || die "$(basename "$obj") needs libraries the tree does not have: $(echo $outside)"
  done
fi
got=$("${run[@]}" --version 2>&1 | head -1) || die "the unpacked QEMU does not run here: $got"
echo "$got" > "$tree.tmp/.complete"
old=; [ -L "$link" ] && old=$(readlink -f "$link")
rm -rf "$tree" && mv "$tree.tmp" "$tree"
ln -sfn "$(basename "$tree")" "$link"
# A superseded tree of this series (a newer backport came) goes: each is hundreds of MB.
if [ -n "$old" ] && [ "$old" != "$tree" ] && [ -d "$old" ]; then rm -rf "$old"; fi
log "$got in $tree ($n packages, $(( $(date +%s) - start )) s, $(du -sm "$tree" | cut -f1) MB)"
echo "$tree"
