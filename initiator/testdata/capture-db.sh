#!/bin/sh
# Captures iscsiadm's answers to the node-database operations lunferry uses
# (iface, node and discovery records, logout without session) into
# iscsiadm/<case>.txt, the transcripts the unit tests replay.
#
# Run as root, where iscsid does not run. It works on any machine with open-iscsi installed, with or
# without iscsid or the iSCSI kernel modules: it runs in a private mount
# namespace with a tmpfs over /etc/iscsi (kept: initiatorname.iscsi and
# iscsid.conf) and /run/lock, so the system's records are not touched.
#   sudo initiator/testdata/capture-db.sh
# Answers that need a target (discovery, login) are captured by the kernel
# tests (LUNFERRY_CAPTURE_DIR, see initiator_kernel_test.go).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
if [ "${LUNFERRY_CAPTURE_NS:-}" != 1 ]; then
	exec env LUNFERRY_CAPTURE_NS=1 unshare -m --propagation private sh "$here/capture-db.sh" "$@"
fi
keep=$(mktemp -d)
cp /etc/iscsi/initiatorname.iscsi /etc/iscsi/iscsid.conf "$keep"/ 2>/dev/null || true
mount -t tmpfs tmpfs /etc/iscsi
cp "$keep"/* /etc/iscsi/ 2>/dev/null || true
mkdir -p /run/lock && mount -t tmpfs tmpfs /run/lock
out="$here/iscsiadm"
mkdir -p "$out"

# cap NAME ARGS...: run iscsiadm ARGS and write the transcript.
cap() {
	name=$1; shift
	set +e
	iscsiadm "$@" >"$keep/o" 2>"$keep/e"
	rc=$?
	set -e
	{
		printf '$ iscsiadm %s\n' "$*"
		printf 'exit %d\n' "$rc"
		echo '--- stdout'
		cat "$keep/o"
		echo '--- stderr'
		# systemctl's complaints when iscsid is socket-activated but
		# systemd is not running are not iscsiadm's output.
		grep -v -e 'booted with systemd' -e 'Failed to connect to bus' "$keep/e" || true
	} >"$out/$name.txt"
}

T=iqn.2003-01.org.linux-iscsi.lab:t1
cap iface-new -m iface -I lunferry -o new
cap iface-new-again -m iface -I lunferry -o new
cap node-new -m node -T $T -p 192.0.2.10:3260,1 -I lunferry -o new
cap node-new-ipv6 -m node -T $T -p '[2001:db8::10]:3260,1' -I lunferry -o new
cap node-update -m node -T $T -p 192.0.2.10:3260,1 -I lunferry -o update \
	-n node.session.timeo.replacement_timeout -v 120 \
	-n 'node.conn[0].timeo.noop_out_interval' -v 5 \
	-n 'node.conn[0].timeo.noop_out_timeout' -v 10 \
	-n 'node.conn[0].timeo.login_timeout' -v 15 \
	-n node.session.initial_login_retry_max -v 4 \
	-n node.session.auth.authmethod -v CHAP
cp "/etc/iscsi/nodes/$T/192.0.2.10,3260,1/lunferry" "$here/node-record.txt"
# iscsid is not running in the namespace's view (nor, usually, on the
# capturing machine): the login answer is "could not connect to iscsid".
cap login-no-iscsid -m node -T $T -p 192.0.2.10:3260,1 -I lunferry --login
cap node-update-no-record -m node -T iqn.2003-01.org.linux-iscsi.lab:none -p 192.0.2.10:3260,1 -I lunferry -o update -n node.session.auth.authmethod -v CHAP
cap node-update-bad-key -m node -T $T -p 192.0.2.10:3260,1 -I lunferry -o update -n node.bogus -v 1
cap logout-no-session -m node -T $T -p 192.0.2.10:3260,1 -I lunferry --logout
cap session-none -m session
cap rescan-no-session -m node -T $T -p 192.0.2.10:3260,1 -I lunferry --rescan
cap discoverydb-new -m discoverydb -t sendtargets -p 192.0.2.10:3260 -o new
cap discoverydb-update -m discoverydb -t sendtargets -p 192.0.2.10:3260 -o update -n discovery.sendtargets.auth.authmethod -v CHAP
cp /etc/iscsi/send_targets/192.0.2.10,3260/st_config "$here/st-record.txt"
cap discoverydb-delete -m discoverydb -t sendtargets -p 192.0.2.10:3260 -o delete
cap node-delete -m node -T $T -p 192.0.2.10:3260,1 -I lunferry -o delete
cap node-delete-again -m node -T $T -p 192.0.2.10:3260,1 -I lunferry -o delete
cap node-new-no-iface -m node -T $T -p 192.0.2.10:3260,1 -I nosuchiface -o new
echo "captured $(iscsiadm --version) into $out" >&2
