#!/usr/bin/env bash
# Runs every test: the Rust core (`cargo test`) and the JS surface (`node --test`), building the
# addon first when it is missing. Tests that start Syncthing run it inside network namespaces
# they create, so this needs root (or CAP_SYS_ADMIN) and `syncthing` >= 1.19 on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -d node_modules/@napi-rs/cli && -d node_modules/@modelcontextprotocol/sdk ]] || npm install --no-audit --no-fund
compgen -G 'botsync.*.node' >/dev/null && [[ -x botsync-daemon ]] || npm run build
host=$(rustc -vV | sed -n 's/^host: //p')
cargo test --target "$host"
node --test --test-reporter=tap __test__/*.test.mjs
