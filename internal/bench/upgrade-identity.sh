#!/usr/bin/env bash
# Upgrade check of a state format change: a replay's state directory written
# by OLD is continued by NEW over more data ("up"); its outputs must equal those
# of the same split replay done by NEW alone ("ctl", the control) record by
# record (key, value, headers, per partition), and those of one NEW replay of
# all the data ("full"). Split replays write one more uplift row per offer
# (one each time a replay catches up), so uplift is compared only up vs ctl.
#
#   internal/bench/upgrade-identity.sh OLD_BINARY NEW_BINARY [PORT]
#
# Exit status 0: up == ctl on every output topic. Needs kcat and python3.
set -euo pipefail
if [ $# -lt 2 ]; then sed -n '2,12p' "$0" >&2; exit 2; fi
OLD=$(realpath "$1") NEW=$(realpath "$2") PORT=${3:-19311}
W=$(mktemp -d /tmp/upgrade.XXXX); cd "$W"
"$NEW" broker --listen 127.0.0.1:$PORT --partitions 4 > broker.log 2>&1 & BPID=$!
trap 'kill $BPID 2>/dev/null' EXIT
sleep 1
B=127.0.0.1:$PORT
"$NEW" generate --brokers $B --sirens 1500 --days 70 --seed 1 --start 2026-01-01 > gen1.log 2>&1
rp() { local bin=$1 out=$2 dir=$3; "$bin" replay --brokers $B --output-topic $out --churn-topic churn-$out --state-dir $dir > $out.$(basename $bin).log 2>&1; }
rp "$OLD" up $W/s-up
rp "$NEW" ctl $W/s-ctl
"$NEW" generate --brokers $B --sirens 1500 --days 50 --seed 2 --start 2026-03-12 --outcomes=false > gen2.log 2>&1
rp "$NEW" up $W/s-up
rp "$NEW" ctl $W/s-ctl
rp "$NEW" full $W/s-full
dump() { kcat -b $B -C -t "$1" -o beginning -e -q -J > "$1.json"; }
for t in "" -dlq -siren-daily -offer-outcomes -uplift; do for o in up ctl full; do dump "$o$t"; done; done
for o in up ctl full; do dump "churn-$o"; done
rc=0
python3 - <<'PY' || rc=1
import json, sys
def load(t):
    parts = {}
    for line in open(t + ".json", "rb"):
        if line.strip():
            d = json.loads(line.decode("utf-8", "surrogateescape"))
            parts.setdefault(d["partition"], []).append((d["offset"], d.get("key"), d.get("payload"), tuple(d.get("headers") or [])))
    for v in parts.values(): v.sort()
    return parts
bad = 0
for suf in ["", "-dlq", "-siren-daily", "-offer-outcomes", "-uplift"]:
    pairs = [("up", "ctl"), ("up", "full"), ("ctl", "full")]
    for a, c in pairs:
        A, C = load(a + suf), load(c + suf)
        n = sum(len(v) for v in C.values())
        same = A == C
        print(f"{a+suf} {'==' if same else '!='} {c+suf} ({n} records)")
        if not same and a == "up" and c == "ctl": bad = 1
for a, c in [("churn-up", "churn-ctl"), ("churn-up", "churn-full")]:
    A, C = load(a), load(c)
    print(f"{a} {'==' if A == C else '!='} {c} ({sum(len(v) for v in C.values())} records)")
    if A != C and c == "churn-ctl": bad = 1
sys.exit(bad)
PY
grep -h "state version\|error" *.log | head -5 || true
echo "work dir $W"
exit $rc
