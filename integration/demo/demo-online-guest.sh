#!/bin/sh
# The lunferry online demo, run inside the lab VM by `scripts/demo.sh online`:
#   demo-online-guest.sh BINDIR
# BINDIR holds lunferry and lunferry-lab built on the host. A multipath host
# (dm-multipath over its direct path to the old array, ext4 on the map, a
# writer that writes, fsyncs and reads back every file) is migrated online:
# the proxied path joins the host's map, the direct path goes, lunferry
# fences the old LUN and takes over live, hydrates and finalizes. The
# writer never stops and the filesystem is never unmounted. It ends with
# one verdict line stating the host's downtime (its longest write stall)
# and its write errors, and exits 0 only if there were none.
set -eu
BIN=$(cd "$1" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
HOOKS=$(cd "$HERE/../lab/hooks" && pwd)
PATH=$BIN:$PATH
export PATH

OLD_SIZE=${DEMO_OLD_SIZE:-67108864}    # 64 MiB
NEW_SIZE=${DEMO_NEW_SIZE:-100663296}   # 96 MiB

work=/tmp/lunferry-demo-online
rm -rf "$work"
mkdir -p "$work"
export LUNFERRY_LAB_CONFIG="$work/lab.json" LUNFERRY_LAB_TOOL="$BIN/lunferry-lab" LUNFERRY_STATE_DIR="$work/state"
t_start=$(date +%s.%N)
now() { awk -v a="$t_start" -v b="$(date +%s.%N)" 'BEGIN { printf "%6.1fs", b - a }'; }
say() { echo; echo "=== $(now) $*"; }
fail() { echo; echo "VERDICT: FAIL: $*"; exit 1; }
json_num() { sed -n "s/.*\"$1\": *\([0-9.e+-]*\).*/\1/p" | head -n 1; }
json_str() { sed -n "s/.*\"$1\": *\"\([^\"]*\)\".*/\1/p" | head -n 1; }
# progress N: wait until the writer has made N more files durable.
progress() {
	w0=$(lunferry-lab writer stats | json_num files)
	i=0
	while :; do
		w1=$(lunferry-lab writer stats | json_num files)
		[ "$w1" -ge $((w0 + $1)) ] && break
		i=$((i + 1))
		[ $i -lt 240 ] || fail "the host's writer wrote $((w1 - w0)) files in two minutes ($2)"
		sleep 0.5
	done
	echo "host: $((w1 - w0)) files written, fsynced and read back $2"
}

say "lab: the old array (127.0.0.1, $((OLD_SIZE >> 20)) MiB, admits the host and the proxy), the new array (127.0.0.2, $((NEW_SIZE >> 20)) MiB, empty), the host (iface labhost) with dm-multipath"
lunferry-lab init -dir "$work" -old-backing "$work/old-array.img" -old-size "$OLD_SIZE" \
	-new-backing "$work/new-array.img" -new-size "$NEW_SIZE"
lunferry-lab arrays up
lunferry-lab identity old -write-back
lunferry-lab acl old host proxy
lunferry-lab mpath start
lunferry-lab mpath mkfs old
lunferry-lab mpath mount old
lunferry-lab populate -files 64 -big 8388608
lunferry-lab mark direct
lunferry-lab writer start
lunferry-lab mpath show
progress 10 "on the direct path"

say "the runbook: cutover online, the host's multipath hooks"
cat >"$work/runbook.json" <<JSON
{
  "volumes": [
    {
      "name": "demo",
      "old": {"portal": "127.0.0.1:3260", "iqn": "iqn.2026-11.io.lunferry.lab:old-array", "lun": 0},
      "new": {"portal": "127.0.0.2:3260", "iqn": "iqn.2026-11.io.lunferry.lab:new-array", "lun": 0},
      "hostIQN": "iqn.2026-11.io.lunferry.lab:host",
      "export": {"iqn": "iqn.2026-11.io.lunferry.lab:proxy-export", "portals": ["127.0.0.3:3260"]},
      "regionSectors": 128,
      "cutover": "online",
      "hooks": {
        "addPaths": ["$HOOKS/add-paths"],
        "checkPaths": ["$HOOKS/check-paths"],
        "removeDirectPaths": ["$HOOKS/remove-direct-paths"],
        "restoreDirectPaths": ["$HOOKS/restore-direct-paths"],
        "timeout": "2m"
      }
    }
  ]
}
JSON
cat "$work/runbook.json"
lunferry volume add --runbook "$work/runbook.json"

say "lunferry migrate prepare demo"
lunferry migrate prepare demo

say "lunferry migrate cutover demo  (online: the host gains the proxied path, loses the direct one; lunferry fences and takes over live)"
lunferry-lab mark passthrough
lunferry migrate cutover demo | tee "$work/cutover.out"
lunferry-lab mark cut-over
lunferry-lab mpath show
s=$(lunferry --json migrate status demo)
phase=$(echo "$s" | json_str onlinePhase)
takeover=$(echo "$s" | json_str takeoverHeld)
[ "$phase" = taken-over ] || fail "after the online cutover: onlinePhase $phase, want taken-over"
progress 10 "through the proxy (clone)"

say "lunferry run + lunferry migrate start demo  (hydration, the host writing)"
lunferry run --interval 1s >"$work/run.log" 2>&1 &
run_pid=$!
trap 'kill $run_pid 2>/dev/null || true' EXIT
lunferry migrate start demo
while :; do
	s=$(lunferry --json migrate status demo)
	step=$(echo "$s" | json_str step)
	[ "$step" = hydrated ] && break
	case "$step" in cut-over | hydrating) ;; *) fail "unexpected step $step during hydration: $s" ;; esac
	lunferry migrate status demo | head -n 4
	sleep 3
done
kill $run_pid 2>/dev/null || true
wait $run_pid 2>/dev/null || true
trap - EXIT

say "lunferry migrate finalize demo  (live swap to linear over the new LUN)"
lunferry-lab mark finalize
lunferry migrate finalize demo | tee "$work/finalize.out"
lunferry-lab mark finalized
swap=$(lunferry --json migrate status demo | json_str swapHeld)
lunferry migrate status demo
progress 20 "through linear over the new LUN"

say "checks (the writer stops only now)"
lunferry-lab mark stopped
lunferry-lab writer stop >/dev/null
all=$(lunferry-lab writer stats)
echo "$all"
errors=$(echo "$all" | json_num errors)
mism=$(echo "$all" | json_num mismatches)
wfiles=$(echo "$all" | json_num files)
echo "longest write+fsync per phase:"
lunferry-lab stalls | tee "$work/stalls.txt"
worst=$(awk '{ for (i = 1; i <= NF; i++) if ($i == "longest") { v = $(i + 1); if (v + 0 > m + 0) { m = v; p = $1 } } } END { printf "%s ms (phase %s)", m, p }' "$work/stalls.txt")
verify=$(lunferry-lab verify) || { echo "$verify"; fail "data check through the proxy failed"; }
echo "$verify"
vfiles=$(echo "$verify" | sed -n 's/^verified \([0-9]*\) files.*/\1/p')
[ "$errors" = 0 ] && [ "$mism" = 0 ] || fail "host downtime: longest write stall $worst; the host's writer saw $errors write errors and $mism mismatches"

echo
echo "VERDICT: PASS: host downtime: none stopped, longest write stall $worst; write errors: 0 ($wfiles files written, fsynced and read back during the migration, never unmounted); takeover swap held ${takeover:-?}, finalize swap held ${swap:-?}; $vfiles files verified after finalize; demo wall $(now)"
