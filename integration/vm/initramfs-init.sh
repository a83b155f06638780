#!/bin/busybox sh
# Stage 1 of the lunferry lab guest: /init of the initramfs built by
# integration/vm (busybox-static + the modules that mount the root).
#
# It mounts the host root read-only over 9p (tag "hostroot"), puts a tmpfs
# upper and overlayfs on top so the guest can write anywhere, mounts the
# read-write results share (tag "lunferry-lab") at /lunferry-lab in the new
# root and switch_roots into it, running the stage-2 script the host put in
# that share (guest-init.sh). Any failure powers the VM off; the host sees no
# exit status and reports a boot failure with the console tail.
/bin/busybox mkdir -p /bin /proc /sys /dev /mnt/lower /mnt/rw /mnt/root
/bin/busybox --install -s /bin
export PATH=/bin

fail() {
	echo "lunferry-lab: stage1: FAILED: $*"
	poweroff -f
	sleep 10
}

mount -t proc proc /proc || fail "mount /proc"
mount -t sysfs sysfs /sys || fail "mount /sys"
mount -t devtmpfs devtmpfs /dev || fail "mount /dev"

while read -r mod; do
	[ -n "$mod" ] || continue
	insmod "/modules/$mod" || fail "insmod $mod"
done </modules/order

p9="trans=virtio,version=9p2000.L,msize=262144"
mount -t 9p -o "$p9,ro,cache=loose" hostroot /mnt/lower || fail "mount 9p hostroot"
mount -t tmpfs -o mode=0755 tmpfs /mnt/rw || fail "mount tmpfs upper"
mkdir -p /mnt/rw/upper /mnt/rw/work
mount -t overlay -o lowerdir=/mnt/lower,upperdir=/mnt/rw/upper,workdir=/mnt/rw/work overlay /mnt/root ||
	fail "mount overlay root"
mkdir -p /mnt/root/lunferry-lab
mount -t 9p -o "$p9" lunferry-lab /mnt/root/lunferry-lab || fail "mount 9p results share"
[ -f /mnt/root/lunferry-lab/guest-init.sh ] || fail "no guest-init.sh in the results share"

mount --move /dev /mnt/root/dev || fail "move /dev"
umount /sys
umount /proc
exec switch_root /mnt/root /bin/sh /lunferry-lab/guest-init.sh
fail "switch_root"
