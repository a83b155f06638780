#!/usr/bin/env bash
# scripts/deps.sh: idempotent set-up of the lunferry VM lab on Debian 12.
#
# 1. Installs the packages the lab needs (apt-get, root) when any is missing.
#    When everything is present it does nothing and needs no root.
# 2. Picks the lab kernel: the newest /lib/modules/*-amd64 that has a
#    matching /boot/vmlinuz and headers (the version comes from what Debian's
#    linux-image-amd64 meta-package installed; nothing pins an ABI number).
# 3. Installs the lunferry-dm-clone-dkms package built from this tree
#    (Debian ships its kernels with CONFIG_DM_CLONE unset): DKMS builds
#    dm-clone.ko for the lab kernel from linux-source-6.1 + linux-headers
#    into /lib/modules/$KVER/updates/dkms. Reinstalled when the kernel's
#    packages or the package's recipe change.
#
# Output: $LUNFERRY_LAB_DIR/kver (default <repo>/.cache/lab; the lab kernel
# version, one line) and $LAB_DIR/$KVER/dm-clone.inputs (what the
# installed module was built from). The initramfs is built by
# integration/vm (no root needed) on first use.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
LAB_DIR=${LUNFERRY_LAB_DIR:-$repo/.cache/lab}
SRC_TARBALL=${LUNFERRY_KERNEL_SOURCE:-/usr/src/linux-source-6.1.tar.xz}

PKGS=(
	qemu-system-x86 qemu-utils
	linux-image-amd64 linux-headers-amd64 linux-source-6.1
	open-iscsi busybox-static fio targetcli-fb dbus
	gcc make xz-utils bc kmod cpio e2fsprogs util-linux lsscsi sg3-utils
	dmsetup iproute2 mount
	multipath-tools udev
	tgt
)
# For the package test (TestPackageInstall installs the DKMS package);
# without its recommends (kernel headers of the running kernel: the lab's
# are already there).
PKGS_BARE=(dkms)

log() { echo "deps: $*" >&2; }
die() { echo "deps: error: $*" >&2; exit 1; }

