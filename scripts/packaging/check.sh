#!/usr/bin/env bash
# check.sh [OUTDIR]: checks the packages build-deb.sh left in OUTDIR
# (default out/), without installing them:
#   1. lists their contents (dpkg -c);
#   2. systemd-analyze verify on lunferry.service inside the extracted
#      package (with the system's own units beside it); any message fails;
#   3. lintian, failing on errors and warnings (overrides: lintian-notes.md);
#   4. lunferry-dm-clone-dkms: dkms add + build for the newest kernel with
#      headers and its series' linux-source, in a private DKMS tree (nothing
#      is installed; skipped with a message when no such kernel is here).
# Installs lintian and dkms when missing (root, apt-get), as deps.sh does.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=${1:-$repo/out}
VERSION=$("$here/version.sh")
deb=$out/lunferry_${VERSION}_amd64.deb
dkmsdeb=$out/lunferry-dm-clone-dkms_${VERSION}_all.deb

log() { echo "package-check: $*" >&2; }
die() { echo "package-check: FAIL: $*" >&2; exit 1; }
[[ -f $deb && -f $dkmsdeb ]] || die "no packages for $VERSION in $out: run make deb"

missing=()
for p in lintian dkms; do command -v "$p" >/dev/null || missing+=("$p"); done
if ((${#missing[@]})); then
	[[ $(id -u) == 0 ]] && command -v apt-get >/dev/null || die "missing ${missing[*]}: apt-get install ${missing[*]}"
	log "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q >/dev/null
	apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/lunferry-pkgcheck.XXXXXX")
trap 'rm -rf "$work"' EXIT

# 1. contents
dpkg -c "$deb"
dpkg -c "$dkmsdeb"

# 2. the unit, as installed
root=$work/root
dpkg-deb -x "$deb" "$root"
cp -an /lib/systemd/system/. "$root/lib/systemd/system/"
msgs=$(MANPATH=$root/usr/share/man systemd-analyze verify --root="$root" "$root/lib/systemd/system/lunferry.service" 2>&1) ||
	die "systemd-analyze verify: $msgs"
[[ -z $msgs ]] || die "systemd-analyze verify: $msgs"
log "systemd-analyze verify lunferry.service: clean"

# 3. lintian
lintian --pedantic --info --fail-on error,warning "$deb" "$dkmsdeb" || die "lintian (see scripts/packaging/lintian-notes.md)"
log "lintian: clean (overrides: scripts/packaging/lintian-notes.md)"

# 4. DKMS build of dm-clone
kver=$(ls -1 /lib/modules 2>/dev/null | sort -rV | while read -r k; do
	[[ -f /lib/modules/$k/build/Makefile && -f /usr/src/linux-source-$(sed -E 's/^([0-9]+\.[0-9]+).*/\1/' <<<"$k").tar.xz ]] && { echo "$k"; break; }
done || true)
if [[ -z $kver ]]; then
	log "SKIP dkms build: no kernel here with both headers and its linux-source package (scripts/deps.sh installs them)"
	exit 0
fi
dpkg-deb -x "$dkmsdeb" "$work/dkms-root"
mkdir "$work/dkms-tree"
tree=(--sourcetree "$work/dkms-root/usr/src" --dkmstree "$work/dkms-tree")
dkms add -m lunferry-dm-clone -v "$VERSION" "${tree[@]}" >/dev/null
dkms build -m lunferry-dm-clone -v "$VERSION" -k "$kver" "${tree[@]}" >"$work/dkms.log" 2>&1 ||
	{ cat "$work/dkms.log" >&2; die "dkms build for $kver"; }
ko=$(find "$work/dkms-tree" -name 'dm-clone.ko*' -path "*/$kver/*" | head -n1)
[[ -n $ko && $(modinfo -F vermagic "$ko" | awk '{print $1}') == "$kver" ]] || die "dkms built no dm-clone.ko for $kver"
log "dkms built dm-clone.ko for $kver"
