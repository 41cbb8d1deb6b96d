#!/usr/bin/env bash
# Byte-identity check of two sirenstream binaries (e.g. before/after a
# refactor): on one embedded broker, produces the demo's deterministic data
# once, replays it with each binary into its own output topics and compares
# them partition by partition, record by record (key, value, headers; not the
# record timestamps, which the producer sets to the wall clock).
#
#   internal/bench/replay-identity.sh OLD_BINARY NEW_BINARY [flags]
#
#   --sirens N       companies (default 2000, as `sirenstream demo`)
#   --days N         days of history (default 120, as the demo)
#   --seed N         generator seed (default 1, as the demo)
#   --bad-rate F     generator's fraction of bad records (default 0.001, as
#                    the demo; they exercise the dead-letter path)
#   --partitions N   partitions of every topic (default 4, as the demo)
#   --inject-bad     also append hand-made bad records to the input topics
#                    with kcat (truncated value, bad magic byte, unknown schema
#                    id, key != SIREN, empty and null values) before replaying
#   --no-go-test     skip `go test ./engine -run Scenario` (report only)
#   --keep           keep the work directory (dumps, logs, state) for a look
#
# Steps: OLD broker on a free port -> OLD generate (fixed seed) -> [inject]
# -> OLD replay (out-old, churn-old, out-old-dlq, out-old-siren-daily,
# out-old-offer-outcomes, out-old-uplift) and NEW replay (the same with -new;
# a replay names its outcome topics after its output topic), each from an empty state
# dir -> kcat dumps of every partition in offset order -> compare (siren-daily
# is the biggest: ~850k records for the demo's data, about a minute more).
# Also runs the engine golden scenarios
# of the working tree (report only: they do not change the exit status).
#
# Exit status: 0 every output topic is identical, 1 they differ (the first
# differing record of each differing topic is printed), 2 the check could not
# run (bad usage, kcat missing, broker/generate/replay failure).
# Needs kcat (apt-get update && apt-get install -y kcat) and python3.
set -euo pipefail
set -E # the ERR trap below also in functions

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
}

[ $# -ge 2 ] || usage
OLD=$1 NEW=$2
shift 2
# Defaults: those of cmd/sirenstream/demo.go.
SIRENS=2000 DAYS=120 SEED=1 BAD_RATE=0.001 PARTITIONS=4
INJECT=0 GO_TEST=1 KEEP=0
while [ $# -gt 0 ]; do
  case $1 in
    --sirens) SIRENS=${2:?}; shift 2 ;;
    --days) DAYS=${2:?}; shift 2 ;;
    --seed) SEED=${2:?}; shift 2 ;;
    --bad-rate) BAD_RATE=${2:?}; shift 2 ;;
    --partitions) PARTITIONS=${2:?}; shift 2 ;;
    --inject-bad) INJECT=1; shift ;;
    --no-go-test) GO_TEST=0; shift ;;
    --keep) KEEP=1; shift ;;
    -h|--help) usage ;;
    *) echo "unknown flag: $1" >&2; usage ;;
  esac
done

for b in "$OLD" "$NEW"; do
  [ -x "$b" ] || { echo "not an executable: $b" >&2; exit 2; }
done
OLD=$(realpath "$OLD") NEW=$(realpath "$NEW")
if ! command -v kcat >/dev/null; then
  echo "kcat is missing; install it with: apt-get update && apt-get install -y kcat" >&2
  exit 2
fi
command -v python3 >/dev/null || { echo "python3 is missing" >&2; exit 2; }

ROOT=$(git -C "$(dirname "$0")" rev-parse --show-toplevel 2>/dev/null || (cd "$(dirname "$0")/../.." && pwd))
WORK=$(mktemp -d "${TMPDIR:-/tmp}/replay-identity.XXXXXX")
BROKER_PID="" GO_PID=""

