#!/usr/bin/env bash
# kill -9 twice during a catch-up, then SIGTERM: the live output topics,
# deduplicated (a crash re-emits identical bytes), must equal a replay's
# outputs exactly. Runs with debug logs so it also counts the batches that
# wrote their outputs ahead of their commit (spills).
#
#   internal/bench/kill9-vs-replay.sh BINARY [PORT]
#
# Prints, per topic, records, distinct records and whether the distinct set
# equals the replay's (exit status 1 if not). Needs kcat and python3.
set -uo pipefail
if [ $# -lt 1 ]; then sed -n '2,10p' "$0" >&2; exit 2; fi
S=$(realpath "$1") B=127.0.0.1:${2:-19500}
W=$(mktemp -d /tmp/kill9.XXXX); cd "$W" || exit 1
$S broker --listen $B > broker.log 2>&1 & BP=$!
trap 'kill $BP 2>/dev/null' EXIT
sleep 1
$S generate --brokers $B --sirens 2000 --days 120 --seed 1 --start 2026-01-01 > gen.log 2>&1 || { echo gen failed; exit 1; }
$S run --brokers $B --state-dir A --log-level debug > run1.log 2>&1 & P=$!
sleep 2.5; kill -9 $P; wait $P 2>/dev/null
echo "run1 spills before kill -9: $(grep -c 'ahead of their batch' run1.log)"
$S run --brokers $B --state-dir A --log-level debug > run2.log 2>&1 & P=$!
sleep 3; kill -9 $P; wait $P 2>/dev/null
echo "run2 spills before kill -9: $(grep -c 'ahead of their batch' run2.log)"
$S run --brokers $B --state-dir A --log-level debug > run3.log 2>&1 & P=$!
for i in $(seq 60); do sleep 2; n=$(grep -c 'partition caught up' run3.log); [ "$n" -ge 6 ] && break; done
sleep 3; kill -TERM $P; wait $P; echo "run3 exit=$? spills: $(grep -c 'ahead of their batch' run3.log)"
$S replay --brokers $B --output-topic rp --state-dir R > replay.log 2>&1; echo "replay exit=$?"
for t in segment-changes rp siren-daily rp-siren-daily; do kcat -b $B -C -t $t -o beginning -e -q -J > $t.json; done
python3 - <<'PY'
import json, sys
ok = True
def vals(t):
    out=[]
    for line in open(t+".json","rb"):
        if line.strip():
            d=json.loads(line.decode("utf-8","surrogateescape")); out.append(d.get("payload"))
    return out
for live, rep in [("segment-changes","rp"),("siren-daily","rp-siren-daily")]:
    a,b=vals(live),vals(rep)
    print(f"{live}: {len(a)} records, {len(set(a))} distinct; replay {rep}: {len(b)} records, {len(set(b))} distinct; distinct sets equal: {set(a)==set(b)}")
    ok = ok and set(a) == set(b) and len(b) == len(set(b))
sys.exit(0 if ok else 1)
PY
rc=$?
echo "logs: $W"
exit $rc
