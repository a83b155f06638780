#!/bin/sh
# The lunferry demo, run inside the lab VM by scripts/demo.sh:
#   demo-guest.sh BINDIR
# BINDIR holds lunferry and lunferry-lab built on the host. It plays a whole
# migration of a live ext4 volume: an old array with a filesystem and files,
# an empty larger new array, the application host writing through its own
# iSCSI session, and lunferry driven through its CLI exactly as an admin's
# runbook would (the lab's hooks play the host's part at cutover). It ends
# with one verdict line and exits 0 only if everything passed.
set -eu
BIN=$(cd "$1" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
HOOKS=$(cd "$HERE/../lab/hooks" && pwd)
PATH=$BIN:$PATH
export PATH

# Sizes and rates: small enough for the emulated lab, big enough to watch.
OLD_SIZE=${DEMO_OLD_SIZE:-134217728}   # 128 MiB
NEW_SIZE=${DEMO_NEW_SIZE:-201326592}   # 192 MiB
THROTTLE=${DEMO_THROTTLE:-8MiB/s}
THROTTLED_FOR=${DEMO_THROTTLED_FOR:-8}  # seconds of throttled hydration to watch

work=/tmp/lunferry-demo
rm -rf "$work"
mkdir -p "$work"
export LUNFERRY_LAB_CONFIG="$work/lab.json" LUNFERRY_LAB_TOOL="$BIN/lunferry-lab" LUNFERRY_STATE_DIR="$work/state"
t_start=$(date +%s.%N)
now() { awk -v a="$t_start" -v b="$(date +%s.%N)" 'BEGIN { printf "%6.1fs", b - a }'; }
say() { echo; echo "=== $(now) $*"; }
fail() { echo; echo "VERDICT: FAIL: $*"; exit 1; }
# json_num FIELD: the first numeric "FIELD": N in stdin (lunferry --json output).
json_num() { sed -n "s/.*\"$1\": *\([0-9.e+-]*\).*/\1/p" | head -n 1; }
json_str() { sed -n "s/.*\"$1\": *\"\([^\"]*\)\".*/\1/p" | head -n 1; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

say "lab: the old array (127.0.0.1, $((OLD_SIZE >> 20)) MiB), the new array (127.0.0.2, $((NEW_SIZE >> 20)) MiB, empty), the host (iface labhost)"
lunferry-lab init -dir "$work" -old-backing "$work/old-array.img" -old-size "$OLD_SIZE" \
	-new-backing "$work/new-array.img" -new-size "$NEW_SIZE"
lunferry-lab arrays up
dev=$(lunferry-lab host mkfs old)
lunferry-lab host mount old >/dev/null
echo "host: ext4 on the old array's LUN ($dev), mounted"
lunferry-lab populate -files 160 -big 16777216
lunferry-lab writer start

say "lunferry doctor"
lunferry doctor || fail "lunferry doctor found gaps"

say "the runbook an admin reviews before the window"
cat >"$work/runbook.json" <<JSON
{
  "volumes": [
    {
      "name": "demo",
      "old": {"portal": "127.0.0.1:3260", "iqn": "iqn.2026-11.io.lunferry.lab:old-array", "lun": 0, "sizeBytes": $OLD_SIZE},
      "new": {"portal": "127.0.0.2:3260", "iqn": "iqn.2026-11.io.lunferry.lab:new-array", "lun": 0},
      "hostIQN": "iqn.2026-11.io.lunferry.lab:host",
      "export": {"iqn": "iqn.2026-11.io.lunferry.lab:proxy-export", "portals": ["127.0.0.3:3260"]},
      "regionSectors": 128,
      "throttle": "$THROTTLE",
      "hooks": {
        "preCutover": ["$HOOKS/pre-cutover"],
        "postCutover": ["$HOOKS/post-cutover"],
        "preHandover": ["$HOOKS/pre-handover"],
        "postHandover": ["$HOOKS/post-handover"],
        "timeout": "2m"
      }
    }
  ]
}
JSON
cat "$work/runbook.json"
lunferry volume add --runbook "$work/runbook.json"
lunferry volume list

say "lunferry migrate prepare demo  (before the window: the host still runs on the old array)"
lunferry migrate prepare demo

say "lunferry migrate cutover demo  (the window: hooks quiesce the host and remap the old LUN, the host comes back on the proxy)"
lunferry migrate cutover demo | tee "$work/cutover.out"
window=$(sed -n 's/.*time the tool spent in the window: \([^ ]*\) (hooks \([^,]*\),.*/\1/p' "$work/cutover.out")
hooks=$(sed -n 's/.*time the tool spent in the window: [^ ]* (hooks \([^,]*\),.*/\1/p' "$work/cutover.out")
[ -n "$window" ] || fail "cutover did not report the time the tool spent in the window"

say "lunferry run (the controller) + lunferry migrate start demo  (throttled to $THROTTLE)"
lunferry run --interval 1s >"$work/run.log" 2>&1 &
run_pid=$!
trap 'kill $run_pid 2>/dev/null || true' EXIT
lunferry migrate start demo
i=0
while [ $i -lt "$THROTTLED_FOR" ]; do
	sleep 2
	lunferry migrate status demo | tail -n +1
	i=$((i + 2))
done

say "lunferry migrate throttle demo unlimited"
lunferry migrate throttle demo unlimited
s=$(lunferry --json migrate status demo)
h0=$(echo "$s" | json_num hydratedRegions)
region=$(echo "$s" | json_num regionSectors)
t0=$(date +%s.%N)
while :; do
	s=$(lunferry --json migrate status demo)
	step=$(echo "$s" | json_str step)
	[ "$step" = hydrated ] && break
	case "$step" in hydrating) ;; *) fail "unexpected step $step during hydration: $s" ;; esac
	lunferry migrate status demo
	sleep 2
