#!/usr/bin/env bash
# `make versions`: the version of each tool the make targets use, one per
# line (`<tool> <version>`, or `<tool> not found`), as found on PATH.
set -uo pipefail

# show <name> <command...>: the first line of the command's output that has a digit.
show() {
  local name="$1"
  shift
  if ! command -v "$1" >/dev/null 2>&1; then
    printf '%-22s not found\n' "$name"
    return
  fi
  local v
  v="$("$@" 2>&1 | grep -m1 '[0-9]')"
  printf '%-22s %s\n' "$name" "${v:-unknown}"
}

show node node --version
show npm npm --version
show tsc npx --no-install tsc --version
show gdb gdb --version
show gdb-multiarch gdb-multiarch --version
show nats-server nats-server --version
show eu-unstrip eu-unstrip --version
show debuginfod debuginfod --version
show zstd zstd --version
show gcc gcc --version
show g++ g++ --version
show aarch64-linux-gnu-gcc aarch64-linux-gnu-gcc --version
show qemu-aarch64 qemu-aarch64 --version
show go go version
show rustc rustc --version
