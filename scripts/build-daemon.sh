#!/usr/bin/env bash
# Builds the native background process (`botsync-daemon`) for the host and puts it next to the
# addon in the package root, where the addon looks for it. Usage: build-daemon.sh [--release]
set -euo pipefail
cd "$(dirname "$0")/.."
host=$(rustc -vV | sed -n 's/^host: //p')
profile=debug
args=()
if [[ ${1:-} == --release ]]; then profile=release; args+=(--release); fi
cargo build "${args[@]}" --target "$host" --bin botsync-daemon
install -m 0755 "target/$host/$profile/botsync-daemon" ./botsync-daemon
