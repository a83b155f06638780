#!/usr/bin/env bash
# array.sh NAME IQN SIZE PORTAL_IP ACL...: makes this machine a SAN array
# of the Vagrant lab: one LIO iSCSI target IQN with one LUN over a
# SIZE-byte file, listening on PORTAL_IP:3260, admitting exactly the
# initiators ACL..., saved so that it comes back after a reboot (targetcli's
# own restore unit), the way an array keeps its LUNs. Idempotent.
set -euo pipefail
name=$1 iqn=$2 size=$3 ip=$4
shift 4
export DEBIAN_FRONTEND=noninteractive
dpkg-query -W -f='${Status}' targetcli-fb 2>/dev/null | grep -q 'ok installed' ||
	{ apt-get update -q && apt-get install -y -q targetcli-fb; }
modprobe -a target_core_mod target_core_file iscsi_target_mod
systemctl enable --now rtslib-fb-targetctl.service

store=/var/lib/lunferry-lab/$name.img
mkdir -p "$(dirname "$store")"
[[ -f $store ]] || truncate -s "$size" "$store"
tc() { targetcli "$@" >/dev/null; }
tpg=/sys/kernel/config/target/iscsi/$iqn/tpgt_1
if ! compgen -G "/sys/kernel/config/target/core/fileio_*/$name" >/dev/null; then
	tc /backstores/fileio create "$name" "$store" "$size" write_back=false
fi
if [[ ! -d $tpg ]]; then
	tc /iscsi create "$iqn"
	tc "/iscsi/$iqn/tpg1/luns" create "/backstores/fileio/$name"
	tc "/iscsi/$iqn/tpg1/portals" delete 0.0.0.0 3260 || true
	tc "/iscsi/$iqn/tpg1/portals" create "$ip" 3260
fi
for who in "$@"; do
	[[ -d $tpg/acls/$who ]] || tc "/iscsi/$iqn/tpg1/acls" create "$who"
done
tc saveconfig
echo "array $name: $iqn on $ip:3260 for $*"
