#!/usr/bin/env bash
# The 10-machine mesh (issue 14): joins one by one through different members, a 1 KiB file from
# every member to all others, removing the busiest member. Builds examples/mesh_bench.rs and the
# daemon in one cargo run and runs the benchmark once per Syncthing: BOTSYNC_SYNCTHING if set,
# else /usr/bin/syncthing and then Debian sid's (scripts/syncthing-sid.sh). Needs root: each
# machine is its own network namespace (mesh-<tag>-mNN, a bridge in mesh-<tag>-hub).
# Env: MESH_N (10), MESH_SAMPLES (20), MESH_AFTER_SAMPLES (N-1), BENCH_PROFILE=release|debug,
# BOTSYNC_DAEMON_BIN (default: the daemon built here).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
TARGET=$(rustc -vV | sed -n 's/^host: //p')
PROFILE=${BENCH_PROFILE:-release}
flags=(--features bench); [[ $PROFILE == release ]] && flags+=(--release)
nice -n 19 cargo build --quiet "${flags[@]}" --target "$TARGET" --example mesh_bench --bin botsync-daemon
export BOTSYNC_DAEMON_BIN=${BOTSYNC_DAEMON_BIN:-$PWD/target/$TARGET/$PROFILE/botsync-daemon}
if [[ -n ${BOTSYNC_SYNCTHING:-} ]]; then
  binaries=("$BOTSYNC_SYNCTHING")
else
  binaries=(/usr/bin/syncthing "$(bash scripts/syncthing-sid.sh)")
fi
status=0
i=0
for bin in "${binaries[@]}"; do
  i=$((i + 1))
  tag="$$-$i"
  # Whatever happens, no namespace of this run outlives it (the benchmark deletes them itself).
  cleanup() { ip netns list | awk '{print $1}' | grep "^mesh-$tag-" | xargs -r -n1 ip netns del || true; }
  trap cleanup EXIT
  BOTSYNC_SYNCTHING=$bin MESH_TAG=$tag "target/$TARGET/$PROFILE/examples/mesh_bench" || status=$?
  cleanup
done
exit $status
