#!/usr/bin/env bash
# scripts/deps.sh: idempotent set-up of the lunferry VM lab on Debian 12.
#
# 1. Installs the packages the lab needs (apt-get, root) when any is missing.
#    When everything is present it does nothing and needs no root.
# 2. Picks the lab kernel: the newest /lib/modules/*-amd64 that has a
#    matching /boot/vmlinuz and headers (the version comes from what Debian's
#    linux-image-amd64 meta-package installed; nothing pins an ABI number).
# 3. Builds dm-clone.ko out of tree for that kernel (Debian ships its kernels
#    with CONFIG_DM_CLONE unset) from linux-source-6.1 + linux-headers with
#    the build step of the lunferry-dm-clone-dkms package, into
#    $LUNFERRY_LAB_DIR (default <repo>/.cache/lab), and rebuilds it when the
#    kernel version, the source or header package version, or the build
#    recipe (RECIPE below) changes.
#
# Output: $LAB_DIR/kver (the lab kernel version, one line) and
# $LAB_DIR/$KVER/dm-clone.ko. The initramfs is built by integration/vm
# (no root needed) on first use.
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

# --- 3. dm-clone.ko -------------------------------------------------------
[[ -f $SRC_TARBALL ]] || die "$SRC_TARBALL missing: install linux-source-6.1"
pkgver() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo none; }
# Bump RECIPE when the steps here change (the build script's own changes
# are in its hash): cached modules are rebuilt.
RECIPE=2
inputs="kver=$KVER source=$(pkgver linux-source-6.1) headers=$(pkgver "linux-headers-$KVER") image=$(pkgver "linux-image-$KVER") recipe=$RECIPE build=$(sha256sum "$repo/scripts/packaging/dkms/build-dm-clone.sh" | cut -c1-16)"

out=$LAB_DIR/$KVER
ko=$out/dm-clone.ko
mkdir -p "$out"
if [[ -f $ko && -f $out/dm-clone.inputs && $(cat "$out/dm-clone.inputs") == "$inputs" ]]; then
	log "dm-clone.ko for $KVER up to date"
else
	log "building dm-clone.ko for $KVER (from $SRC_TARBALL)"
	build=$(mktemp -d "${TMPDIR:-/tmp}/lunferry-dmclone.XXXXXX")
	trap 'rm -rf "$build"' EXIT
	# The lunferry-dm-clone-dkms package's own build step, run the way
	# DKMS runs it (in its build directory, for one kernel).
	(cd "$build" && LUNFERRY_KERNEL_SOURCE=$SRC_TARBALL \
		bash "$repo/scripts/packaging/dkms/build-dm-clone.sh" "$KVER" "/lib/modules/$KVER/build") >"$build/make.log" 2>&1 ||
		{ tail -n 40 "$build/make.log" >&2; die "dm-clone.ko build failed for $KVER"; }
	tmpko=$(mktemp "$out/.dm-clone.ko.XXXXXX")
	install -m 0644 "$build/dm-clone.ko" "$tmpko"
	mv -f "$tmpko" "$ko"
	echo "$inputs" >"$out/dm-clone.inputs"
	log "built $ko"
fi

tmpk=$(mktemp "$LAB_DIR/.kver.XXXXXX")
echo "$KVER" >"$tmpk"
chmod 0644 "$tmpk"
mv -f "$tmpk" "$LAB_DIR/kver"
log "lab kernel $KVER, dm-clone.ko at $ko"
