#!/usr/bin/env bash
# Packs what `npm publish` would ship for this host: the main package (with the
# optionalDependencies that `napi prepublish` adds at publish time) and this platform's package
# (addon + background process). Usage: pack.sh OUT_DIR. Prints the two tarball paths.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=$(mkdir -p "$1" && cd "$1" && pwd)
cd "$root"
node_file=$(ls botsync.*.node | head -n 1)
platform=${node_file#botsync.}
platform=${platform%.node}
[[ -x botsync-daemon ]] || { echo "pack: build first (npm run build)" >&2; exit 1; }

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/main/bin" "$stage/platform"
cp index.js index.d.ts README.md "$stage/main/"
cp bin/botsync.js "$stage/main/bin/"
node -e '
  const fs = require("fs");
  const pkg = JSON.parse(fs.readFileSync("package.json", "utf8"));
  const platforms = fs.readdirSync("npm");
  pkg.optionalDependencies = Object.fromEntries(platforms.map((p) => [`${pkg.name}-${p}`, pkg.version]));
  delete pkg.devDependencies;
  delete pkg.scripts;
  fs.writeFileSync(process.argv[1], JSON.stringify(pkg, null, 2));
' "$stage/main/package.json"
cp "npm/$platform/package.json" "$stage/platform/"
cp "$node_file" botsync-daemon "$stage/platform/"
(cd "$stage/main" && npm pack --silent --pack-destination "$out" >/dev/null)
(cd "$stage/platform" && npm pack --silent --pack-destination "$out" >/dev/null)
ls "$out"/botsync-[0-9]*.tgz "$out/botsync-$platform-"*.tgz
