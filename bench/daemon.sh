#!/usr/bin/env bash
# bench/daemon.sh - issue 5: resident memory of botsync's background process (`botsync-daemon`)
# at idle and after a sync, and the delay from a file landing on the receiving side to its
# OpenClaw webhook POST (debounce excluded). All the work is in bench/daemon.mjs; this wrapper
# gives it a private network namespace (loopback only), so nothing it starts can leave the machine.
# Uses the built addon and daemon in the package root (npm run build). Needs root (unshare -n).
# Usage: bash bench/daemon.sh   Env: SAMPLES=10 SMALL_N=2000 BIG_MIB=64
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ls "$HERE"/botsync.*.node >/dev/null 2>&1 || { echo "no addon in $HERE: run npm run build first" >&2; exit 2; }
[[ -x $HERE/botsync-daemon ]] || { echo "no botsync-daemon in $HERE: run npm run build first" >&2; exit 2; }
exec unshare -n env BENCH_INNER=1 bash -c 'ip link set lo up && exec node "$0"' "$HERE/bench/daemon.mjs"