cleanup() {
  local rc=$?
  set +e
  for pid in "$GO_PID" "$BROKER_PID"; do
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null
      wait "$pid" 2>/dev/null
    fi
  done
  if [ "$KEEP" = 1 ]; then
    echo "work directory kept: $WORK" >&2
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
# Any failing command is a setup error (2), not a difference (1).
trap 'echo "error: line $LINENO: \"$BASH_COMMAND\" failed" >&2; exit 2' ERR

say() { printf '%s\n' "$*"; }
fail() { echo "error: $*" >&2; exit 2; }

say "replay-identity: OLD=$OLD"
say "                 NEW=$NEW"
say "data: --sirens $SIRENS --days $DAYS --seed $SEED --bad-rate $BAD_RATE, $PARTITIONS partitions, hand-made bad records: $([ $INJECT = 1 ] && echo yes || echo no)"

# Golden scenarios of the working tree, in the background meanwhile.
if [ "$GO_TEST" = 1 ] && command -v go >/dev/null; then
  (cd "$ROOT" && exec go test ./engine -run Scenario -count=1 -v) >"$WORK/go-test.log" 2>&1 &
  GO_PID=$!
fi

# 1. Broker on a free port (port 0: the broker picks one and prints it).
"$OLD" broker --listen 127.0.0.1:0 --partitions "$PARTITIONS" >"$WORK/broker.log" 2>&1 &
BROKER_PID=$!
BROKER=""
for _ in $(seq 100); do
  kill -0 "$BROKER_PID" 2>/dev/null || { cat "$WORK/broker.log" >&2; fail "broker exited"; }
  if [ -z "$BROKER" ]; then
    BROKER=$(sed -n 's/.*listening on \([0-9.]*:[0-9]*\).*/\1/p' "$WORK/broker.log" | head -n1)
  fi
  if [ -n "$BROKER" ] && kcat -b "$BROKER" -L -m 2 >/dev/null 2>&1; then
    break
  fi
  sleep 0.1
done
[ -n "$BROKER" ] && kcat -b "$BROKER" -L -m 2 >/dev/null 2>&1 || { cat "$WORK/broker.log" >&2; fail "broker not accepting connections"; }
say "▶ broker $BROKER (pid $BROKER_PID)"

# 2. Deterministic input (fixed seed, fixed --start default, record
# timestamp = event time). --partitions: generate creates the topics itself
# (its default would be 6, not the broker's).
timeout 600 "$OLD" generate --brokers "$BROKER" --sirens "$SIRENS" --days "$DAYS" \
  --seed "$SEED" --bad-rate "$BAD_RATE" --partitions "$PARTITIONS" >"$WORK/generate.log" 2>&1 \
  || { cat "$WORK/generate.log" >&2; fail "generate failed"; }
say "▶ generate: $(tail -n1 "$WORK/generate.log")"

# Optional hand-made bad records, appended to the inputs. Each copies the
# last record with a well-formed SIREN key of a partition and goes back to
# that partition, so its dead letter lands in the same partition as the
# other records of that task (a deterministic order).
kc() { kcat -b "$BROKER" "$@"; }
pick() { # topic partition -> "$WORK/inj/{key,val,other}" for a record of it
  local t=$1 p=$2 d=$WORK/inj
  kc -C -t "$t" -p "$p" -o -200 -e -q -f '%o %k\n' >"$d/recent" 2>/dev/null || return 1
  grep -E '^[0-9]+ [0-9]{9}$' "$d/recent" >"$d/good" || return 1
  local off key
  read -r off key < <(tail -n1 "$d/good")
  printf '%s' "$key" >"$d/key"
  kc -C -t "$t" -p "$p" -o "$off" -c 1 -e -q -f '%s' >"$d/val"
  awk -v k="$key" '$2 != k {print $2}' "$d/good" | tail -n1 >"$d/other"
  [ -s "$d/val" ]
}
inject() { # kind topic partition
  local kind=$1 t=$2 p d=$WORK/inj key
  for p in $(seq "$3" $((PARTITIONS - 1))) $(seq 0 $(($3 - 1))); do
    if pick "$t" "$p"; then break; fi
    p=""
  done
  if [ -z "$p" ]; then say "  skipped $kind into $t: no record to copy"; return; fi
  key=$(cat "$d/key")
  local size
  size=$(stat -c %s "$d/val")
  case $kind in
    truncated) head -c $((size / 2)) "$d/val" >"$d/bad" ;;
    bad-magic) { printf '\x07'; tail -c +2 "$d/val"; } >"$d/bad" ;;
    unknown-schema) { printf '\x00\x00\x00\x03\xe7'; tail -c +6 "$d/val"; } >"$d/bad" ;;
    key-mismatch)
      if [ ! -s "$d/other" ]; then say "  skipped $kind into $t/$p: no second SIREN"; return; fi
      cp "$d/val" "$d/bad"; key=$(cat "$d/other") ;;
    empty-value) printf '%s:\n' "$key" | kc -P -t "$t" -p "$p" -K : -H "injected=$kind"; say "  injected $kind into $t/$p (key $key)"; return ;;
    null-value) printf '%s:\n' "$key" | kc -P -t "$t" -p "$p" -K : -Z -H "injected=$kind"; say "  injected $kind into $t/$p (key $key)"; return ;;
    *) fail "unknown kind $kind" ;;
  esac
  kc -P -t "$t" -p "$p" -k "$key" -H "injected=$kind" "$d/bad"
  say "  injected $kind into $t/$p (key $key, $(stat -c %s "$d/bad") bytes)"
}
if [ "$INJECT" = 1 ]; then
  mkdir -p "$WORK/inj"
  say "▶ injecting bad records"
  inject truncated usage 0
  inject bad-magic outages $((1 % PARTITIONS))
  inject unknown-schema claims $((2 % PARTITIONS))
  inject key-mismatch profiles $((3 % PARTITIONS))
  inject key-mismatch usage $((1 % PARTITIONS))
  inject empty-value usage $((2 % PARTITIONS))
  inject null-value outages $((3 % PARTITIONS))
