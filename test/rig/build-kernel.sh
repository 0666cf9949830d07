#!/usr/bin/env bash
# Builds the VM rig's kernel (vkms, vgem, udmabuf, dma-heaps, VFIO mdev samples) from
# Debian's linux-source package and caches the bzImage outside the clone.
#
# Cache key = source package version + sha256 of this script's config list + the patch
# files + the script itself, so any change to what goes into the kernel rebuilds it.
# Prints the path of the bzImage on stdout's last line; progress goes to stderr.
#
# Env: GUESTPLANE_CACHE (default ~/.cache/guestplane), GUESTPLANE_KERNEL_SERIES
# (preferred linux-source series, default 7.3), GUESTPLANE_JOBS (default nproc).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${GUESTPLANE_CACHE:-$HOME/.cache/guestplane}
series=${GUESTPLANE_KERNEL_SERIES:-7.3}
jobs=${GUESTPLANE_JOBS:-$(nproc)}
min_series=6.19

log() { printf '[kernel] %s\n' "$*" >&2; }
die() { printf '[kernel] error: %s\n' "$*" >&2; exit 1; }

# Everything the rig needs, built in (no modules: the VM has no module tree).
WANT=(
  64BIT SMP PRINTK TTY SERIAL_8250 SERIAL_8250_CONSOLE PROC_FS SYSFS DEVTMPFS DEVTMPFS_MOUNT
  TMPFS SHMEM MEMFD_CREATE CONFIGFS_FS DEBUG_FS EPOLL EVENTFD TIMERFD SIGNALFD FUTEX
  POSIX_TIMERS AIO INOTIFY_USER PCI PCI_MSI ACPI BINFMT_ELF BINFMT_SCRIPT NET UNIX INET
  VIRTIO_MENU VIRTIO VIRTIO_PCI NET_9P NET_9P_VIRTIO 9P_FS DRM DRM_VKMS DRM_VGEM DMA_SHARED_BUFFER
  SYNC_FILE SW_SYNC UDMABUF DMABUF_HEAPS DMABUF_HEAPS_SYSTEM VFIO VFIO_GROUP VFIO_CONTAINER
  VFIO_IOMMU_TYPE1 VFIO_MDEV SAMPLES SAMPLE_VFIO_MDEV_MBOCHS SAMPLE_VFIO_MDEV_MDPY
  SYSCTL MULTIUSER FILE_LOCKING SYSVIPC CC_OPTIMIZE_FOR_PERFORMANCE RTC_CLASS
  ADVISE_SYSCALLS MEMBARRIER RSEQ KCMP FHANDLE
  HIGH_RES_TIMERS
  DRM_VIRTIO_GPU DRM_VIRTIO_GPU_KMS
  INPUT INPUT_EVDEV INPUT_MISC INPUT_UINPUT
  KERNEL_LZ4
)
# HIGH_RES_TIMERS: without it vkms's vblank hrtimer and every poll/epoll timeout fire on
# 4 ms ticks, which showed as page-flip latency (the C floor's p99 was 1.74 refreshes).
# -O2 instead of tinyconfig's -Os: vkms composes ~1.5x faster (field notes).
# KERNEL_LZ4 instead of tinyconfig's XZ: unpacking the XZ bzImage was ~0.6 s of QEMU CPU
# per boot under TCG (1.45 -> 0.85 s to the guest's init) and ~20 s for the nested test
# guest (qemu-dbus-guest.test.ts boots this kernel under QEMU inside the rig).
UNWANT=(CC_OPTIMIZE_FOR_SIZE KERNEL_XZ)

for tool in apt-get dpkg-deb make gcc bc bison flex sha256sum; do
  command -v "$tool" >/dev/null || die "'$tool' is missing: install it (apt-get install build-essential bc bison flex libelf-dev libssl-dev cpio)"
done
[ -e /usr/include/libelf.h ] || die "libelf-dev is missing: apt-get install libelf-dev"
[ -e /usr/include/openssl/ssl.h ] || die "libssl-dev is missing: apt-get install libssl-dev"

# --- find the source package through a private apt configuration -----------------
aptdir=$cache/apt
mkdir -p "$aptdir"/{lists/partial,cache/archives/partial,etc/preferences.d,etc/apt.conf.d}
cat > "$aptdir/etc/sources.list" <<'EOF'
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie-backports main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main
EOF
APT=(apt-get -q -o Dir::Etc::sourcelist="$aptdir/etc/sources.list" -o Dir::Etc::sourceparts=/nonexistent
     -o Dir::Etc::preferencesparts="$aptdir/etc/preferences.d" -o Dir::State::lists="$aptdir/lists"
     -o Dir::Cache="$aptdir/cache" -o Dir::State::status=/var/lib/dpkg/status -o Debug::NoLocking=1)