# --- 1. packages ----------------------------------------------------------
missingOf() {
	local p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"
	done
}
mapfile -t missing < <(missingOf "${PKGS[@]}")
mapfile -t missingBare < <(missingOf "${PKGS_BARE[@]}")
if ((${#missing[@]} + ${#missingBare[@]})); then
	all="${missing[*]} ${missingBare[*]}"
	command -v apt-get >/dev/null || die "missing packages $all and no apt-get: the lab needs Debian 12 (or install them by hand)"
	[[ $(id -u) == 0 ]] || die "missing packages $all: run 'sudo make deps' once"
	log "installing $all"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	((${#missing[@]} == 0)) || apt-get install -y -q "${missing[@]}"
	((${#missingBare[@]} == 0)) || apt-get install -y -q --no-install-recommends "${missingBare[@]}"
else
	log "packages present"
fi

# --- 2. lab kernel --------------------------------------------------------
pick_kver() {
	local k
	for k in $(ls -1 /lib/modules 2>/dev/null | grep -- '-amd64$' | sort -rV); do
		if [[ -f /boot/vmlinuz-$k && -f /lib/modules/$k/build/Makefile ]]; then
			echo "$k"
			return 0
		fi
	done
	return 1
}
KVER=$(pick_kver || true)
if [[ -z $KVER ]]; then
	# An image without its headers: the meta-packages can lag behind each other.
	k=$(ls -1 /lib/modules 2>/dev/null | grep -- '-amd64$' | sort -rV | head -n1 || true)
	[[ -n $k ]] || die "no /lib/modules/*-amd64: install linux-image-amd64"
	[[ $(id -u) == 0 ]] || die "no headers for $k: run 'sudo make deps'"
	log "installing linux-headers-$k"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q "linux-headers-$k"
	KVER=$(pick_kver) || die "no kernel with both /boot/vmlinuz and headers"
fi
[[ -r /boot/vmlinuz-$KVER ]] || die "/boot/vmlinuz-$KVER is not readable by $(id -un)"

# --- 3. dm-clone through DKMS ----------------------------------------------
# The lab gets dm-clone the way a Debian proxy does: the
# lunferry-dm-clone-dkms package built from this tree, installed with dpkg,
# DKMS building the module for the lab kernel into
# /lib/modules/$KVER/updates/dkms (the guest's root is this machine's, so
# its modprobe finds it there). Reinstalled when the recipe (the package's
# files) or the kernel's packages change, not for every commit.
[[ -f $SRC_TARBALL ]] || die "$SRC_TARBALL missing: install linux-source-6.1"
pkgver() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo none; }
# Bump RECIPE when the steps here change: the package is reinstalled.
RECIPE=3
recipe=$(cat "$repo"/scripts/packaging/dkms/* "$repo"/scripts/packaging/deb/dm-clone-dkms/* | sha256sum | cut -c1-16)
inputs="kver=$KVER source=$(pkgver linux-source-6.1) headers=$(pkgver "linux-headers-$KVER") image=$(pkgver "linux-image-$KVER") recipe=$RECIPE dkms=$recipe"
out=$LAB_DIR/$KVER
stamp=$out/dm-clone.inputs
mkdir -p "$out"
dkmsInstalled() { dkms status -m lunferry-dm-clone -k "$KVER" 2>/dev/null | grep -q ': installed'; }
if [[ -f $stamp && $(cat "$stamp") == "$inputs" ]] && dkmsInstalled; then
	log "lunferry-dm-clone-dkms installed, dm-clone built by DKMS for $KVER"
else
	[[ $(id -u) == 0 ]] || die "lunferry-dm-clone-dkms is not installed for $KVER or its recipe changed: run 'sudo make deps'"
	pkgdir=$(mktemp -d "${TMPDIR:-/tmp}/lunferry-deps.XXXXXX")
	trap 'rm -rf "$pkgdir"' EXIT
	"$repo/scripts/packaging/build-deb.sh" --dkms-only "$pkgdir"
	deb=$(echo "$pkgdir"/lunferry-dm-clone-dkms_*_all.deb)
	ver=$(dpkg-deb -f "$deb" Version)
	log "installing $(basename "$deb") (DKMS builds dm-clone for $KVER)"
	# The postinst builds for the kernels DKMS picks (the running one and
	# the newest); the lab kernel may be neither.
	DEBIAN_FRONTEND=noninteractive dpkg -i "$deb" >"$pkgdir/dpkg.log" 2>&1 ||
		{ tail -n 40 "$pkgdir/dpkg.log" >&2; die "dpkg -i $(basename "$deb") failed"; }
	if ! dkms status -m lunferry-dm-clone -v "$ver" -k "$KVER" | grep -q ': installed'; then
		dkms install -m lunferry-dm-clone -v "$ver" -k "$KVER" >"$pkgdir/dkms.log" 2>&1 || {
			tail -n 40 "/var/lib/dkms/lunferry-dm-clone/$ver/build/make.log" "$pkgdir/dkms.log" >&2 2>/dev/null
			die "dkms install of lunferry-dm-clone $ver for $KVER failed"
		}
	fi
	echo "$inputs" >"$stamp"
fi
ko=$(modprobe -S "$KVER" --show-depends dm_clone 2>/dev/null | awk '$1 == "insmod" {p = $2} END {print p}')
[[ $ko == */updates/dkms/* ]] ||
	die "modprobe finds dm_clone for $KVER at '${ko:-nowhere}', not DKMS's: dkms status -m lunferry-dm-clone; run 'sudo make deps'"

tmpk=$(mktemp "$LAB_DIR/.kver.XXXXXX")
echo "$KVER" >"$tmpk"
chmod 0644 "$tmpk"
mv -f "$tmpk" "$LAB_DIR/kver"
log "lab kernel $KVER, dm-clone at $ko (lunferry-dm-clone-dkms $(pkgver lunferry-dm-clone-dkms))"
