#!/usr/bin/env bash
# The end-to-end subset (pairing, latency, notifications, crash recovery, live REST conformance) on each Syncthing
# version given, then one mixed pair (a host on the first, a joiner on the second). Usage:
# test-versions.sh OLD_SYNCTHING NEW_SYNCTHING. Prints pass/fail per test and the latency figures.
# `npm test` already runs everything on Debian's Syncthing; CI runs this beside it.
set -euo pipefail
cd "$(dirname "$0")/.."
old=$1 new=$2
host=$(rustc -vV | sed -n 's/^host: //p')
subset=(--test it -- pairing_e2e:: versions_pairing:: notify_e2e:: reliability_crash:: engine_conformance_live::)
figures=$(mktemp)
trap 'rm -f "$figures"' EXIT
export BOTSYNC_TEST_FIGURES=$figures
run() {
  local log rc=0
  log=$(mktemp)
  "$@" >"$log" 2>&1 || rc=$?
  grep -E '^test |^test result' "$log" || true
  # The panic messages first: the last lines of a failed isolated test are mostly its backtrace.
  ((rc == 0)) || { echo "-- failed ($rc); panics:"; grep -A 6 "panicked at" "$log" | grep -v "^ *at \|^ *[0-9]*: " | head -n 60 || true; echo "-- last lines:"; tail -n 40 "$log"; }
  rm -f "$log"
  return "$rc"
}
for st in "$old" "$new"; do
  echo "== e2e subset on $("$st" --version | head -n 1)"
  started=$SECONDS
  BOTSYNC_TEST_SYNCTHING=$st run cargo test --target "$host" "${subset[@]}"
  echo "   took $((SECONDS - started)) s"
done
echo "== mixed pair: host $("$old" --version | head -n 1) <-> joiner $("$new" --version | head -n 1)"
BOTSYNC_TEST_SYNCTHING=$old BOTSYNC_TEST_SYNCTHING_PEER=$new run cargo test --target "$host" --test it -- versions_pairing::
echo "== figures"
cat "$figures"
