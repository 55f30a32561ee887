#!/usr/bin/env bash
# One command for a newcomer: installs the build tools, builds botsync, and runs `botsync demo`
# (two throwaway roots on this machine pair through an in-process relay and sync a file each
# way; no traffic leaves the machine). With nothing built yet it builds the debug profile: about
# a minute on 2 cores, where the release build (what npm users get) takes about two and a half;
# an existing build, release included, is used as it is.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v syncthing >/dev/null && [[ -z ${BOTSYNC_SYNCTHING:-} ]]; then
  if command -v apt-get >/dev/null && [[ $EUID -eq 0 ]]; then
    apt-get update -qq && apt-get install -y -qq syncthing >/dev/null
  else
    echo "demo: Syncthing is needed offline: install it (apt-get install syncthing, brew install syncthing) or set BOTSYNC_SYNCTHING" >&2
    exit 1
  fi
fi
[[ -d node_modules/@napi-rs/cli ]] || npm install --no-audit --no-fund
compgen -G 'botsync.*.node' >/dev/null && [[ -x botsync-daemon ]] || npm run build:debug
exec node bin/botsync.js demo "$@"
