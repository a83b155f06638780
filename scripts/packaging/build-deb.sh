#!/usr/bin/env bash
# build-deb.sh [--dkms-only] [OUTDIR]: builds the Debian packages into
# OUTDIR (default out/) from staged trees with dpkg-deb (--dkms-only: the
# second alone, which needs no go; scripts/deps.sh installs it for the lab):
#   lunferry_<version>_amd64.deb              static binary, systemd unit, man
#                                             pages, completion, /etc/lunferry,
#                                             README
#   lunferry-dm-clone-dkms_<version>_all.deb  DKMS recipe for dm-clone.ko
# The version comes from version.sh; DEB_MAINTAINER overrides the
# Maintainer field. Needs go and dpkg-deb (no root).
set -euo pipefail

dkmsOnly=
if [[ ${1:-} == --dkms-only ]]; then
	dkmsOnly=1
	shift
fi
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=$(mkdir -p "${1:-$repo/out}" && cd "${1:-$repo/out}" && pwd)
GO=${GO:-go}
VERSION=$("$here/version.sh")
MAINTAINER=${DEB_MAINTAINER:-lunferry maintainers <maintainers@lunferry.invalid>}
# Every file's time is the commit's, so that a rebuild gives the same bytes.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$repo" log -1 --format=%ct)}

work=$(mktemp -d "${TMPDIR:-/tmp}/lunferry-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT

log() { echo "deb: $*" >&2; }

# stage_lunferry DIR: the lunferry package's files.
stage_lunferry() {
	local d=$1 bin=$1/usr/sbin/lunferry doc=$1/usr/share/doc/lunferry
	(cd "$repo" && CGO_ENABLED=0 GOOS=linux GOARCH=amd64 "$GO" build -trimpath -buildvcs=false \
		-ldflags "-s -w -X main.version=$VERSION" -o "$bin" ./cmd/lunferry)
	"$bin" man "$work/man"
	install -d -m 0755 "$d/usr/share/man/man8"
	for page in "$work"/man/*.8; do
		gzip -9n <"$page" >"$d/usr/share/man/man8/$(basename "$page").gz"
	done
	install -d -m 0755 "$d/usr/share/bash-completion/completions" "$d/usr/share/zsh/vendor-completions"
	"$bin" completion bash >"$d/usr/share/bash-completion/completions/lunferry"
	"$bin" completion zsh >"$d/usr/share/zsh/vendor-completions/_lunferry"
	install -D -m 0644 "$here/lunferry.service" "$d/lib/systemd/system/lunferry.service"
	install -D -m 0644 "$here/lunferry.env" "$d/etc/lunferry/lunferry.env"
	install -d -m 0755 "$doc"
	gzip -9n <"$repo/README.md" >"$doc/README.md.gz"
	changelog "lunferry" | gzip -9n >"$doc/changelog.gz"
	"$here/copyright.sh" "$bin" >"$doc/copyright"
	install -D -m 0644 "$here/deb/lunferry/lintian-overrides" "$d/usr/share/lintian/overrides/lunferry"
	control "$d" "$here/deb/lunferry"
}

# stage_dkms DIR: the DKMS package's files.
stage_dkms() {
	local d=$1 src=$1/usr/src/lunferry-dm-clone-$VERSION doc=$1/usr/share/doc/lunferry-dm-clone-dkms
	install -d -m 0755 "$src" "$doc"
	sed "s|@VERSION@|$VERSION|g" "$here/dkms/dkms.conf.in" >"$src/dkms.conf"
	chmod 0644 "$src/dkms.conf"
	install -m 0755 "$here/dkms/build-dm-clone.sh" "$src/build-dm-clone.sh"
	changelog "lunferry-dm-clone-dkms" | gzip -9n >"$doc/changelog.gz"
	"$here/copyright.sh" >"$doc/copyright"
	control "$d" "$here/deb/dm-clone-dkms"
}

# changelog PACKAGE: a one-entry changelog for this build (a native
# package's: the version has no Debian revision).
changelog() {
	printf '%s (%s) unstable; urgency=medium\n\n  * Built from lunferry commit %s.\n\n -- %s  %s\n' \
		"$1" "$VERSION" "$(git -C "$repo" rev-parse --short=12 HEAD)" "$MAINTAINER" \
		"$(date -u -R -d "@$SOURCE_DATE_EPOCH")"
}

# control DIR SRC: DEBIAN/ from SRC (control.in, maintainer scripts,
# conffiles) with the version, maintainer, size and md5sums filled in.
control() {
	local d=$1 src=$2 f
	install -d -m 0755 "$d/DEBIAN"
	(cd "$d" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) >"$d/DEBIAN/md5sums"
	sed -e "s|@VERSION@|$VERSION|g" -e "s|@MAINTAINER@|$MAINTAINER|g" \
		-e "s|@SIZE@|$(du -sk --exclude=DEBIAN "$d" | cut -f1)|g" "$src/control.in" >"$d/DEBIAN/control"
	for f in postinst prerm postrm; do
		[[ -f $src/$f ]] && sed "s|@VERSION@|$VERSION|g" "$src/$f" >"$d/DEBIAN/$f" && chmod 0755 "$d/DEBIAN/$f"
	done
	[[ -f $src/conffiles ]] && install -m 0644 "$src/conffiles" "$d/DEBIAN/conffiles"
	chmod 0644 "$d/DEBIAN/control" "$d/DEBIAN/md5sums"
	find "$d" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
}

umask 022
stage_dkms "$work/dkms"
dpkg-deb --root-owner-group -Zxz --build "$work/dkms" "$out/lunferry-dm-clone-dkms_${VERSION}_all.deb" >/dev/null
if [[ -n $dkmsOnly ]]; then
	log "built $out/lunferry-dm-clone-dkms_${VERSION}_all.deb"
	exit 0
fi
stage_lunferry "$work/lunferry"
dpkg-deb --root-owner-group -Zxz --build "$work/lunferry" "$out/lunferry_${VERSION}_amd64.deb" >/dev/null
log "built $out/lunferry_${VERSION}_amd64.deb and $out/lunferry-dm-clone-dkms_${VERSION}_all.deb"
