#!/usr/bin/env bash
# Sync latency and throughput: raw Syncthing vs botsync (two real roots, init + join, release
# daemons doing fast scans), optionally vs raw + botsync's watcher in-process ("ours").
# Builds examples/latency_bench.rs and runs it; the binary re-executes itself inside a private
# network namespace (`unshare -n`, loopback only), so it needs root (or user namespaces).
# Env knobs: see the header of examples/latency_bench.rs (BENCH_ONLY, BENCH_SAMPLES, ...).
# BENCH_PROFILE=release (default) or debug.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
TARGET=$(rustc -vV | sed -n 's/^host: //p')
PROFILE=${BENCH_PROFILE:-release}
flags=(--features bench); [[ $PROFILE == release ]] && flags+=(--release)
cargo build --quiet "${flags[@]}" --target "$TARGET" --example latency_bench
# The botsync subject's roots start the daemon that sits next to the addon (npm run build).
if [[ -z ${BOTSYNC_DAEMON_BIN:-} ]]; then
  [[ -x botsync-daemon ]] || { echo "no ./botsync-daemon: run npm run build (or set BOTSYNC_DAEMON_BIN)" >&2; exit 2; }
  export BOTSYNC_DAEMON_BIN=$PWD/botsync-daemon
fi
exec "target/$TARGET/$PROFILE/examples/latency_bench" "$@"
