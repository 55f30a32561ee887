#!/usr/bin/env bash
# Puts the native background process (`botsync-daemon`) for the host next to the addon in the
# package root, where the addon looks for it. Usage: build-daemon.sh [--release] [--no-build]
#
# `npm run build` compiles the addon and the daemon in ONE cargo run (`napi build` builds every
# target of the crate) and then calls this with --no-build, which only installs that binary: a
# second cargo run would compile the whole crate again (napi build passes environment variables a
# plain cargo run does not, so their fingerprints never match). Without --no-build this builds
# the daemon alone (no `node` feature, so without napi).
set -euo pipefail
cd "$(dirname "$0")/.."
host=$(rustc -vV | sed -n 's/^host: //p')
profile=debug
build=1
args=()
for arg in "$@"; do
  case $arg in
    --release) profile=release; args+=(--release) ;;
    --no-build) build=0 ;;
    *) echo "usage: build-daemon.sh [--release] [--no-build]" >&2; exit 2 ;;
  esac
done
if ((build)); then
  cargo build "${args[@]}" --target "$host" --bin botsync-daemon
fi
install -m 0755 "target/$host/$profile/botsync-daemon" ./botsync-daemon
