#!/usr/bin/env bash
# version.sh: the packages' version. A tag vX.Y.Z on HEAD gives X.Y.Z;
# otherwise 0.0~git<commit time>.<commit>, which sorts before any release
# and after every earlier commit.
set -euo pipefail
cd "$(dirname "$0")/../.."
if tag=$(git describe --tags --exact-match --match 'v[0-9]*' 2>/dev/null); then
	echo "${tag#v}"
else
	echo "0.0~git$(TZ=UTC git log -1 --format=%cd --date=format-local:%Y%m%d%H%M%S).$(git rev-parse --short=7 HEAD)"
fi
