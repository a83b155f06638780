#!/usr/bin/env bash
# initiator.sh IQN [PACKAGE...]: open-iscsi with initiator name IQN (the
# name the arrays' ACLs admit), plus PACKAGEs. Idempotent.
set -euo pipefail
iqn=$1
shift
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q open-iscsi "$@"
if ! grep -qx "InitiatorName=$iqn" /etc/iscsi/initiatorname.iscsi; then
	echo "InitiatorName=$iqn" >/etc/iscsi/initiatorname.iscsi
	systemctl restart iscsid.service || true
fi
systemctl enable --now iscsid.service
