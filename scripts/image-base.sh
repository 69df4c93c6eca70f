#!/usr/bin/env bash
# A stand-in for the image's base, node:24-bookworm-slim, for machines that
# cannot reach Docker Hub: a debootstrap bookworm minbase root with this
# checkout's Node 24 (.tools/node, or the node on PATH) and npm, imported under
# the base's name. Dockerfile.gdb then builds unchanged on top of it.
#
#   scripts/image-base.sh [--base-cache FILE] [--tag node:24-bookworm-slim]
#
# --base-cache FILE reuses (or, when missing, saves) a tarball of the
# debootstrapped root (saves ~2 minutes). Needs root, debootstrap and a
# running dockerd. The registries are reached through this machine's CA trust:
# its extra CA certificates go into the root, and NODE_EXTRA_CA_CERTS points
# npm at them (the real base has neither; the final image inherits only the
# variable, harmless there).
set -euo pipefail
cd "$(dirname "$0")/.."
TAG="node:24-bookworm-slim"
BASE_CACHE=""
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --base-cache) BASE_CACHE="${2:?--base-cache needs a file}"; shift 2 ;;
    --tag) TAG="${2:?--tag needs a name}"; shift 2 ;;
    -h|--help) sed -n 2,15p "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "image-base: unknown option $1" >&2; exit 2 ;;
  esac
done
[[ "$(id -u)" == 0 ]] || { echo "image-base: needs root (debootstrap)" >&2; exit 2; }
node_bin="$(command -v node)"
node_dir="$(cd "$(dirname "$node_bin")/.." && pwd)"
[[ "$("$node_bin" -p 'process.versions.node.split(".")[0]')" == 24 ]] || { echo "image-base: $node_bin is not Node 24 (run scripts/install-node.sh)" >&2; exit 2; }
npm_dir=""
for d in "$node_dir/lib/node_modules/npm" /usr/lib/node_modules/npm /usr/local/lib/node_modules/npm /usr/share/nodejs/npm; do
  [[ -f "$d/bin/npm-cli.js" ]] && { npm_dir="$d"; break; }
done
[[ -n "$npm_dir" ]] || { echo "image-base: no npm found next to $node_bin or in /usr/lib/node_modules" >&2; exit 2; }

root="$(mktemp -d /var/tmp/coresight-image-base.XXXXXX)"
trap 'rm -rf "$root"' EXIT
if [[ -n "$BASE_CACHE" && -f "$BASE_CACHE" ]]; then
  echo "image-base: root from $BASE_CACHE"
  tar -xpf "$BASE_CACHE" -C "$root"
else
  echo "image-base: debootstrap --variant=minbase bookworm ($MIRROR)"
  debootstrap --variant=minbase bookworm "$root" "$MIRROR" >/dev/null
  [[ -n "$BASE_CACHE" ]] && tar -cpf "$BASE_CACHE" -C "$root" .
fi
# Node where the official image has it (/usr/local), headers included (native addons build offline).
install -D -m 0755 "$node_bin" "$root/usr/local/bin/node"
[[ -d "$node_dir/include/node" ]] && { mkdir -p "$root/usr/local/include"; cp -a "$node_dir/include/node" "$root/usr/local/include/"; }
mkdir -p "$root/usr/local/lib/node_modules"
cp -a "$npm_dir" "$root/usr/local/lib/node_modules/npm"
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
# This machine's extra CAs (a TLS-inspecting egress), kept by update-ca-certificates later.
mkdir -p "$root/usr/local/share/ca-certificates" "$root/etc/ssl/certs"
cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/" 2>/dev/null || true
[[ -f /etc/ssl/certs/ca-certificates.crt ]] && cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt' \
  --change 'CMD ["node"]' - "$TAG" >/dev/null
echo "image-base: $TAG ($(docker image inspect -f '{{.Size}}' "$TAG" | awk '{printf "%.0f MB", $1/1e6}')), node $("$node_bin" --version), npm $(node "$npm_dir/bin/npm-cli.js" --version)"
