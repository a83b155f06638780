#!/bin/sh
# make demo-online: boot the lab VM and migrate a multipath host's live
# ext4 volume online (integration/demo/demo-online-guest.sh), ending with a
# verdict line stating the host's downtime (its longest write stall) and
# its write errors. Exit status 0 only if the verdict is PASS. Needs the
# lab (make lab) and Go.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
GO=${GO:-go}
out="$root/.cache/demo-online"
mkdir -p "$out/bin"
echo "demo-online: building lunferry and lunferry-lab"
CGO_ENABLED=0 "$GO" build -trimpath -o "$out/bin/" ./cmd/lunferry ./integration/lab/cmd/lunferry-lab
[ -x "$root/bin/vmexec" ] || { echo "demo-online: bin/vmexec missing: run 'make lab' first"; exit 1; }
echo "demo-online: booting the lab VM (software emulation: the boot takes a while)"
LUNFERRY_VM_TIMEOUT=${LUNFERRY_VM_TIMEOUT:-12m} "$root/bin/vmexec" -- /bin/sh "$root/integration/demo/demo-online-guest.sh" "$out/bin" 2>&1 |
	tee "$out/demo.log"
status=$(grep -c '^VERDICT: PASS' "$out/demo.log" || true)
[ "$status" -ge 1 ] || { echo "demo-online: no passing verdict (log in $out/demo.log)"; exit 1; }
