#!/usr/bin/env bash
# The "foreign Debian" fixture of the image symbol source (issue 13): a
# Debian bullseye root (glibc 2.31, not the worker's 2.36), a crash made
# inside it, what gdb prints inside it, and the files the image tests push:
#
#   build/bullseye/root/           debootstrap --variant=minbase bullseye (+ libc6-dbg, gcc, gdb)
#   build/bullseye/base.tar        the root as first installed (minbase + libc6-dbg): the image's base layer
#   build/bullseye/base.tar.zst    the same, compressed once
#   build/bullseye/crash           fixtures/image/bullseye-crash.c built inside the root (-g)
#   build/bullseye/crash.stripped  the same binary stripped (the app layer)
#   build/bullseye/crash.debug     its debug file (objcopy --only-keep-debug; the debug layer)
#   build/bullseye/core            its core, crashed inside the root (chroot)
#   build/bullseye/expected-bt.txt gdb's `bt` of that core, run inside the root
#   build/bullseye/.stamp          hash of the inputs; equal = up to date (a rerun takes no time)
#
# Needs root (debootstrap, chroot) and deb.debian.org; ~3-5 minutes the first time.
# The tests fail naming this script when its output is missing.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${BULLSEYE_OUT:-$ROOT/build/bullseye}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SRC="$ROOT/fixtures/image/bullseye-crash.c"
stamp="$({ sha256sum "${BASH_SOURCE[0]}" "$SRC" | cut -c1-64; echo "$MIRROR"; } | sha256sum | cut -c1-64)"
if [[ "${BULLSEYE_FORCE:-}" != 1 && -f "$OUT/.stamp" && "$(cat "$OUT/.stamp")" == "$stamp" ]]; then
  exit 0
fi
if [[ "$(id -u)" != 0 ]]; then
  echo "build-bullseye-image: needs root (debootstrap, chroot); run: sudo bash scripts/build-bullseye-image.sh" >&2
  exit 1
fi
command -v debootstrap >/dev/null || { echo "build-bullseye-image: debootstrap missing (apt-get install debootstrap)" >&2; exit 1; }

rm -rf "$OUT"
mkdir -p "$OUT"
R="$OUT/root"
echo "build-bullseye-image: debootstrap bullseye into $R"
debootstrap --variant=minbase --include=libc6-dbg bullseye "$R" "$MIRROR" >"$OUT/debootstrap.log" 2>&1 \
  || { tail -20 "$OUT/debootstrap.log" >&2; exit 1; }
# The base layer: the root as a container image would ship it (no apt lists, caches, logs).
tar --numeric-owner -C "$R" --exclude=./var/cache/apt/archives/'*.deb' --exclude=./var/lib/apt/lists/'*' \
  --exclude=./proc/'*' --exclude=./sys/'*' --exclude=./dev/'*' -cf "$OUT/base.tar" .

cp /etc/resolv.conf "$R/etc/resolv.conf"
chroot "$R" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
  sh -c 'apt-get update -qq && apt-get install -y -qq --no-install-recommends gcc libc6-dev gdb >/dev/null' >>"$OUT/debootstrap.log" 2>&1 \
  || { tail -20 "$OUT/debootstrap.log" >&2; exit 1; }

mkdir -p "$R/app" "$R/src"
cp "$SRC" "$R/src/crash.c"
chroot "$R" /usr/bin/env -i PATH=/usr/bin:/bin sh -c 'cd /src && gcc -g -O0 -fno-omit-frame-pointer -Wl,--build-id -o /app/crash crash.c'
rm -f "$R"/app/core*
chroot "$R" /usr/bin/env -i PATH=/usr/bin:/bin sh -c 'ulimit -c unlimited; cd /app && ./crash' || true
core="$(ls "$R"/app/core* 2>/dev/null | head -1 || true)"
if [[ -z "$core" ]]; then
  # core_pattern does not write into the cwd (a pipe handler): gdb's generate-core-file inside the root instead.
  chroot "$R" /usr/bin/env -i PATH=/usr/bin:/bin gdb -batch -ex run -ex 'generate-core-file /app/core' /app/crash >/dev/null 2>&1
  core="$R/app/core"
fi
mv "$core" "$OUT/core"
cp "$OUT/core" "$R/app/core"
# What gdb prints inside the root: the reference the image source must match.
chroot "$R" /usr/bin/env -i PATH=/usr/bin:/bin gdb -batch -nx -ex 'set pagination off' -ex 'bt' /app/crash /app/core \
  >"$OUT/expected-bt.txt" 2>"$OUT/expected-bt.stderr"
rm -f "$R/app/core"
cp "$R/app/crash" "$OUT/crash"
# The base layer compressed once (zstd: the image tests push it as a zstd layer, app layers as gzip).
zstd -q -T0 -3 -f "$OUT/base.tar" -o "$OUT/base.tar.zst"
objcopy --only-keep-debug "$OUT/crash" "$OUT/crash.debug"
objcopy --strip-all "$OUT/crash" "$OUT/crash.stripped"
echo "$stamp" >"$OUT/.stamp"
echo "build-bullseye-image: done ($(grep -c '^#' "$OUT/expected-bt.txt") frames in expected-bt.txt)"
