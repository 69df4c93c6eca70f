#!/usr/bin/env bash
# Builds a foreign-architecture fixture: an aarch64 program that dereferences
# NULL, crashed under qemu-user, into build/fixtures/aarch64-null/:
#
#   aarch64-null/null       the static aarch64 binary (with DWARF and a build-id)
#   aarch64-null/null.c     its source
#   aarch64-null/core       the guest core (qemu writes qemu_<prog>_<date>_<pid>.core)
#   aarch64-null/.stamp     hash of the inputs; equal hash = up to date
#
# Static linking lets qemu-aarch64 run it without an aarch64 sysroot.
# What qemu-user's core holds (checked with qemu 7.2): notes (PRSTATUS,
# PRPSINFO, AUXV) and the writable memory, but no NT_FILE and no read-only
# text pages, so the core records no build-id: eu-unstrip recognizes no
# module and the executable can only be given with --exe.
# The qemu process itself also dies of the re-raised SIGSEGV and the kernel
# writes a host (x86_64) `core` of qemu: it is deleted.
#
# Needs: gcc-aarch64-linux-gnu, libc6-dev-arm64-cross, qemu-user (make deps
# installs them); fails, naming them, when they are missing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${FIXTURES_OUT:-$ROOT/build/fixtures}/aarch64-null"
CC="${AARCH64_CC:-aarch64-linux-gnu-gcc}"
QEMU="${QEMU_AARCH64:-qemu-aarch64}"

for tool in "$CC" "$QEMU"; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "build-aarch64-fixture: $tool not installed (Debian: apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user; make deps does)" >&2
    exit 1
  fi
done

SRC='#include <stdio.h>
struct item { int value; };
__attribute__((noinline)) int crash_here(struct item *it) {
  return it->value; /* CRASH LINE */
}
int main(int argc, char **argv) {
  struct item *it = argc > 100 ? (struct item *)argv : NULL;
  printf("%d\n", crash_here(it));
  return 0;
}
'
STAMP="$({ cat "${BASH_SOURCE[0]}"; "$CC" --version | head -1; "$QEMU" --version | head -1; } | sha256sum | cut -c1-64)"
if [[ "${FIXTURES_FORCE:-}" != 1 && -f "$OUT/.stamp" && -f "$OUT/core" && "$(cat "$OUT/.stamp")" == "$STAMP" ]]; then
  exit 0
fi

rm -rf "$OUT"
mkdir -p "$OUT"
cd "$OUT"
printf '%s' "$SRC" > null.c
# The source is named null.c and the compile directory "." in the debug info: no path of this machine.
"$CC" -g -O0 -fno-omit-frame-pointer -static -Wl,--build-id -ffile-prefix-map="$OUT"=. -ffile-prefix-map="$OUT"/= -o null null.c

set +e
bash -c "ulimit -c unlimited; exec $QEMU ./null" >/dev/null 2>&1
status=$?
set -e
rm -f core # the host core of qemu itself, not the guest's
shopt -s nullglob
cores=(qemu_null_*.core)
if (( ${#cores[@]} == 0 )); then
  echo "build-aarch64-fixture: ./null exited $status under $QEMU but qemu wrote no qemu_null_*.core in $OUT (ulimit -c? qemu built without core dump support?)" >&2
  exit 1
fi
mv "${cores[0]}" core
echo "$STAMP" > .stamp
echo "build-aarch64-fixture: $OUT/core ($(stat -c %s core) bytes, exit status $status)"
