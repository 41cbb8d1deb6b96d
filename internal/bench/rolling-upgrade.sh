#!/usr/bin/env bash
# Rolling-upgrade check of a state version change (README: Upgrades): NEW runs
# with --state-version 3 on one state dir, then OLD (a build that writes
# version 3 and refuses version 4) runs on that dir over more data, and on a
# fresh dir that restores from the changelog NEW wrote; both must work. The
# control: NEW without the flag, then OLD on its dir, must stop with
# "unknown state version 4" (else this check proves nothing).
#
#   internal/bench/rolling-upgrade.sh OLD_BINARY NEW_BINARY [PORT]
#
# Exit status 0: the three OLD runs behave as said. Runs each `run` ~20 s.
set -uo pipefail
if [ $# -lt 2 ]; then sed -n '2,10p' "$0" >&2; exit 2; fi
OLD=$(realpath "$1") NEW=$(realpath "$2") PORT=${3:-19411}
W=$(mktemp -d /tmp/rolling.XXXX); cd "$W" || exit 1
B=127.0.0.1:$PORT
"$NEW" broker --listen $B > broker.log 2>&1 & BPID=$!
trap 'kill $BPID 2>/dev/null' EXIT
sleep 1
"$NEW" generate --brokers $B --sirens 300 --days 40 --seed 3 --start 2026-01-01 > gen1.log 2>&1 || { echo "generate failed: $W/gen1.log"; exit 1; }
# run NAME BINARY DIR GROUP [flags]: runs ~20 s, stops it with SIGTERM; prints its exit status.
run() {
  local name=$1 bin=$2 dir=$3 group=$4; shift 4
  "$bin" run --brokers $B --state-dir "$W/$dir" --group "$group" --log-format console "$@" > "$name.log" 2>&1 & local p=$!
  for _ in $(seq 20); do sleep 1; kill -0 $p 2>/dev/null || break; done
  kill -TERM $p 2>/dev/null; wait $p; echo $?
}
rc=0
[ "$(run new-v3 "$NEW" a g1 --state-version 3)" = 0 ] || { echo "FAIL: NEW --state-version 3"; rc=1; }
[ "$(run new-v4 "$NEW" c g2)" = 0 ] || { echo "FAIL: NEW"; rc=1; }
"$OLD" generate --brokers $B --sirens 300 --days 20 --seed 4 --start 2026-02-10 > gen2.log 2>&1 || { echo "generate failed: $W/gen2.log"; exit 1; }
s=$(run old-on-v3-dir "$OLD" a g1)
if [ "$s" != 0 ] || grep -q 'unknown state version' old-on-v3-dir.log || ! grep -q 'caught up' old-on-v3-dir.log; then echo "FAIL: OLD on NEW's version-3 dir (exit $s)"; rc=1; else echo "ok: OLD continued on the dir NEW wrote with --state-version 3"; fi
s=$(run old-restore-v3 "$OLD" b g1)
if [ "$s" != 0 ] || ! grep -q 'restoring partition state from the changelog' old-restore-v3.log || grep -q 'unknown state version' old-restore-v3.log; then echo "FAIL: OLD restoring NEW's version-3 changelog (exit $s)"; rc=1; else echo "ok: OLD restored from the changelog NEW wrote with --state-version 3"; fi
s=$(run old-on-v4-dir "$OLD" c g2)
if grep -q 'unknown state version 4' old-on-v4-dir.log; then echo "ok (control): OLD refuses NEW's default dir: unknown state version 4"; else echo "FAIL (control): OLD did not refuse version 4 states (exit $s)"; rc=1; fi
echo "logs: $W"
exit $rc
