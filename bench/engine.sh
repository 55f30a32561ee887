#!/usr/bin/env bash
# bench/engine.sh - how much botsync adds on top of Syncthing on this machine.
#   1. Syncthing's own start -> REST answering (fresh home, spawned directly) vs
#      `botsync init --network direct` wall time to "engine running" (fresh root each run).
#   2. `botsync status` wall time with a running engine vs `node -e ''` (Node's start floor);
#      through the native example CLI (cli::run without Node) and, when the addon is built,
#      through `node bin/botsync.js`.
# Runs itself inside a private network namespace (unshare -n), so nothing leaves the machine.
# Usage: sudo bash bench/engine.sh   Env: RUNS=5 (init runs) STATUS_RUNS=30 SYNCTHING=/usr/bin/syncthing
set -euo pipefail
export LC_ALL=C
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [[ ${BENCH_INNER:-} != 1 ]]; then
  exec unshare -n env BENCH_INNER=1 bash "${BASH_SOURCE[0]}" "$@"
fi
ip link set lo up

RUNS=${RUNS:-5}
STATUS_RUNS=${STATUS_RUNS:-30}
ST=${SYNCTHING:-/usr/bin/syncthing}
host=$(rustc -vV | sed -n 's/^host: //p')
(cd "$HERE" && cargo build -q --target "$host" --example cli)
CLI=$HERE/target/$host/debug/examples/cli
WORK=$(mktemp -d /tmp/botsync-bench-engine.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for r in "$WORK"/root-*; do [[ -d $r ]] && BOTSYNC_SYNCTHING=$ST "$CLI" --root "$r" stop >/dev/null 2>&1 || true; done
  sleep 0.5
  rm -rf "$WORK"
}
trap cleanup EXIT

now_ns() { date +%s%N; }
ms() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.1f", (b-a)/1e6}'; }
median() { sort -n | awk '{v[NR]=$1} END{print v[int((NR+1)/2)]}'; }

echo "Syncthing: $("$ST" --version | head -1)"
echo "CLI: $CLI (debug build)"

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
  BOTSYNC_SYNCTHING=$ST "$CLI" --root "$root" init --network direct >/dev/null
  t1=$(now_ns)
  init+=("$(ms "$t0" "$t1")")
  [[ $i == "$RUNS" ]] || BOTSYNC_SYNCTHING=$ST "$CLI" --root "$root" stop >/dev/null
done
raw_med=$(printf '%s\n' "${raw[@]}" | median)
init_med=$(printf '%s\n' "${init[@]}" | median)

# 2. status with the last root running.
root=$WORK/root-$RUNS
"$CLI" --root "$root" status --json | grep -q '"state":"running"'
node -e '' ; "$CLI" --root "$root" status --json >/dev/null # warm caches
floor=(); native=(); viajs=()
addon=$(ls "$HERE"/botsync.*.node 2>/dev/null | head -1 || true)
for i in $(seq "$STATUS_RUNS"); do
  t0=$(now_ns); node -e ''; t1=$(now_ns); floor+=("$(ms "$t0" "$t1")")
  t0=$(now_ns); "$CLI" --root "$root" status --json >/dev/null; t1=$(now_ns); native+=("$(ms "$t0" "$t1")")
  if [[ -n $addon ]]; then
    t0=$(now_ns); node "$HERE/bin/botsync.js" --root "$root" status --json >/dev/null; t1=$(now_ns); viajs+=("$(ms "$t0" "$t1")")
  fi
done
floor_med=$(printf '%s\n' "${floor[@]}" | median)
native_med=$(printf '%s\n' "${native[@]}" | median)

echo
echo "=== engine start (runs=$RUNS, medians) ==="
echo "raw syncthing spawn -> REST answers : ${raw_med} ms   (all: ${raw[*]})"
echo "botsync init -> engine running       : ${init_med} ms   (all: ${init[*]})"
echo "init overhead over Syncthing         : $(awk -v a="$init_med" -v b="$raw_med" 'BEGIN{printf "%.1f ms, ratio %.2f", a-b, a/b}')  (target: <= 300 ms)"
echo
echo "=== status with a running engine (runs=$STATUS_RUNS, medians) ==="
echo "node -e ''                           : ${floor_med} ms"
echo "status --json, native cli::run       : ${native_med} ms   (ratio to node floor $(awk -v a="$native_med" -v b="$floor_med" 'BEGIN{printf "%.2f", a/b}'))"
if [[ -n $addon ]]; then
  js_med=$(printf '%s\n' "${viajs[@]}" | median)
  echo "status --json, node bin/botsync.js   : ${js_med} ms   (ratio to node floor $(awk -v a="$js_med" -v b="$floor_med" 'BEGIN{printf "%.2f", a/b}'), overhead $(awk -v a="$js_med" -v b="$floor_med" 'BEGIN{printf "%.1f", a-b}') ms)"
else
  echo "status via node: skipped (no built addon; run npx napi build --platform)"
fi