fi

# kcat dump: every partition of a topic as JSON lines (lossless: kcat writes
# non-UTF-8 bytes raw and escapes control characters) plus its metadata.
dump() { # topic
  timeout 300 kcat -b "$BROKER" -L -t "$1" -J >"$WORK/dump/$1.meta.json"
  timeout 300 kcat -b "$BROKER" -C -t "$1" -o beginning -e -q -J >"$WORK/dump/$1.json"
}
mkdir -p "$WORK/dump"
INPUTS=(usage outages claims profiles)
for t in "${INPUTS[@]}"; do dump "$t"; done

# 3. The replays, one after the other, each from an empty state directory.
replay() { # tag binary
  local tag=$1 bin=$2 t0=$SECONDS
  timeout 900 "$bin" replay --brokers "$BROKER" --state-dir "$WORK/state-$tag" \
    --output-topic "out-$tag" --churn-topic "churn-$tag" --progress off --log-level warn \
    >"$WORK/replay-$tag.log" 2>&1 \
    || { tail -n 30 "$WORK/replay-$tag.log" >&2; fail "$tag replay failed ($bin)"; }
  say "▶ replay $tag ($((SECONDS - t0))s): $(grep -a 'replay complete' "$WORK/replay-$tag.log" | tail -n1)"
}
replay old "$OLD"
replay new "$NEW"

# 4. Dump and compare.
for tag in old new; do
  for t in "out-$tag" "churn-$tag" "out-$tag-dlq" "out-$tag-siren-daily" "out-$tag-offer-outcomes" "out-$tag-uplift"; do
    dump "$t"
  done
done

cmp_rc=0
python3 - "$WORK" "${INPUTS[@]}" <<'PY' || cmp_rc=$?
import hashlib, json, re, sys

work, inputs = sys.argv[1], sys.argv[2:]

def b(s):  # kcat -J string -> the original bytes
    return None if s is None else s.encode("utf-8", "surrogateescape")

def hx(x):
    return "-" if x is None else x.hex()

def load(topic):
    meta = json.load(open(f"{work}/dump/{topic}.meta.json", "rb"))
    parts = {p["partition"]: [] for t in meta.get("topics", []) if t["topic"] == topic for p in t["partitions"]}
    for line in open(f"{work}/dump/{topic}.json", "rb"):
        if not line.strip():
            continue
        d = json.loads(line.decode("utf-8", "surrogateescape"))
        h = d.get("headers") or []
        rec = (d["offset"], b(d.get("key")), b(d.get("payload")),
               tuple((b(h[i]), b(h[i + 1])) for i in range(0, len(h), 2)))
        parts.setdefault(d["partition"], []).append(rec)
    for recs in parts.values():
        recs.sort(key=lambda r: r[0])  # offset order
    return parts

def line(r):  # canonical form: offset, key, value, headers; hex, "-" for NULL
    return "%d\t%s\t%s\t%s\n" % (r[0], hx(r[1]), hx(r[2]), ",".join(hx(k) + "=" + hx(v) for k, v in r[3]))

def digest(parts):
    h = hashlib.sha256()
    for p in sorted(parts):
        h.update(b"partition %d\n" % p)
        for r in parts[p]:
            h.update(line(r).encode())
    return h.hexdigest()

def counts(parts):
    n = sum(len(v) for v in parts.values())
    return n, " ".join(f"p{p}:{len(parts[p])}" for p in sorted(parts))

def show(r):
    if r is None:
        return "    <no record>"
    def txt(x):
        if x is None:
            return "NULL"
        s = x.decode("utf-8", "replace")
        return repr(s) if x.isascii() and s.isprintable() else "hex " + x.hex()
    out = [f"    offset {r[0]}  key {txt(r[1])}  value {len(r[2]) if r[2] is not None else 'NULL'} bytes"]
    out.append(f"    value {hx(r[2])}")
    for k, v in r[3]:
        out.append(f"    header {txt(k)} = {txt(v)}")
    return "\n".join(out)

