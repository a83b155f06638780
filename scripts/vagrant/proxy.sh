#!/usr/bin/env bash
# proxy.sh: the lunferry proxy of the Vagrant lab, installed as an admin
# would (README "Install on a proxy"): lunferry's .deb and, as this is
# Debian, lunferry-dm-clone-dkms with the kernel's headers and source
# package, then the service enabled and `lunferry doctor`. The packages
# come from `make deb` run before `vagrant up` (out/ is synced to /vagrant).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
debs=(/vagrant/out/lunferry_*_amd64.deb)
dkms=(/vagrant/out/lunferry-dm-clone-dkms_*_all.deb)
[[ -f ${debs[-1]} && -f ${dkms[-1]} ]] || { echo "proxy: no packages in out/: run make deb on the host, then vagrant provision proxy" >&2; exit 1; }
series=$(uname -r | sed -E 's/^([0-9]+\.[0-9]+).*/\1/')
apt-get install -y -q "linux-headers-$(uname -r)" "linux-source-$series" dkms
apt-get install -y -q "${debs[-1]}" "${dkms[-1]}"
modprobe -a dm_mod dm_clone dm_era configfs target_core_mod target_core_iblock iscsi_target_mod iscsi_tcp
systemctl enable --now lunferry.service
lunferry doctor || echo "proxy: lunferry doctor found gaps (above)"
