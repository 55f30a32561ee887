#!/usr/bin/env bash
# Large folder (issue 14): a 100,000-file tree (1-64 KiB, 8 levels) on A, synced to B by raw
# Syncthing and by botsync in the same run: join time, daemon memory with every directory
# watched, idle CPU side by side, one 1 KiB change against the raw-scan floor.
# Builds examples/folder_bench.rs and botsync-daemon and runs it; the binary re-executes itself
# inside a private network namespace (`unshare -n`, loopback only), so it needs root.
# Env knobs: see the header of examples/folder_bench.rs (BENCH_FILES, BENCH_IDLE_S, ...).
# BENCH_PROFILE=release (default) or debug. BOTSYNC_SYNCTHING=<binary> picks the Syncthing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
TARGET=$(rustc -vV | sed -n 's/^host: //p')
PROFILE=${BENCH_PROFILE:-release}
flags=(--features bench); [[ $PROFILE == release ]] && flags+=(--release)
nice -n 19 cargo build --quiet "${flags[@]}" --target "$TARGET" --example folder_bench --bin botsync-daemon
export BOTSYNC_DAEMON_BIN=${BOTSYNC_DAEMON_BIN:-$PWD/target/$TARGET/$PROFILE/botsync-daemon}
exec "target/$TARGET/$PROFILE/examples/folder_bench" "$@"
