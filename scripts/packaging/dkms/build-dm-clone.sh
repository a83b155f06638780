#!/usr/bin/env bash
# build-dm-clone.sh KERNELVER KERNEL_BUILD_DIR: DKMS's build step of
# lunferry-dm-clone-dkms. It extracts drivers/md/dm-clone-*.c and the
# headers they include from the kernel series' own source package
# (linux-source-<major.minor>, /usr/src/linux-source-<major.minor>.tar.xz)
# and builds dm-clone.ko out of tree against KERNEL_BUILD_DIR, the way
# scripts/deps.sh builds it for the lab. Runs in DKMS's build directory.
set -euo pipefail

kver=${1:?usage: build-dm-clone.sh KERNELVER KERNEL_BUILD_DIR}
kbuild=${2:?usage: build-dm-clone.sh KERNELVER KERNEL_BUILD_DIR}
series=$(sed -E 's/^([0-9]+\.[0-9]+).*/\1/' <<<"$kver")
tarball=${LUNFERRY_KERNEL_SOURCE:-/usr/src/linux-source-$series.tar.xz}

die() { echo "lunferry-dm-clone: $*" >&2; exit 1; }
[[ -f $tarball ]] ||
	die "$tarball missing: apt-get install linux-source-$series, then: dkms autoinstall -k $kver"
[[ -f $kbuild/Makefile ]] ||
	die "no kernel build tree at $kbuild: apt-get install linux-headers-$kver, then: dkms autoinstall -k $kver"

top=$(basename "$tarball" .tar.xz)
rm -rf src
mkdir src
tar -xJf "$tarball" -C src --wildcards \
	"$top/drivers/md/dm-clone*" "$top/drivers/md/dm*.h" \
	"$top/drivers/md/persistent-data/*.h"
md=$PWD/src/$top/drivers/md
cat >"$md/Kbuild" <<'KBUILD'
obj-m += dm-clone.o
dm-clone-y := dm-clone-target.o dm-clone-metadata.o
KBUILD
make -C "$kbuild" M="$md" modules
vm=$(modinfo -F vermagic "$md/dm-clone.ko" | awk '{print $1}')
[[ $vm == "$kver" ]] || die "dm-clone.ko vermagic $vm does not match the kernel $kver"
cp "$md/dm-clone.ko" .
