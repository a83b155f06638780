#!/bin/sh
# Captures iscsiadm's answers that need a live target (discovery, login,
# CHAP success and failure, ACL refusal, unreachable portal, logout) and a
# session's sysfs attributes, inside the lunferry lab VM.
#
# On the host (after `make lab`):
#   initiator/testdata/capture-vm.sh
# boots the lab with bin/vmexec, runs itself there and splits the output
# into iscsiadm/<case>.txt and sysfs-session.txt. The target is built with
# raw configfs writes (fileio on /tmp, 127.0.0.1:3260); the secrets are test
# values, so this script may pass them through iscsiadm -v (lunferry never
# does).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
if [ "${LUNFERRY_IN_VM:-}" != 1 ]; then
	repo=$(cd "$here/../.." && pwd)
	tmp=$(mktemp)
	rc=0
	"$repo/bin/vmexec" -- sh "$here/capture-vm.sh" >"$tmp" 2>&1 || rc=$?
	awk -v dir="$here" '
		/^=== transcript / { f = dir "/iscsiadm/" $3 ".txt"; printf "" > f; next }
		/^=== sysfs / { f = dir "/" $3; printf "" > f; next }
		/^=== end/ { f = ""; next }
		f != "" { print >> f }
	' "$tmp"
	grep -E '^=== (transcript|sysfs) ' "$tmp" | sed 's/^=== /captured /'
	grep -v -e '^=== ' "$tmp" | grep -e 'capture' -e 'vmexec' >&2 || true
	rm -f "$tmp"
	exit $rc
fi
# In the VM: a failing step must not stop the captures after it.
set +e

C=/sys/kernel/config/target
INI=$(sed -n 's/^InitiatorName=//p' /etc/iscsi/initiatorname.iscsi)
T1=iqn.2003-01.org.linux-iscsi.lab:t1
T2=iqn.2003-01.org.linux-iscsi.lab:t2
NP=127.0.0.1:3260
work=$(mktemp -d)

# cap NAME ARGS...: run iscsiadm ARGS, print the transcript framed for the
# host-side splitter.
cap() {
	name=$1; shift
	set +e
	iscsiadm "$@" >"$work/o" 2>"$work/e"
	rc=$?
	set -e
	echo "=== transcript $name"
	printf '$ iscsiadm %s\n' "$*"
	printf 'exit %d\n' "$rc"
	echo '--- stdout'
	cat "$work/o"
	echo '--- stderr'
	cat "$work/e"
	echo "=== end"
}

# target IQN TPGT: a fileio LUN 0 on $NP admitting $INI without CHAP.
target() {
	iqn=$1; name=cap$2
	truncate -s 8M "/tmp/$name.img"
	mkdir -p "$C/core/fileio_$2/$name"
	echo "fd_dev_name=/tmp/$name.img,fd_dev_size=8388608" >"$C/core/fileio_$2/$name/control"
	echo 1 >"$C/core/fileio_$2/$name/enable"
	tpg=$C/iscsi/$iqn/tpgt_1
	mkdir -p "$tpg/lun/lun_0"
	ln -s "$C/core/fileio_$2/$name" "$tpg/lun/lun_0/$name"
	mkdir "$tpg/np/$NP"
	mkdir -p "$tpg/acls/$INI/lun_0"
	ln -s "$tpg/lun/lun_0" "$tpg/acls/$INI/lun_0/lun0"
	echo 0 >"$tpg/attrib/generate_node_acls"
	echo 0 >"$tpg/attrib/authentication"
	echo 1 >"$tpg/enable"
}

target $T1 1
N1="-m node -T $T1 -p $NP,1 -I lunferry"

cap discovery -m discovery -t sendtargets -p $NP -o nonpersistent
cap discovery-unreachable -m discovery -t sendtargets -p 127.0.0.9:3260 -o nonpersistent
cap iface-new-vm -m iface -I lunferry -o new
cap node-new-vm $N1 -o new
cap node-update-vm $N1 -o update -n node.session.timeo.replacement_timeout -v 37 \
	-n 'node.conn[0].timeo.noop_out_interval' -v 6 -n 'node.conn[0].timeo.noop_out_timeout' -v 11 \
	-n 'node.conn[0].timeo.login_timeout' -v 15 -n node.session.initial_login_retry_max -v 4 \
	-n node.session.auth.authmethod -v None
cap login $N1 --login
sleep 1
s=$(ls -d /sys/class/iscsi_session/session* | head -1)
echo "=== sysfs sysfs-session.txt"
echo "# readlink -f $s"; readlink -f "$s"
echo "# readlink $s/device"; readlink "$s/device"
for a in targetname tpgt state ifacename recovery_tmo initiatorname; do
	printf '%s = %s\n' "$a" "$(cat "$s/$a" 2>&1)"
done
for c in "$s"/device/connection*/iscsi_connection/connection*; do
	echo "# $c"
	for a in persistent_address persistent_port address port recv_tmo ping_tmo state; do
		printf '%s = %s\n' "$a" "$(cat "$c/$a" 2>&1)"
	done
