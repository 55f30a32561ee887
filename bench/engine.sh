#!/usr/bin/env bash
# bench/engine.sh - how much botsync adds on top of Syncthing on this machine (issues 2 and 3).
#   1. Syncthing's own start -> REST answering (fresh home, spawned directly) vs
#      `botsync init --network direct` wall time until it returns with the engine running
#      (fresh root each run, a relay on loopback for the code, through `node bin/botsync.js`).
#   2. `botsync status --json` wall time vs `node -e ''` (Node's start floor), measured by
#      bench/status-startup.mjs: with a RUNNING engine (issue 3: within 40 ms of Node) and on an
#      empty, never-initialized root (issue 2: within 25 ms).
# Uses the built addon and daemon in the package root (npm run build: release).
# Runs itself inside a private network namespace (unshare -n), so nothing leaves the machine.
# Usage: bash bench/engine.sh   Env: RUNS=5 (init runs) STATUS_RUNS=40 SYNCTHING=/usr/bin/syncthing
set -euo pipefail
export LC_ALL=C
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [[ ${BENCH_INNER:-} != 1 ]]; then
  exec unshare -n env BENCH_INNER=1 bash "${BASH_SOURCE[0]}" "$@"
fi
ip link set lo up

RUNS=${RUNS:-5}
STATUS_RUNS=${STATUS_RUNS:-40}
ST=${SYNCTHING:-/usr/bin/syncthing}
ls "$HERE"/botsync.*.node >/dev/null 2>&1 || { echo "no addon in $HERE: run npm run build first" >&2; exit 2; }
[[ -x $HERE/botsync-daemon ]] || { echo "no botsync-daemon in $HERE: run npm run build first" >&2; exit 2; }
BOTSYNC=(node "$HERE/bin/botsync.js")
WORK=$(mktemp -d /tmp/botsync-bench-engine.XXXXXX)
RELAY=http://127.0.0.1:18787
PIDS=()
cleanup() {
  for r in "$WORK"/root-*; do [[ -d $r ]] && BOTSYNC_SYNCTHING=$ST "${BOTSYNC[@]}" --root "$r" stop >/dev/null 2>&1 || true; done
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  sleep 0.5
  rm -rf "$WORK"
}
trap cleanup EXIT

now_ns() { date +%s%N; }
ms() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.1f", (b-a)/1e6}'; }
median() { sort -n | awk '{v[NR]=$1} END{print v[int((NR+1)/2)]}'; }
field() { sed -n "s/.*\"$1\":\([0-9.-]*\).*/\1/p"; }

echo "Syncthing: $("$ST" --version | head -1)"
echo "botsync: $("${BOTSYNC[@]}" --version) (addon $(basename "$(ls "$HERE"/botsync.*.node | head -1)"))"
"${BOTSYNC[@]}" relay --listen 127.0.0.1:18787 --no-rate-limits >"$WORK/relay.log" 2>&1 &
PIDS+=("$!")
until curl -s -o /dev/null "$RELAY/"; do sleep 0.02; done

# 1a. raw Syncthing: generate a home, spawn serve, poll the API every 10 ms until it answers.
raw=()
for i in $(seq "$RUNS"); do
  home=$WORK/raw-$i
  "$ST" generate --home="$home" --no-default-folder >/dev/null 2>&1
  port=$((24000 + i))
  key=benchkey$i
  t0=$(now_ns)
  STGUIAPIKEY=$key STGUIADDRESS=127.0.0.1:$port STNOUPGRADE=1 "$ST" serve --home="$home" --no-browser >"$home/log" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  until curl -sf -o /dev/null -H "X-API-Key: $key" "http://127.0.0.1:$port/rest/system/ping"; do sleep 0.01; done
  t1=$(now_ns)
  raw+=("$(ms "$t0" "$t1")")
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
done

# 1b. botsync init (fresh root, direct profile) until it returns with the engine running.
init=()
for i in $(seq "$RUNS"); do
  root=$WORK/root-$i
  t0=$(now_ns)
  BOTSYNC_SYNCTHING=$ST "${BOTSYNC[@]}" --root "$root" init --network direct --relay "$RELAY" --no-wait --json >/dev/null
  t1=$(now_ns)
  init+=("$(ms "$t0" "$t1")")
  [[ $i == "$RUNS" ]] || BOTSYNC_SYNCTHING=$ST "${BOTSYNC[@]}" --root "$root" stop >/dev/null
done
raw_med=$(printf '%s\n' "${raw[@]}" | median)
init_med=$(printf '%s\n' "${init[@]}" | median)

# 2. status: with the last root running, then on a root that does not exist.
root=$WORK/root-$RUNS
"${BOTSYNC[@]}" --root "$root" status --json | grep -q '"state":"running"'
running=$(node "$HERE/bench/status-startup.mjs" --runs "$STATUS_RUNS" --root "$root")
empty=$(node "$HERE/bench/status-startup.mjs" --runs "$STATUS_RUNS")

echo
echo "=== engine start (runs=$RUNS, medians) ==="
echo "raw syncthing spawn -> REST answers : ${raw_med} ms   (all: ${raw[*]})"
echo "botsync init -> engine running       : ${init_med} ms   (all: ${init[*]}; node start included)"
echo "init overhead over Syncthing         : $(awk -v a="$init_med" -v b="$raw_med" 'BEGIN{printf "%.1f ms, ratio %.2f", a-b, a/b}')  (target: <= 300 ms)"
echo
echo "=== status --json vs node -e '' (runs=$STATUS_RUNS, alternating, medians) ==="
for kind in running empty; do
  line=${!kind}
  floor=$(field nodeFloorMedianMs <<<"$line"); ours=$(field statusMedianMs <<<"$line"); over=$(field overheadMs <<<"$line")
  target=40; [[ $kind == empty ]] && target=25
  verdict=$(awk -v o="$over" -v t="$target" 'BEGIN{print (o <= t) ? "met" : "MISSED"}')
  printf '%-8s engine: node -e %s ms, status --json %s ms, overhead %s ms, ratio %s  (target <= %s ms: %s)\n' \
    "$kind" "$floor" "$ours" "$over" "$(field ratio <<<"$line")" "$target" "$verdict"
done
