#!/usr/bin/env bash
# Fast-scan latency benchmark: raw Syncthing vs. Syncthing + botsync's watcher on the sender.
# Builds examples/latency_bench.rs and runs it; the binary re-executes itself inside a private
# network namespace (`unshare -n`, loopback only), so it needs root (or user namespaces).
# Env knobs: see the header of examples/latency_bench.rs (BENCH_SAMPLES, BENCH_BIG_MIB, ...).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
TARGET=$(rustc -vV | sed -n 's/^host: //p')
# Debug build on purpose (shared 2-core machine): the watcher's work per event is tiny; the
# numbers are dominated by Syncthing.
cargo build --quiet --target "$TARGET" --example latency_bench
exec "target/$TARGET/debug/examples/latency_bench" "$@"
