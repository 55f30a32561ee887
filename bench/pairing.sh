#!/usr/bin/env bash
# bench/pairing.sh - issue 4: how long `botsync join` takes, next to raw Syncthing's own floor
# measured in the same run.
#   1. raw floor: /work/shared/tools/raw-syncthing.sh (its own `ip netns`, small sizes), its
#      pairing rows: spawn -> REST answers, devices configured -> connected -> folder idle.
#   2. botsync, RUNS times with fresh roots (inside `unshare -n`, loopback only): a relay
#      (`botsync relay`), `init --network direct` on A, a 1 KiB file placed in A/shared, then
#      `join CODE` on B, timed from the moment `join` is spawned:
#        pairedMs / connectedMs     from the JoinReport (start of join inside Rust)
#        join wall                  spawn of `node bin/botsync.js join` -> it exited
#        pre-placed file on B       the file placed on A before join is visible on B
#        written-after file on B    a file written on A as soon as join returned is visible on B
#                                   (from join start, and from the write)
# Uses the built addon and daemon in the package root (npm run build). Needs root (namespaces).
# Usage: bash bench/pairing.sh
# Env:   RUNS=5  RAW_SYNCTHING=/work/shared/tools/raw-syncthing.sh (empty: skip the floor)
#        RAWST_SAMPLES=3 RAWST_BIG_MIB=8 RAWST_SMALL_N=50 (passed to raw-syncthing.sh)
set -euo pipefail
export LC_ALL=C
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=${RUNS:-5}

if [[ ${BENCH_INNER:-} != 1 ]]; then
  RAW=${RAW_SYNCTHING-/work/shared/tools/raw-syncthing.sh}
  FLOOR=$(mktemp /tmp/botsync-bench-pairing-floor.XXXXXX)
  trap 'rm -f "$FLOOR"' EXIT
  if [[ -n $RAW && -f $RAW ]]; then
    echo "== raw Syncthing floor ($RAW) =="
    rawdir=$(mktemp -d /tmp/botsync-bench-rawst.XXXXXX)
    # The tool exits 1 if any of its many checks fails; its pairing rows are still valid then.
    RAWST_DIR=$rawdir RAWST_NETNS=bsbench$$ RAWST_SAMPLES=${RAWST_SAMPLES:-3} RAWST_BIG_MIB=${RAWST_BIG_MIB:-8} \
      RAWST_SMALL_N=${RAWST_SMALL_N:-50} bash "$RAW" >"$rawdir/out.txt" 2>&1 || echo "(raw-syncthing.sh exited $?; see its rows below)"
    grep -E 'startup spawn->REST|\(a\) devices configured|\(b\) devices configured|1KiB A->B, explicit scan' "$rawdir/out.txt" |
      sed -E 's/^ +//; s/  +/  /g' | awk '!seen[$0]++' | tee "$FLOOR"
    rm -rf "$rawdir"
  else
    echo "(raw Syncthing floor skipped: RAW_SYNCTHING=$RAW not found)"
  fi
  # The floor rows travel in a file; the namespace shares the filesystem.
  unshare -n env BENCH_INNER=1 FLOOR="$FLOOR" bash "${BASH_SOURCE[0]}" "$@"
  exit $?
fi
ip link set lo up

BOTSYNC=(node "$HERE/bin/botsync.js")
ls "$HERE"/botsync.*.node >/dev/null 2>&1 || { echo "no addon in $HERE: run npm run build first" >&2; exit 2; }
[[ -x $HERE/botsync-daemon ]] || { echo "no botsync-daemon in $HERE: run npm run build first" >&2; exit 2; }
WORK=$(mktemp -d /tmp/botsync-bench-pairing.XXXXXX)
RELAY_PORT=18787
RELAY=http://127.0.0.1:$RELAY_PORT
RELAY_PID=
cleanup() {
  local r
  for r in "$WORK"/root-*; do [[ -d $r ]] && "${BOTSYNC[@]}" --root "$r" stop >/dev/null 2>&1 || true; done
  [[ -n $RELAY_PID ]] && kill -TERM "$RELAY_PID" 2>/dev/null && wait "$RELAY_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

exec {SLP}<> <(:)
nap() { read -r -t "$1" -u "$SLP" _ 2>/dev/null || true; }
now_us() { local t=$EPOCHREALTIME; echo "${t/./}"; }
stats() { # stats < values in ms -> "min / median / max"
  sort -n | awk '{v[NR]=$1} END{ if (NR==0) {print "n=0"; exit}
    printf "min %.0f / med %.0f / max %.0f ms (n=%d)", v[1], v[int((NR+1)/2)], v[NR], NR }'
}
median() { sort -n | awk '{v[NR]=$1} END{print v[int((NR+1)/2)]}'; }
# wait_file PATH TIMEOUT_S -> prints the microsecond timestamp it appeared (Syncthing renames
# complete files into place, so existence means complete)
wait_file() {
  local path=$1 deadline=$(($(now_us) + $2 * 1000000))
  until [[ -f $path ]]; do
    (($(now_us) > deadline)) && return 1
    nap 0.002
  done
  now_us
}

