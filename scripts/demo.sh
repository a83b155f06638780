#!/bin/sh
# make demo: boot the lab VM and run a whole lunferry migration in it
# (integration/demo/demo-guest.sh), ending with a verdict line. Exit status
# 0 only if the verdict is PASS. Needs the lab (make lab) and Go.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
GO=${GO:-go}
out="$root/.cache/demo"
mkdir -p "$out/bin"
echo "demo: building lunferry and lunferry-lab"
CGO_ENABLED=0 "$GO" build -trimpath -o "$out/bin/" ./cmd/lunferry ./integration/lab/cmd/lunferry-lab
[ -x "$root/bin/vmexec" ] || { echo "demo: bin/vmexec missing: run 'make lab' first"; exit 1; }
echo "demo: booting the lab VM (software emulation: the boot takes a while)"
LUNFERRY_VM_TIMEOUT=${LUNFERRY_VM_TIMEOUT:-12m} "$root/bin/vmexec" -- /bin/sh "$root/integration/demo/demo-guest.sh" "$out/bin" 2>&1 |
	tee "$out/demo.log"
status=$(grep -c '^VERDICT: PASS' "$out/demo.log" || true)
[ "$status" -ge 1 ] || { echo "demo: no passing verdict (log in $out/demo.log)"; exit 1; }
