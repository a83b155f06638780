#!/bin/sh
# lab-status-scale.sh: the cost of `lunferry migrate status` with many
# volumes on one proxy (issue 13's scale figure), in the lab VM:
#
#   bin/vmexec -- sh scripts/lab-status-scale.sh N LUNFERRY[:REPS] [LUNFERRY[:REPS]...]
#
# It builds the bench's scale layout (integration/bench/scale.go): one old
# and one new lab target with N file-backed LUNs each, N volumes (LUN i of
# each, identity new, no fence) prepared, cut over and hydrating at
# 64KiB/s, the host logged in to every export by the post-cutover hook (on
# iface labhost, as the lab's host). The first binary builds them; each
# binary then times `migrate status` (text and --json, REPS times each:
# its own, else $REPS, else 3), the binary's start alone (--version), and
# counts the files one volume's status opens (strace -f -e trace=openat,
# when strace is there; STRACE_ALL=1: all volumes' too, and the wall time
# per system call).
# Binaries share the state format: give an older build and a newer one to
# compare them on the same kernel objects.
set -eu
N=${1:?usage: lab-status-scale.sh N LUNFERRY [LUNFERRY...]}
shift
LF=${1%%:*}
REPS=${REPS:-3}
W=$(mktemp -d /tmp/lfscale.XXXXXX)
chmod 0755 "$W"
S=$W/state
CFG=/sys/kernel/config/target
HOSTIQN=iqn.2026-11.io.lunferry.lab:host
EXPORT_PORTAL=127.0.0.3:3260
OLDIQN=iqn.2026-11.io.lunferry.lab:scale-old
NEWIQN=iqn.2026-11.io.lunferry.lab:scale-new

ms() { echo $((($2 - $1) / 1000000)); }

# target NAME IQN PORTAL HBA: N fileio LUNs, dynamic ACLs, enabled.
target() {
	tpg=$CFG/iscsi/$2/tpgt_1
	i=0
	while [ $i -lt "$N" ]; do
		so=$CFG/core/fileio_$4/labscale-$1-$i
		mkdir -p "$so"
		printf 'fd_dev_name=%s,fd_dev_size=%d' "$W/$1-$i.img" 4194304 >"$so/control"
		echo 1 >"$so/enable"
		mkdir -p "$tpg/lun/lun_$i"
		ln -s "$so" "$tpg/lun/lun_$i/labscale_so"
		i=$((i + 1))
	done
	mkdir -p "$tpg/np/$3"
	echo 1 >"$tpg/attrib/generate_node_acls"
	echo 1 >"$tpg/attrib/cache_dynamic_acls"
	echo 0 >"$tpg/attrib/demo_mode_write_protect"
	echo 0 >"$tpg/attrib/authentication"
	echo 1 >"$tpg/enable"
}

t0=$(date +%s%N)
target old $OLDIQN 127.0.0.1:3260 91
target new $NEWIQN 127.0.0.2:3260 92

# The host: an iface of its own with its initiator name; the post-cutover
# hook logs it in to each export.
iscsiadm -m iface -I labhost -o new >/dev/null
iscsiadm -m iface -I labhost -o update -n iface.initiatorname -v $HOSTIQN >/dev/null
ISCSIADM=$(command -v iscsiadm)
{
	echo '#!/bin/sh'
	echo 'set -e'
	echo "$ISCSIADM"' -m node -T "$LUNFERRY_EXPORT_IQN" -p "$LUNFERRY_EXPORT_PORTAL" -I labhost -o new >/dev/null'
	echo "$ISCSIADM"' -m node -T "$LUNFERRY_EXPORT_IQN" -p "$LUNFERRY_EXPORT_PORTAL" -I labhost --login >/dev/null'
} >"$W/host-login"
chmod 0755 "$W/host-login"

names=""
{
	echo '{"volumes": ['
	i=0
	while [ $i -lt "$N" ]; do
		[ $i -gt 0 ] && echo ','
		printf '{"name": "s%d", "hostIQN": "%s", "throttle": "64KiB/s", "identity": "new", "fence": "none",' $i $HOSTIQN
		printf ' "old": {"portal": "127.0.0.1:3260", "iqn": "%s", "lun": %d},' $OLDIQN $i
		printf ' "new": {"portal": "127.0.0.2:3260", "iqn": "%s", "lun": %d},' $NEWIQN $i
		printf ' "export": {"iqn": "iqn.2026-11.io.lunferry.lab:proxy-export-s%d", "portals": ["%s"]},' $i $EXPORT_PORTAL
		printf ' "hooks": {"postCutover": ["%s"]}}' "$W/host-login"
		names="$names s$i"
		i=$((i + 1))
	done
	echo ']}'
} >"$W/runbook.json"