"${BOTSYNC[@]}" relay --listen "127.0.0.1:$RELAY_PORT" --no-rate-limits >"$WORK/relay.log" 2>&1 &
RELAY_PID=$!
until curl -s -o /dev/null "$RELAY/"; do nap 0.02; done

echo "== botsync join (runs=$RUNS, release addon + daemon, --network direct, relay on loopback) =="
paired=(); connected=(); wall=(); pre=(); post=(); post_write=()
for i in $(seq "$RUNS"); do
  a=$WORK/root-a$i b=$WORK/root-b$i
  code=$("${BOTSYNC[@]}" --root "$a" init --network direct --relay "$RELAY" --no-wait --json | jq -r .invite.code)
  head -c 1024 /dev/urandom >"$a/shared/pre-$i.bin"
  t0=$(now_us)
  report=$("${BOTSYNC[@]}" --root "$b" join "$code" --network direct --relay "$RELAY" --json)
  t1=$(now_us)
  head -c 1024 /dev/urandom >"$a/shared/post-$i.bin"
  tw=$(now_us)
  if ! jq -e .connectedMs <<<"$report" >/dev/null; then
    echo "run $i: join failed: $report" >&2
    exit 1
  fi
  tpre=$(wait_file "$b/shared/pre-$i.bin" 60) || { echo "run $i: pre-placed file never reached B" >&2; exit 1; }
  tpost=$(wait_file "$b/shared/post-$i.bin" 60) || { echo "run $i: written-after file never reached B" >&2; exit 1; }
  paired+=("$(jq .pairedMs <<<"$report")")
  connected+=("$(jq .connectedMs <<<"$report")")
  wall+=("$(((t1 - t0) / 1000))")
  pre+=("$(((tpre - t0) / 1000))")
  post+=("$(((tpost - t0) / 1000))")
  post_write+=("$(((tpost - tw) / 1000))")
  printf '  run %d: paired %s ms, connected %s ms, join wall %s ms, pre-placed on B %s ms, written-after on B %s ms (%s ms after the write)\n' \
    "$i" "${paired[-1]}" "${connected[-1]}" "${wall[-1]}" "${pre[-1]}" "${post[-1]}" "${post_write[-1]}"
  "${BOTSYNC[@]}" --root "$a" stop >/dev/null
  "${BOTSYNC[@]}" --root "$b" stop >/dev/null
done

echo
echo "=== pairing: botsync join (from the start of join) ==="
printf '  %-40s %s\n' "join -> paired (code exchange done)" "$(printf '%s\n' "${paired[@]}" | stats)"
printf '  %-40s %s\n' "join -> connected (JoinReport)" "$(printf '%s\n' "${connected[@]}" | stats)"
printf '  %-40s %s\n' "join wall (node spawn -> exit)" "$(printf '%s\n' "${wall[@]}" | stats)"
printf '  %-40s %s\n' "join -> pre-placed file on B" "$(printf '%s\n' "${pre[@]}" | stats)"
printf '  %-40s %s\n' "join -> file written after join on B" "$(printf '%s\n' "${post[@]}" | stats)"
printf '  %-40s %s\n' "  (write -> on B)" "$(printf '%s\n' "${post_write[@]}" | stats)"
if [[ -s ${FLOOR:-} ]]; then
  echo "=== raw Syncthing floor, same run (raw-syncthing.sh; no pairing protocol, addresses known) ==="
  sed 's/^ */  /' "$FLOOR"
  up=$(sed -n 's/.*startup spawn->REST ping A \/ B *\([0-9.]*\)s.*/\1/p' "$FLOOR")
  conn=$(sed -n 's/.*(a) devices configured -> connected *\([0-9.]*\)s.*/\1/p' "$FLOOR")
  if [[ -n $up && -n $conn ]]; then
    floor_ms=$(awk -v u="$up" -v c="$conn" 'BEGIN{printf "%.0f", (u+c)*1000}')
    med=$(printf '%s\n' "${connected[@]}" | median)
    printf '  %-40s %s ms (A start -> REST + configured -> connected)\n' "raw floor for join -> connected" "$floor_ms"
    printf '  %-40s %s\n' "botsync connected median / floor" "$(awk -v m="$med" -v f="$floor_ms" 'BEGIN{printf "%.2f (+%.0f ms)", m/f, m-f}')"
  fi
fi
max=$(printf '%s\n' "${connected[@]}" | sort -n | tail -1)
med=$(printf '%s\n' "${connected[@]}" | median)
echo "targets: join -> connected median <= 2500 ms: $( ((med <= 2500)) && echo met || echo MISSED) ($med ms); never above 5000 ms: $( ((max <= 5000)) && echo met || echo MISSED) (max $max ms)"
