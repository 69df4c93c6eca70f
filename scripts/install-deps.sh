#!/usr/bin/env bash
# Installs what `make test` and `make demo` need on a fresh Debian machine:
# Debian packages when running as root (skipped when already present), then
# the npm dependencies from the lock file.
set -euo pipefail
cd "$(dirname "$0")/.."

# command -> Debian package
declare -A need=(
  [gdb]=gdb
  [gdb-multiarch]=gdb-multiarch
  [eu-unstrip]=elfutils
  [zstd]=zstd
  [gzip]=gzip
  [nats-server]=nats-server
  [debuginfod]=debuginfod
  [gcc]=gcc
  [g++]=g++
  [make]=make
  [curl]=curl
  [aarch64-linux-gnu-gcc]=gcc-aarch64-linux-gnu
  [qemu-aarch64]=qemu-user
  [go]=golang-go
)
missing=()
for cmd in "${!need[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "install-deps: apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "install-deps: missing Debian packages (run as root or install them): ${missing[*]}" >&2
  fi
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
