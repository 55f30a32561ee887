#!/usr/bin/env bash
# Fetches Debian sid's Syncthing (1.29.x, a static Go binary) into a cache directory without
# installing it system-wide, reusing it when present, and prints the binary's path.
# Cache: $BOTSYNC_SYNCTHING_CACHE, else $XDG_CACHE_HOME/botsync (when set), else /var/cache/botsync.
# The archive mirror is the one this machine's apt already uses for Debian (sid beside it).
set -euo pipefail
cache=${BOTSYNC_SYNCTHING_CACHE:-${XDG_CACHE_HOME:+$XDG_CACHE_HOME/botsync}}
cache=${cache:-/var/cache/botsync}
d=$cache/syncthing-sid
bin=$d/x/usr/bin/syncthing
if [[ -x $bin ]] && "$bin" --version >/dev/null 2>&1; then
  echo "$bin"
  exit 0
fi
mirror=$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*debian\)[[:space:]]*$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n 1)
[[ -n $mirror ]] || mirror=$(awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' /etc/apt/sources.list 2>/dev/null)
[[ -n $mirror ]] || { echo "syncthing-sid: no Debian mirror in this machine's apt sources" >&2; exit 1; }
[[ -f /usr/share/keyrings/debian-archive-keyring.gpg ]] || apt-get install -y -qq debian-archive-keyring >/dev/null
rm -rf "$d"
mkdir -p "$d/lists/partial" "$d/cache/archives/partial"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror sid main" >"$d/sources.list"
opts=(-o "Dir::Etc::sourcelist=$d/sources.list" -o Dir::Etc::sourceparts=/dev/null -o "Dir::State::Lists=$d/lists" -o "Dir::Cache=$d/cache")
apt-get "${opts[@]}" update -qq >&2
(cd "$d" && apt-get "${opts[@]}" download syncthing >&2)
dpkg-deb -x "$d"/syncthing_*.deb "$d/x"
rm -rf "$d/lists" "$d/cache"
"$bin" --version >&2
echo "$bin"
