#!/bin/sh
# Stage 2 of the lunferry lab guest: PID 1 inside the overlay root (host root
# read-only over 9p + tmpfs upper). The host puts this file, lab.env and
# job.sh into the read-write share mounted at /lunferry-lab.
#
# It loads the modules the kernel tests need (a module that does not load is
# a lab failure, never a skip), mounts configfs, brings up lo, starts iscsid
# and a system D-Bus, prints one banner line the host parses
#   lunferry-lab: ready kernel=<uname -r> dm-clone=<version> uptime=<s> modules=<s>
# then runs job.sh with its output copied to the share (output), the second
# serial port (live view on the host) and finally writes the exit status to
# the share (status) and powers off. A set-up failure is written to
# setup-error instead.
LAB=/lunferry-lab
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
. "$LAB/lab.env"

fail() {
	echo "lunferry-lab: FAILED: $*"
	echo "$*" >"$LAB/setup-error"
	sync
	/bin/busybox poweroff -f
	sleep 10
}

mount -t proc proc /proc || fail "mount /proc"
mount -t sysfs sysfs /sys || fail "mount /sys"
mkdir -p /dev/pts /dev/shm
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/lock /run/dbus /run/lock/iscsi /var/lock /etc/target
ln -sf /proc/self/fd /dev/fd 2>/dev/null
ln -sf /proc/self/fd/0 /dev/stdin 2>/dev/null
ln -sf /proc/self/fd/1 /dev/stdout 2>/dev/null
ln -sf /proc/self/fd/2 /dev/stderr 2>/dev/null
hostname lunferry-lab
# /tmp stays on the overlay: writable, and the host's go test binaries under
# /tmp/go-build* remain visible at the same path.
chmod 1777 /tmp

t0=$(cut -d' ' -f1 /proc/uptime)
# modprobe -a loads a whole list in one process (each exec is expensive under
# emulation); on failure the list is retried one by one to name the culprit.
load() {
	modprobe -a "$@" 2>/dev/null && return 0
	for m in "$@"; do
		modprobe "$m" || fail "modprobe $m (kernel $(uname -r))"
	done
}
load virtio_blk dm_mod dm_bufio dm_persistent_data dm_bio_prison
# dm_clone as DKMS installed it (make deps installs lunferry-dm-clone-dkms);
# the host checked modprobe resolves it to DM_CLONE_KO, checked again here.
modprobe dm_clone || fail "modprobe dm_clone: no module for $(uname -r): run 'make deps'"
mod=$(modinfo -n dm_clone)
[ "$mod" = "$DM_CLONE_KO" ] || fail "dm_clone loaded from $mod, want the DKMS module $DM_CLONE_KO"
load dm_snapshot dm_era configfs target_core_mod target_core_iblock target_core_file \
	iscsi_target_mod iscsi_tcp sd_mod loop brd
modprobe target_core_user 2>/dev/null || echo "lunferry-lab: target_core_user not available (optional)"
t1=$(cut -d' ' -f1 /proc/uptime)

mountpoint -q /sys/kernel/config || mount -t configfs configfs /sys/kernel/config ||
	fail "mount configfs"
ip link set lo up || fail "ip link set lo up"

echo "InitiatorName=$INITIATOR_NAME" >/etc/iscsi/initiatorname.iscsi
iscsid || fail "start iscsid"
i=0
while :; do
	iscsiadm -m session >/dev/null 2>&1
	rc=$?
	# 0: sessions listed, 21: no sessions; both mean iscsid answered.
	[ $rc -eq 0 ] || [ $rc -eq 21 ] && break
	i=$((i + 1))
	[ $i -lt 100 ] || fail "iscsid did not answer within 10 s (iscsiadm rc $rc)"
	sleep 0.1
done

if command -v dbus-daemon >/dev/null 2>&1; then
	dbus-daemon --system --fork --nopidfile >/dev/null 2>&1 ||
		echo "lunferry-lab: dbus-daemon did not start (targetcli needs it)"
fi

clone=$(dmsetup targets 2>/dev/null | awk '$1 == "clone" {print $2}')
[ -n "$clone" ] || fail "device-mapper has no clone target after loading $DM_CLONE_KO"
mods=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b - a}')
up=$(cut -d' ' -f1 /proc/uptime)
echo "lunferry-lab: ready kernel=$(uname -r) dm-clone=$clone uptime=$up modules=${mods}s module=$mod"

out=/dev/null
if [ -c /dev/ttyS1 ]; then
	stty -F /dev/ttyS1 raw -echo 2>/dev/null
	out=/dev/ttyS1
fi
# The command writes into a FIFO read by tee. Its exit status is recorded as
# soon as it exits, even if a daemon it started still holds the FIFO open;
# tee then gets a few seconds to drain before it is stopped.
# Near the host's timeout, dump the blocked tasks to the console (raising the
# console log level: the dump is printed at KERN_INFO) so a hang's report
# says where the kernel is stuck. The guest clock starts from the host's RTC.
left=$((HANG_DUMP_AT - $(date +%s)))
if [ "$left" -gt 0 ]; then
	(
		sleep "$left"
		echo "lunferry-lab: the command is still running near the timeout; blocked tasks:"
		echo 7 >/proc/sys/kernel/printk
		echo 1 >/proc/sys/kernel/sysrq
		echo w >/proc/sysrq-trigger
	) >/dev/console 2>&1 &
fi
mkfifo /run/lunferry-lab.out || fail "mkfifo"
{
	tee "$LAB/output" </run/lunferry-lab.out >"$out"
	: >/run/lunferry-lab.tee-done
} &
tee_pid=$!
/bin/sh "$LAB/job.sh" </dev/null >/run/lunferry-lab.out 2>&1
echo $? >"$LAB/status.tmp"
i=0
while [ ! -e /run/lunferry-lab.tee-done ] && [ $i -lt 50 ]; do
	sleep 0.1
	i=$((i + 1))
done
[ -e /run/lunferry-lab.tee-done ] || {
	echo "lunferry-lab: the command left processes holding its output open; stopping the copy"
	kill $tee_pid 2>/dev/null
}
mv "$LAB/status.tmp" "$LAB/status"
sync
/bin/busybox poweroff -f
sleep 10