# lf ARGS...: the first binary, its output kept in setup.log (shown on
# failure).
lf() {
	"$LF" --state-dir "$S" "$@" >>"$W/setup.log" 2>&1 || {
		tail -30 "$W/setup.log"
		echo "scale: lunferry $1 $2 failed"
		exit 1
	}
}
lf volume add --runbook "$W/runbook.json"
# shellcheck disable=SC2086 # names are words
lf migrate prepare $names
# shellcheck disable=SC2086
lf migrate cutover $names
# shellcheck disable=SC2086
lf migrate start $names
t1=$(date +%s%N)
echo "scale: $N volumes prepared, cut over and started in $(ms "$t0" "$t1") ms"
echo "scale: $(ls /sys/class/iscsi_session | wc -l) iSCSI sessions, $(ls -d /sys/block/loop* | wc -l) loop devices, $(ls /sys/block | grep -c '^dm-') dm devices"

"$LF" --state-dir "$S" migrate status s0
for arg in "$@"; do
	b=${arg%%:*}
	reps=$REPS
	case $arg in *:*) reps=${arg##*:} ;; esac
	for form in text json; do
		flag=""
		[ $form = json ] && flag=--json
		r=0
		while [ $r -lt "$reps" ]; do
			a=$(date +%s%N)
			# shellcheck disable=SC2086 # no flag: no word
			"$b" --state-dir "$S" $flag migrate status >"$W/out" || echo "scale: $b $flag migrate status: exit $?"
			z=$(date +%s%N)
			echo "scale: $b status $form of $N volumes: $(ms "$a" "$z") ms (load $(cut -d' ' -f1-3 /proc/loadavg))"
			r=$((r + 1))
		done
	done
	# Every volume read live and in agreement with its state: a cheaper
	# status must not be a blinder one.
	echo "scale: $b --json lists $(grep -c '"name"' "$W/out") volumes, $(grep -c '"drift"' "$W/out") with drift, $(grep -c '"live": false' "$W/out") not live, $(grep -c '"strays"' "$W/out") stray lists"
	# The floor: starting the binary at all (no state, no kernel read).
	a=$(date +%s%N)
	"$b" --version >/dev/null
	z=$(date +%s%N)
	echo "scale: $b --version: $(ms "$a" "$z") ms (process start alone)"
	if command -v strace >/dev/null; then
		strace -f -qq -e trace=openat -o "$W/strace" "$b" --state-dir "$S" migrate status s0 >/dev/null
		echo "scale: $b status of one volume opens $(grep 'openat(' "$W/strace" | grep -vc ENOENT) files ($(grep -c 'openat(.*ENOENT' "$W/strace") more fail ENOENT)"
		grep 'openat(' "$W/strace" | sed -E 's/^[0-9]+ +//; s/openat\(AT_FDCWD, "([^"]*)".*/\1/'  | sed -E 's/[0-9]+/N/g' | sort | uniq -c | sort -rn | head -20
		if [ "${STRACE_ALL:-0}" = 1 ]; then
			strace -f -qq -e trace=openat -o "$W/strace" "$b" --state-dir "$S" migrate status >/dev/null
			echo "scale: $b status of $N volumes opens $(grep 'openat(' "$W/strace" | grep -vc ENOENT) files ($(grep -c 'openat(.*ENOENT' "$W/strace") more fail ENOENT)"
			grep 'openat(' "$W/strace" | sed -E 's/^[0-9]+ +//; s/openat\(AT_FDCWD, "([^"]*)".*/\1/'  | sed -E 's/[0-9]+/N/g' | sort | uniq -c | sort -rn | head -20
			# Where the time goes: wall time per system call.
			strace -f -c -w -o "$W/strace-c" "$b" --state-dir "$S" migrate status >/dev/null
			head -16 "$W/strace-c"
		fi
	fi
done

# A drift every binary must report: s1's LUN no longer mapped to the
# host (its mapped LUN link removed; the host loses the disk).
acl=$CFG/iscsi/iqn.2026-11.io.lunferry.lab:proxy-export-s1/tpgt_1/acls/$HOSTIQN
for l in "$acl"/lun_*/*; do
	if [ -L "$l" ]; then rm "$l"; fi
done
for arg in "$@"; do
	b=${arg%%:*}
	"$b" --state-dir "$S" --json migrate status s1 >"$W/out" || true
	echo "scale: $b after s1's mapping was removed: $(grep -c '"drift"' "$W/out") volume with drift: $(tr -d '\n' <"$W/out" | sed -E 's/.*"drift": \[([^]]*)\].*/\1/;t;s/.*/none/' | tr -s ' ')"
done
