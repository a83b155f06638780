#!/bin/sh
# make demo / make demo-online: boot the lab VM and run a whole lunferry
# migration in it, ending with a verdict line. Exit status 0 only if the
# verdict is PASS. Needs the lab (make lab) and Go.
#   scripts/demo.sh          an offline migration with a writer running
#                            (integration/demo/demo-guest.sh)
#   scripts/demo.sh online   a multipath host's live ext4 volume migrated
#                            online (integration/demo/demo-online-guest.sh);
#                            the verdict states the host's downtime (its
#                            longest write stall) and its write errors
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
case "${1:-}" in
"") name=demo ;;
online) name=demo-online ;;
*) echo "usage: scripts/demo.sh [online]" >&2; exit 2 ;;
esac
GO=${GO:-go}
out="$root/.cache/$name"
mkdir -p "$out/bin"
echo "$name: building lunferry and lunferry-lab"
CGO_ENABLED=0 "$GO" build -trimpath -o "$out/bin/" ./cmd/lunferry ./integration/lab/cmd/lunferry-lab
[ -x "$root/bin/vmexec" ] || { echo "$name: bin/vmexec missing: run 'make lab' first"; exit 1; }
echo "$name: booting the lab VM (software emulation: the boot takes a while)"
LUNFERRY_VM_TIMEOUT=${LUNFERRY_VM_TIMEOUT:-12m} "$root/bin/vmexec" -- /bin/sh "$root/integration/demo/$name-guest.sh" "$out/bin" 2>&1 |
	tee "$out/demo.log"
status=$(grep -c '^VERDICT: PASS' "$out/demo.log" || true)
[ "$status" -ge 1 ] || { echo "$name: no passing verdict (log in $out/demo.log)"; exit 1; }