pick_version() {
  # newest linux-source-X.Y >= min_series, preferring the pinned series
  local names
  names=$(apt-cache -o Dir::Etc::sourcelist="$aptdir/etc/sources.list" -o Dir::Etc::sourceparts=/nonexistent \
          -o Dir::State::lists="$aptdir/lists" -o Dir::Cache="$aptdir/cache" pkgnames linux-source- 2>/dev/null \
          | grep -E '^linux-source-[0-9]+\.[0-9]+$' | sort -V || true)
  if grep -qx "linux-source-$series" <<<"$names"; then echo "linux-source-$series"; return; fi
  local best=""
  for n in $names; do
    v=${n#linux-source-}
    if [ "$(printf '%s\n%s\n' "$min_series" "$v" | sort -V | head -1)" = "$min_series" ]; then best=$n; fi
  done
  [ -n "$best" ] || die "no linux-source-* >= $min_series in trixie-backports/trixie (found: ${names:-none})"
  log "linux-source-$series is not offered any more; using $best"
  echo "$best"
}

stamp=$aptdir/lists/.updated
if [ ! -e "$stamp" ] || [ -n "$(find "$stamp" -mmin +720 2>/dev/null)" ] || [ -n "${GUESTPLANE_APT_UPDATE:-}" ]; then
  log "apt-get update (private lists in $aptdir)"
  if "${APT[@]}" update >&2; then touch "$stamp"; elif [ ! -e "$stamp" ]; then die "apt-get update of trixie-backports failed (network? deb.debian.org reachable?)"; else log "apt-get update failed; using cached lists"; fi
fi
pkg=$(pick_version)
pkgver=$(apt-cache -o Dir::Etc::sourcelist="$aptdir/etc/sources.list" -o Dir::Etc::sourceparts=/nonexistent \
         -o Dir::State::lists="$aptdir/lists" -o Dir::Cache="$aptdir/cache" policy "$pkg" | awk '/Candidate:/ {print $2}')
[ -n "$pkgver" ] && [ "$pkgver" != "(none)" ] || die "cannot resolve a version of $pkg"

key=$( { echo "$pkg=$pkgver"; printf '%s\n' "${WANT[@]}" "${UNWANT[@]}"; cat "$here"/*.patch "$0"; } | sha256sum | cut -c1-16)
out=$cache/kernel/$key
mkdir -p "$cache/kernel"
# Several processes (test runs, the demo, the bench) may want the same kernel at once:
# one builds, the others wait for it and then find it cached.
exec 9>"$cache/kernel/.lock-$key"
flock 9
if [ -s "$out/bzImage" ]; then
  log "cached: $out/bzImage ($pkg $pkgver)"
  echo "$out/bzImage"; exit 0
fi

# --- fetch and unpack -------------------------------------------------------------
src=$cache/src/$pkg-$pkgver
if [ ! -e "$src/.unpacked" ]; then
  mkdir -p "$cache/src/dl" && cd "$cache/src/dl"
  log "downloading $pkg $pkgver"
  rm -f "$pkg"_*.deb
  "${APT[@]}" download "$pkg=$pkgver" >&2 || die "apt-get download $pkg=$pkgver failed"
  deb=$(ls "$pkg"_*.deb | head -1)
  rm -rf "$src" && mkdir -p "$src"
  log "unpacking $deb"
  dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$src" --wildcards '*/linux-source-*.tar.xz'
  tarball=$(find "$src" -name 'linux-source-*.tar.xz' | head -1)
  [ -n "$tarball" ] || die "$deb has no linux-source tarball"
  tar -xJf "$tarball" -C "$src"
  rm -f "$tarball" "$deb"
  tree=$(find "$src" -maxdepth 2 -name Makefile -path '*linux-source-*' -printf '%h\n' | head -1)
  [ -n "$tree" ] || die "no kernel tree in $src"
  ln -sfn "$tree" "$src/tree"
  for p in "$here"/*.patch; do
    log "applying $(basename "$p")"
    patch -d "$src/tree" -p1 --forward < "$p" >&2 || die "patch $(basename "$p") does not apply to $pkg $pkgver: update it"
  done
  touch "$src/.unpacked"
fi
tree=$src/tree

# --- configure --------------------------------------------------------------------
build=$cache/build/$key
mkdir -p "$build"
log "configuring in $build"
make -C "$tree" O="$build" ARCH=x86_64 tinyconfig >/dev/null
args=()
for o in "${WANT[@]}"; do args+=(--enable "$o"); done
for o in "${UNWANT[@]}"; do args+=(--disable "$o"); done
for pass in 1 2; do
  "$tree/scripts/config" --file "$build/.config" "${args[@]}"
  make -C "$tree" O="$build" ARCH=x86_64 olddefconfig >/dev/null
done
missing=()
for o in "${WANT[@]}"; do grep -qx "CONFIG_$o=y" "$build/.config" || missing+=("$o"); done
[ ${#missing[@]} -eq 0 ] || die "options not =y after olddefconfig: ${missing[*]} (a dependency is missing from WANT in $0)"

# --- build --------------------------------------------------------------------------
log "make -j$jobs bzImage (about 11 minutes on 2 cores the first time; log: $build/build.log)"
start=$(date +%s)
if ! make -C "$tree" O="$build" ARCH=x86_64 -j"$jobs" bzImage > "$build/build.log" 2>&1; then
  tail -30 "$build/build.log" >&2
  die "kernel build failed; full log in $build/build.log"
fi
mkdir -p "$out"
cp "$build/arch/x86/boot/bzImage" "$out/bzImage.tmp" && mv "$out/bzImage.tmp" "$out/bzImage"
cp "$build/.config" "$out/config"
echo "$pkg $pkgver" > "$out/version"
log "built in $(( $(date +%s) - start )) s: $out/bzImage"
echo "$out/bzImage"