done
for b in "$s"/device/target*/*:*:*:*/block/*; do
	echo "# $b"
	for a in dev size ro queue/logical_block_size queue/physical_block_size; do
		printf '%s = %s\n' "$a" "$(cat "$b/$a" 2>&1)"
	done
	echo "# ls -l /dev/$(basename "$b")"; ls -l "/dev/$(basename "$b")" 2>&1
done
echo "# find $(readlink -f "$s/device") -maxdepth 3"
find "$(readlink -f "$s/device")" -maxdepth 3 | sed "s|$(readlink -f "$s/device")|SESSION|"
echo "=== end"
cap login-again $N1 --login
cap session -m session
cap rescan $N1 --rescan
cap logout $N1 --logout
cap logout-again $N1 --logout
cap node-delete-vm $N1 -o delete

# Login to a target name the portal does not have.
cap node-new-unknown -m node -T iqn.2003-01.org.linux-iscsi.lab:nosuch -p $NP,1 -I lunferry -o new
cap login-unknown-target -m node -T iqn.2003-01.org.linux-iscsi.lab:nosuch -p $NP,1 -I lunferry --login
iscsiadm -m node -T iqn.2003-01.org.linux-iscsi.lab:nosuch -p $NP,1 -I lunferry -o delete

# Login to a portal nobody listens on (one try, short timeout).
iscsiadm -m node -T $T1 -p 127.0.0.9:3260,1 -I lunferry -o new >/dev/null
iscsiadm -m node -T $T1 -p 127.0.0.9:3260,1 -I lunferry -o update -n node.session.initial_login_retry_max -v 1 -n 'node.conn[0].timeo.login_timeout' -v 3
cap login-unreachable -m node -T $T1 -p 127.0.0.9:3260,1 -I lunferry --login
iscsiadm -m node -T $T1 -p 127.0.0.9:3260,1 -I lunferry -o delete

# CHAP: target requires it; right and wrong secrets. LIO keeps a trailing
# newline as part of the value: write auth attributes without one.
tpg=$C/iscsi/$T1/tpgt_1
echo 1 >"$tpg/attrib/authentication"
printf %s lunferry-user >"$tpg/acls/$INI/auth/userid"
printf %s lunferry-secret-1 >"$tpg/acls/$INI/auth/password"
iscsiadm $N1 -o new >/dev/null
cap login-no-chap $N1 --login
iscsiadm $N1 -o update -n node.session.auth.authmethod -v CHAP -n node.session.auth.username -v lunferry-user -n node.session.auth.password -v wrong-secret-9
cap login-chap-wrong $N1 --login
iscsiadm $N1 -o update -n node.session.auth.password -v lunferry-secret-1
cap login-chap $N1 --login
iscsiadm $N1 --logout >/dev/null
# Mutual CHAP: the initiator checks the target's secret.
printf %s target-user >"$tpg/acls/$INI/auth/userid_mutual"
printf %s target-secret-2 >"$tpg/acls/$INI/auth/password_mutual"
iscsiadm $N1 -o update -n node.session.auth.username_in -v target-user -n node.session.auth.password_in -v bad-target-secret
cap login-mutual-wrong $N1 --login
iscsiadm $N1 -o update -n node.session.auth.password_in -v target-secret-2
cap login-mutual $N1 --login
iscsiadm $N1 --logout >/dev/null
iscsiadm $N1 -o delete

# ACL refusal: a target whose only ACL is another initiator's.
target $T2 2
tpg2=$C/iscsi/$T2/tpgt_1
rm "$tpg2/acls/$INI/lun_0/lun0"; rmdir "$tpg2/acls/$INI/lun_0" "$tpg2/acls/$INI"
mkdir -p "$tpg2/acls/iqn.2026-11.io.lunferry.lab:someone-else"
iscsiadm -m node -T $T2 -p $NP,1 -I lunferry -o new >/dev/null
cap login-acl-refused -m node -T $T2 -p $NP,1 -I lunferry --login
iscsiadm -m node -T $T2 -p $NP,1 -I lunferry -o delete

# Discovery with CHAP through a discovery record.
echo 1 >"$C/iscsi/discovery_auth/enforce_discovery_auth"
printf %s disc-user >"$C/iscsi/discovery_auth/userid"
printf %s disc-secret-3 >"$C/iscsi/discovery_auth/password"
cap discovery-no-chap -m discovery -t sendtargets -p $NP -o nonpersistent
iscsiadm -m discoverydb -t sendtargets -p $NP -o new >/dev/null
iscsiadm -m discoverydb -t sendtargets -p $NP -o update -n discovery.sendtargets.auth.authmethod -v CHAP -n discovery.sendtargets.auth.username -v disc-user -n discovery.sendtargets.auth.password -v disc-secret-3
cap discoverydb-discover -m discoverydb -t sendtargets -p $NP --discover -o nonpersistent
iscsiadm -m discoverydb -t sendtargets -p $NP -o update -n discovery.sendtargets.auth.password -v wrong-secret-4
cap discoverydb-discover-wrong -m discoverydb -t sendtargets -p $NP --discover -o nonpersistent
iscsiadm -m discoverydb -t sendtargets -p $NP -o delete
echo 0 >"$C/iscsi/discovery_auth/enforce_discovery_auth"
# Discovery credentials offered to a portal that wants none (LIO's default).
printf %s NULL >"$C/iscsi/discovery_auth/userid"
printf %s NULL >"$C/iscsi/discovery_auth/password"
iscsiadm -m discoverydb -t sendtargets -p $NP -o new >/dev/null
iscsiadm -m discoverydb -t sendtargets -p $NP -o update -n discovery.sendtargets.auth.authmethod -v CHAP -n discovery.sendtargets.auth.username -v disc-user -n discovery.sendtargets.auth.password -v disc-secret-3
cap discoverydb-discover-not-wanted -m discoverydb -t sendtargets -p $NP --discover -o nonpersistent
iscsiadm -m discoverydb -t sendtargets -p $NP -o delete
echo "capture done" >&2
