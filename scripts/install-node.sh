#!/usr/bin/env bash
# Provides the Node.js the project runs on (Node 24 LTS) in .tools/node when
# the machine's own node is older than the minimum (22.15: zstd in node:zlib,
# the AWS SDK's and @nats-io's engine ranges). The binary comes from the npm
# registry's `node-linux-<arch>` package, which ships it with its headers
# (include/node, for native addons built offline); nothing else is fetched.
#
#   .tools/node -> node-v<version>      bin/node, include/node, ...
#
# The Makefile puts .tools/node/bin first on PATH, so every target, the tests
# and the npm scripts run on it; the system npm (a JS program) runs on it too.
# Idempotent: nothing is fetched when the pinned version is already there or
# the system node is new enough. Prints the node that will be used.
#
# npm run on this node reads its global configuration from
# .tools/node/etc/npmrc (npm's prefix is the running node's), not from the
# machine's (/usr/etc/npmrc for Debian's node): a registry, proxy or cafile
# configured there (a TLS-intercepting proxy's CA: npm pack then failed with
# SELF_SIGNED_CERT_IN_CHAIN) would be lost. So .tools/node/etc/npmrc is a link
# to the file the machine's npm reads, when there is one.
#
# Environment: CORESIGHT_NODE_VERSION (default below; bump it to move to a
# newer 24.x), CORESIGHT_FORCE_NODE=1 provides it even when the system node
# would do.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
VERSION="${CORESIGHT_NODE_VERSION:-24.22.3}"
MIN_MAJOR=22
MIN_MINOR=15

# version_ok <node binary>: exit 0 when it is at least MIN_MAJOR.MIN_MINOR.
version_ok() {
  "$1" -e "const [a, b] = process.versions.node.split('.').map(Number); process.exit(a > $MIN_MAJOR || (a === $MIN_MAJOR && b >= $MIN_MINOR) ? 0 : 1)" 2>/dev/null
}

# PATH without .tools/node/bin (it may already come first): the machine's own node and npm.
SYSTEM_PATH="$(printf '%s' "$PATH" | tr ':' '\n' | grep -vxF "$TOOLS/node/bin" | paste -sd:)"

# link_npmrc <node dir>: <node dir>/etc/npmrc -> the global npmrc the machine's npm reads, if it has one.
# Once: asking npm costs a node start-up, and every make target runs this script.
link_npmrc() {
  local global
  [[ -e "$1/etc/npmrc" || -L "$1/etc/npmrc" ]] && return 0
  global="$(PATH="$SYSTEM_PATH" npm config get globalconfig 2>/dev/null || true)"
  [[ -n "$global" && -f "$global" && "$global" != "$1/etc/npmrc" ]] || return 0
  mkdir -p "$1/etc"
  ln -sfn "$global" "$1/etc/npmrc"
}

if [[ -x "$TOOLS/node/bin/node" && "$("$TOOLS/node/bin/node" --version 2>/dev/null)" == "v$VERSION" ]]; then
  link_npmrc "$TOOLS/node-v$VERSION"
  exit 0
fi
system_node="$(PATH="$SYSTEM_PATH" command -v node || true)"
if [[ "${CORESIGHT_FORCE_NODE:-}" != 1 && -n "$system_node" ]] && version_ok "$system_node"; then
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "install-node: npm is not installed; it is needed to fetch Node $VERSION (Debian: apt-get install npm)" >&2
  exit 1
fi

case "$(uname -m)" in
  x86_64) arch=x64 ;;
  aarch64) arch=arm64 ;;
  *) echo "install-node: no node-linux package for $(uname -m); install Node >= $MIN_MAJOR.$MIN_MINOR yourself" >&2; exit 1 ;;
esac

echo "install-node: system node is ${system_node:+$("$system_node" --version) }older than $MIN_MAJOR.$MIN_MINOR; fetching Node $VERSION (npm package node-linux-$arch) into .tools/node"
mkdir -p "$TOOLS"
tmp="$(mktemp -d "$TOOLS/.node-XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
# npm pack verifies the tarball's integrity against the registry's record.
(cd "$tmp" && npm pack --silent "node-linux-$arch@$VERSION" >/dev/null)
tar -xzf "$tmp"/node-linux-"$arch"-*.tgz -C "$tmp"
if ! "$tmp/package/bin/node" --version >/dev/null 2>&1; then
  echo "install-node: the fetched node-linux-$arch@$VERSION does not run on this machine" >&2
  exit 1
fi
rm -rf "$TOOLS/node-v$VERSION"
mv "$tmp/package" "$TOOLS/node-v$VERSION"
link_npmrc "$TOOLS/node-v$VERSION"
ln -sfn "node-v$VERSION" "$TOOLS/node"
echo "install-node: $("$TOOLS/node/bin/node" --version) in .tools/node/bin"
