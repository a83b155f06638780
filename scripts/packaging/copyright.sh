#!/usr/bin/env bash
# copyright.sh [BINARY]: the packages' /usr/share/doc/*/copyright. With a
# Go BINARY it adds the license of every module linked into it and of Go's
# standard library (read from the module cache and GOROOT); Apache-2.0
# texts are referred to in /usr/share/common-licenses, as Debian asks.
set -euo pipefail
GO=${GO:-go}
repo=$(cd "$(dirname "$0")/../.." && pwd)

first=$(git -C "$repo" log --format=%cd --date=format:%Y | tail -n1)
last=$(git -C "$repo" log -1 --format=%cd --date=format:%Y)
years=$first
[[ $first == "$last" ]] || years=$first-$last
cat <<HEAD
lunferry: migrate a live SAN LUN to a new array through a Linux storage proxy.

Copyright $years the lunferry authors (see the project's commit history).
License: the lunferry repository does not carry a license file yet; until
it does, no license is granted beyond what its authors grant elsewhere.
HEAD

[[ $# -ge 1 ]] || exit 0

# license NAME DIR: the license text (or a reference) of a module in DIR.
license() {
	local name=$1 dir=$2 f
	printf '\n%s\n%s\n' "Files: $name (linked into /usr/sbin/lunferry)" "$(printf '%*s' $((${#name} + 36)) '' | tr ' ' '-')"
	for f in "$dir"/LICENSE* "$dir"/COPYING* "$dir"/NOTICE*; do
		[[ -f $f ]] || continue
		if grep -q 'Apache License' "$f" && grep -q 'Version 2.0' "$f"; then
			echo "License: Apache-2.0, see /usr/share/common-licenses/Apache-2.0"
		else
			sed 's/^/ /; s/^ $/ ./' "$f"
		fi
	done
}

license "Go standard library $("$GO" env GOVERSION)" "$("$GO" env GOROOT)"
"$GO" version -m "$1" | awk '$1 == "dep" { print $2, $3 }' | while read -r path ver; do
	license "$path $ver" "$(cd "$repo" && "$GO" list -m -f '{{.Dir}}' "$path@$ver")"
done