done
t1=$(date +%s.%N)
total=$(echo "$s" | json_num totalRegions)
lunferry migrate status demo
kill $run_pid 2>/dev/null || true
wait $run_pid 2>/dev/null || true
trap - EXIT
echo "--- lunferry run's log:"
tail -n 25 "$work/run.log"
rate=$(awk -v r="$region" -v h0="$h0" -v n="$total" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (n - h0) * r * 512 / (b - a) / 1e6 }')

say "lunferry migrate finalize demo  (live swap to linear while the host writes)"
w0=$(lunferry-lab writer stats | json_num files)
f0=$(date +%s.%N)
lunferry migrate finalize demo | tee "$work/finalize.out"
f1=$(date +%s.%N)
held=$(sed -n 's/.*host I\/O held \([^ ]*\) during the swap.*/\1/p' "$work/finalize.out")
[ -n "$held" ] || held="(not reported)"
fin=$(secs "$f0" "$f1")
lunferry migrate status demo
i=0
while :; do
	w1=$(lunferry-lab writer stats | json_num files)
	[ "$w1" -ge $((w0 + 20)) ] && break
	i=$((i + 1))
	[ $i -lt 120 ] || fail "the host's writer wrote $((w1 - w0)) files in the minute after finalize"
	sleep 0.5
done
echo "host: $((w1 - w0)) more files written and read back through the proxy since finalize began"

say "lunferry migrate handover demo  (hooks move the host to the new array; the proxy lets go)"
lunferry migrate handover demo
lunferry migrate status demo
left=$(cat /sys/block/dm-*/dm/name 2>/dev/null | grep -c '^lunferry-' || true)
[ "$left" = 0 ] || fail "a lunferry dm device is left after handover"
[ ! -e /sys/kernel/config/target/iscsi/iqn.2026-11.io.lunferry.lab:proxy-export ] || fail "the proxy's export is left after handover"
w0=$(lunferry-lab writer stats | json_num files)
i=0
while :; do
	w1=$(lunferry-lab writer stats | json_num files)
	[ "$w1" -ge $((w0 + 10)) ] && break
	i=$((i + 1))
	[ $i -lt 120 ] || fail "the host's writer wrote $((w1 - w0)) files on the new array in the minute after handover"
	sleep 0.5
done
echo "host: $((w1 - w0)) files written and read back on the new array directly, the proxy gone"

say "the host stops; checks"
stats=$(lunferry-lab writer stop)
all=$(lunferry-lab writer stats)
echo "$all"
errors=$(echo "$all" | json_num errors)
mism=$(echo "$all" | json_num mismatches)
wfiles=$(echo "$all" | json_num files)
stall=$(echo "$all" | json_num maxWriteMs)
lunferry-lab host unmount
echo "the new LUN alone, logged in directly from the host:"
newdev=$(lunferry-lab host login new)
verify=$(lunferry-lab verify -dev "$newdev") || { echo "$verify"; fail "data check on the new LUN failed"; }
echo "$verify"
lunferry-lab host unmount
vfiles=$(echo "$verify" | sed -n 's/^verified \([0-9]*\) files, \([0-9]*\) bytes.*/\1/p')
vbytes=$(echo "$verify" | sed -n 's/^verified \([0-9]*\) files, \([0-9]*\) bytes.*/\2/p')
[ "$errors" = 0 ] && [ "$mism" = 0 ] || fail "the host's writer saw $errors errors and $mism mismatches"
[ -n "$vfiles" ] && [ "$vfiles" -gt 0 ] || fail "nothing verified"

echo
echo "VERDICT: PASS: data verified: $vfiles files ($((vbytes >> 20)) MiB) match their checksums on the new LUN alone after handover, e2fsck clean; host writer: $wfiles files written during the migration, 0 errors; time the tool spent in the host window: $window (hooks $hooks); hydration rate: $rate MB/s unthrottled ($((OLD_SIZE >> 20)) MiB volume, throttle $THROTTLE at first); finalize: ${fin}s, the swap held the host's I/O $held (longest host write+fsync ${stall} ms); demo wall $(now)"
