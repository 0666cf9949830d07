#!/bin/busybox sh
# PID 1 of the rig VM. The host's root is our read-only root (9p); the run's
# writable share (tag "rigout") holds cmd.sh, which we run, and gets exit-code.
# A static busybox does the mounts: coreutils over 9p would cost ~2 s of execs.
bb=/bin/busybox
$bb mount -t proc proc /proc
$bb mount -t sysfs sys /sys
$bb mount -t devtmpfs dev /dev 2>/dev/null  # already mounted when DEVTMPFS_MOUNT=y
$bb mkdir -p /dev/pts /dev/shm
$bb mount -t devpts devpts /dev/pts
$bb mount -t tmpfs shm /dev/shm
$bb mount -t debugfs debugfs /sys/kernel/debug
$bb mount -t configfs configfs /sys/kernel/config
for d in /tmp /run /var/tmp /root; do $bb mount -t tmpfs tmpfs "$d"; done
$bb mount -t tmpfs tmpfs /mnt
$bb mkdir -p /mnt/rig
if ! $bb mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=none rigout /mnt/rig; then
  echo "rig-init: cannot mount the results share (tag rigout)"
  $bb poweroff -f
fi
$bb hostname rig
export HOME=/root PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin TMPDIR=/tmp LANG=C.UTF-8
export GUESTPLANE_IN_RIG=1
# llvmpipe picks AVX code paths that QEMU TCG mis-executes for linear filtering (measured crash
# in gles.test); SSE4.1 is what TCG emulates faithfully.
export GALLIUM_OVERRIDE_CPU_CAPS=sse4.1
echo "rig-init: up after $($bb cut -d' ' -f1 /proc/uptime) s"
cd /mnt/rig
/bin/sh /mnt/rig/cmd.sh
rc=$?
echo "$rc" > /mnt/rig/exit-code
$bb sync
echo "rig-init: command exited with $rc after $($bb cut -d' ' -f1 /proc/uptime) s"
$bb poweroff -f
$bb sleep 10
