#!/usr/bin/env bash
# A/B throughput of two sirenstream binaries on a shared, noisy machine: runs
# `bench --stages raw,full --latency 0 --json` N times for each binary,
# alternating them, and prints per-run and median figures (full/raw ratio of
# the same run, CPU s per million records of both stages).
#   bench/ab.sh 3 ./sirenstream-old ./sirenstream-new [more bench flags]
set -euo pipefail
if [ $# -lt 3 ]; then
  echo "usage: $0 N BINARY_A BINARY_B [bench flags...]" >&2
  exit 2
fi
n=$1 a=$2 b=$3
shift 3
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for _ in $(seq "$n"); do
  for bin in "$a" "$b"; do
    "$bin" bench --stages raw,full --latency 0 --json "$@" 2>/dev/null | python3 -c '
import json, sys
d = json.load(sys.stdin)
st = {s["name"]: s for s in d["stages"]}
r, f = st["raw"], st["full"]
print(sys.argv[1], round(f["records_per_sec"] / r["records_per_sec"], 3),
      round(f["cpu_sec_per_million"], 2), round(r["cpu_sec_per_million"], 2), int(f["records_per_sec"]))
' "$bin" | tee -a "$out"
  done
done
python3 - "$out" <<'PY'
import collections, statistics as st, sys
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    b, ratio, cpu, rcpu, _ = line.split()
    runs[b].append((float(ratio), float(cpu), float(rcpu)))
for b, v in runs.items():
    print(f"median {b}: full/raw {st.median(x[0] for x in v):.3f}, full CPU {st.median(x[1] for x in v):.2f} s/M, raw CPU {st.median(x[2] for x in v):.2f} s/M ({len(v)} runs)")
PY
