#!/usr/bin/env bash
# Puts the background process (`botsync-daemon`) next to the addon in the package root, where
# the addon looks for it. Usage: build-daemon.sh [--release] [--launcher] [--target <triple>]
#
# --launcher (what `npm run build` and the npm package use): builds src/launcher, a few
#   kilobytes that load the addon next to them and run the daemon from it, so the crate is
#   compiled and linked once per build (the addon). Needs the addon built first.
# without it: builds the standalone Rust daemon (`--bin botsync-daemon`, no `node` feature, so
#   no napi), as `cargo test` does; a second full build of the crate.
set -euo pipefail
cd "$(dirname "$0")/.."
target=$(rustc -vV | sed -n 's/^host: //p')
profile=debug
launcher=0
args=()
while (($#)); do
  case $1 in
    --release) profile=release; args+=(--release) ;;
    --launcher) launcher=1 ;;
    --target) target=$2; shift ;;
    *) echo "usage: build-daemon.sh [--release] [--launcher] [--target <triple>]" >&2; exit 2 ;;
  esac
  shift
done
if ((launcher)); then
  # A statically linked musl program cannot dlopen; the musl addon is a dynamic library too.
  [[ $target == *musl* ]] && export RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=-crt-static"
  cargo build "${args[@]}" --target "$target" -p botsync-daemon-launcher
  install -m 0755 "target/$target/$profile/botsync-daemon-launcher" ./botsync-daemon
else
  cargo build "${args[@]}" --target "$target" --bin botsync-daemon
  install -m 0755 "target/$target/$profile/botsync-daemon" ./botsync-daemon
fi