print("▶ input topics (same for both replays)")
for t in inputs:
    parts = load(t)
    n, per = counts(parts)
    print(f"  {t:<16} {n:>8} records  sha256 {digest(parts)}  [{per}]")

def reported(tag):
    m = re.search(rb"(\d+) segment changes to \S+, (\d+) dead-lettered", open(f"{work}/replay-{tag}.log", "rb").read())
    return (int(m.group(1)), int(m.group(2))) if m else None

print("▶ output topics: old vs new, per partition in offset order (key, value, headers)")
differ = []
totals = {}
for label, fmt in (("segment changes", "out-{}"), ("churn alerts", "churn-{}"), ("dead letters", "out-{}-dlq"),
                   ("siren-daily", "out-{}-siren-daily"), ("offer outcomes", "out-{}-offer-outcomes"), ("uplift", "out-{}-uplift")):
    old, new = load(fmt.format("old")), load(fmt.format("new"))
    res = "identical"
    first = None
    for p in sorted(set(old) | set(new)):
        a, c = old.get(p, []), new.get(p, [])
        for i in range(max(len(a), len(c))):
            ra = a[i] if i < len(a) else None
            rc = c[i] if i < len(c) else None
            if ra is None or rc is None or line(ra) != line(rc):
                first = (p, i, ra, rc)
                break
        if first:
            break
    if set(old) != set(new):
        res = f"DIFFERENT partitions {sorted(old)} vs {sorted(new)}"
    elif first:
        res = f"DIFFERENT from partition {first[0]} record #{first[1]}"
    print(f"  {label}")
    for tag, parts in (("old", old), ("new", new)):
        n, per = counts(parts)
        totals[(tag, label)] = n
        print(f"    {fmt.format(tag):<24} {n:>7} records  sha256 {digest(parts)}  [{per}]")
    print(f"    -> {res}")
    if res != "identical":
        differ.append((label, fmt, first))

for tag in ("old", "new"):
    rep = reported(tag)
    got = (totals[(tag, "segment changes")], totals[(tag, "dead letters")])
    if rep and rep != got:
        print(f"WARNING: {tag} replay reported {rep[0]} segment changes and {rep[1]} dead letters, the dump holds {got[0]} and {got[1]}")

for label, fmt, first in differ:
    print(f"\nFIRST DIFFERENCE in {label}:")
    if first is None:
        print("    partition sets differ")
        continue
    p, i, ra, rc = first
    if ra and rc and ra[2] is not None and rc[2] is not None:
        j = next((k for k in range(min(len(ra[2]), len(rc[2]))) if ra[2][k] != rc[2][k]), min(len(ra[2]), len(rc[2])))
        print(f"  partition {p}, record #{i}; values first differ at byte {j}")
    else:
        print(f"  partition {p}, record #{i}")
    print(f"  {fmt.format('old')}:\n{show(ra)}")
    print(f"  {fmt.format('new')}:\n{show(rc)}")
sys.exit(1 if differ else 0)
PY
[ "$cmp_rc" -le 1 ] || fail "comparison failed (python exit $cmp_rc)"

# 5. Golden scenarios: report only.
if [ -n "$GO_PID" ]; then
  go_rc=0
  wait "$GO_PID" || go_rc=$?
  GO_PID=""
  npass=$(grep -c -- '--- PASS: TestScenarios/' "$WORK/go-test.log" || true)
  nfail=$(grep -c -- '--- FAIL: TestScenarios/' "$WORK/go-test.log" || true)
  if [ "$go_rc" = 0 ]; then
    say "▶ engine scenarios (go test ./engine -run Scenario -count=1): ok, $npass scenarios passed"
  else
    if [ $((npass + nfail)) = 0 ]; then
      what="no scenario ran: build failure?"
    else
      what="$nfail of $((npass + nfail)) scenarios failed"
    fi
    say "▶ engine scenarios (go test ./engine -run Scenario -count=1): FAILED (exit $go_rc, $what; report only, exit status unchanged)"
    grep -v -e '^=== RUN' -e '--- PASS' "$WORK/go-test.log" | tail -n 40 | sed 's/^/    /'
  fi
elif [ "$GO_TEST" = 1 ]; then
  say "▶ engine scenarios: skipped (no go in PATH)"
fi

if [ "$cmp_rc" = 0 ]; then
  say "RESULT: IDENTICAL — every output topic matches byte for byte (${SECONDS}s)"
else
  say "RESULT: DIFFERENT (${SECONDS}s)"
fi
exit "$cmp_rc"
