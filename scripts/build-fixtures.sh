#!/usr/bin/env bash
# Builds the crash fixtures: compiles each program of fixtures/crashes/ and
# crashes it into a real core under build/fixtures/<name>/:
#
#   build/fixtures/<name>/<name>   the binary (point `analyze --exe` at it)
#   build/fixtures/<name>/core     its core
#   build/fixtures/<name>/.stamp   hash of the inputs; equal hash = up to date
#
# Idempotent and fast when up to date: a fixture is rebuilt only when its
# source, this script or the compiler changed.
#
# Cores: `ulimit -c unlimited` and the kernel's core_pattern writing `core`
# (or `core.<pid>`) in the crashing process's cwd. When core_pattern pipes to
# a handler (systemd-coredump, apport) or names another directory, no core
# lands in the cwd; the script then falls back to running the program under
# gdb and `generate-core-file` (same crash, same threads; siginfo is kept).
# To get kernel cores there instead, as root: `echo core > /proc/sys/kernel/core_pattern`.
#
# Environment: FIXTURES_OUT (default build/fixtures), CC, CXX, RUSTC, GO,
# FIXTURES_FORCE=1 rebuilds everything.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SRC="$ROOT/fixtures/crashes"
OUT="${FIXTURES_OUT:-$ROOT/build/fixtures}"
CC="${CC:-gcc}"
CXX="${CXX:-g++}"
# No path of the building machine enters a binary: sources are named
# fixtures/crashes/<file> and the compile directory "." in the debug info
# (the last matching map wins), so results and goldens are the same on every
# machine. Compiles run from $ROOT (the directory recorded as DW_AT_comp_dir).
PREFIX_MAP=(-ffile-prefix-map="$ROOT"=. -ffile-prefix-map="$ROOT"/=)
CFLAGS_DEBUG=(-g -O0 -fno-omit-frame-pointer -Wl,--build-id "${PREFIX_MAP[@]}")
CFLAGS_OPT=(-g -O2 -fno-omit-frame-pointer -Wl,--build-id "${PREFIX_MAP[@]}")
SCRIPT_HASH="$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-64)"
cd "$ROOT"

find_rustc() {
  if [[ -n "${RUSTC:-}" ]]; then echo "$RUSTC"; return; fi
  if command -v rustc >/dev/null 2>&1; then command -v rustc; return; fi
  if [[ -x /root/.cargo/bin/rustc ]]; then echo /root/.cargo/bin/rustc; return; fi
  if [[ -n "${HOME:-}" && -x "$HOME/.cargo/bin/rustc" ]]; then echo "$HOME/.cargo/bin/rustc"; return; fi
}
RUSTC_BIN="$(find_rustc || true)"

mkdir -p "$OUT"
FAILED=0

# stamp_of <tool version> <files...>: a hash over the inputs of one fixture.
stamp_of() {
  local tool="$1"
  shift
  { echo "$SCRIPT_HASH"; echo "$tool"; cat "$@"; } | sha256sum | cut -c1-64
}

up_to_date() { # <name> <stamp>
  local dir="$OUT/$1"
  [[ "${FIXTURES_FORCE:-}" != 1 && -f "$dir/.stamp" && -f "$dir/core" && "$(cat "$dir/.stamp")" == "$2" ]]
}

# crash <dir> <binary name>: runs ./<binary> in <dir> with cores enabled and
# leaves the core at <dir>/core. Falls back to gdb's generate-core-file when
# the kernel wrote no core in the cwd.
# Extra arguments are NAME=value settings for the program's environment.
crash() {
  local dir="$1" bin="$2" status
  shift 2
  rm -f "$dir"/core "$dir"/core.*
  # A small stack limit keeps thread stacks (glibc sizes them from it) and so
  # the cores small; a clean environment keeps the cores reproducible (and
  # RUST_BACKTRACE unset would let a Rust panic hook allocate megabytes).
  # The command substitution's own shell reports "Segmentation fault (core
  # dumped)", into /dev/null, instead of this script's.
  status="$({ (cd "$dir" && ulimit -c unlimited && ulimit -s 512 &&
    exec env -i PATH=/usr/bin:/bin RUST_BACKTRACE=0 "$@" "./$bin") >/dev/null 2>&1; echo $?; } 2>/dev/null)"
  if ((status <= 128)); then
    echo "  $bin exited with status $status instead of dying from a signal" >&2
    return 1
  fi
  local found
  found="$(find "$dir" -maxdepth 1 -name 'core*' -type f ! -name '*.gz' ! -name '*.zst' | head -n1)"
  if [[ -n "$found" ]]; then
    [[ "$found" == "$dir/core" ]] || mv "$found" "$dir/core"
    return 0
  fi
  # No kernel core here (core_pattern pipes elsewhere): let gdb write it.
  (cd "$dir" && ulimit -c 0 && ulimit -s 512 && env RUST_BACKTRACE=0 "$@" gdb -nx -nh -batch -iex 'set auto-load off' -iex 'set debuginfod enabled off' \
    -ex run -ex 'generate-core-file core' --args "./$bin") >/dev/null 2>&1 || true
  if [[ ! -s "$dir/core" ]]; then
    echo "  no core for $bin: core_pattern is '$(cat /proc/sys/kernel/core_pattern 2>/dev/null)' and gdb generate-core-file failed" >&2
    return 1
  fi
  echo "  (core written by gdb generate-core-file: core_pattern does not write to the cwd)" >&2
}

# finish <name> <dir> <stamp> <t0>: marks the fixture complete.
finish() {
  local name="$1" dir="$2" stamp="$3" t0="$4"
  chmod a+r "$dir/core"
  echo "$stamp" >"$dir/.stamp"
  local size
  size="$(stat -c %s "$OUT/$name/core")"
  printf '%-16s built   core %6d KiB  %4d ms\n' "$name" $((size / 1024)) $(($(date +%s%3N) - t0))
}

fail() { # <name> <dir> <why>
  echo "$(printf '%-16s' "$1") FAILED  $3" >&2
  rm -f "$2/.stamp"
  FAILED=1
}

begin() { # <name> <stamp>: prints "up to date" and returns 1 when nothing to do
  if up_to_date "$1" "$2"; then
    printf '%-16s up to date\n' "$1"
    return 1
  fi
  return 0
}

# The fixture is built in its final directory, not moved there afterwards:
# the core records the binary's path (NT_FILE), and gdb finds the binary and
# its -gdb.py by that path. The stamp is written last, so an interrupted
# build is never taken for a complete one.
fresh_dir() { # <name>
  local dir="$OUT/$1"
  rm -rf "$dir"
  mkdir -p "$dir"
  echo "$dir"
}

CC_VERSION="$("$CC" --version | head -n1)"
CXX_VERSION="$("$CXX" --version | head -n1)"

# A plain C or C++ fixture: <name> <source> <compiler> <version> <flags...>
simple() {
  local name="$1" src="$2" compiler="$3" version="$4"
  shift 4
  local extra=()
  [[ "$name" == multithread ]] && extra=(-pthread)
  local stamp
  stamp="$(stamp_of "$version $* ${extra[*]}" "$SRC/$src")"
  begin "$name" "$stamp" || return 0
  local t0 dir
  t0="$(date +%s%3N)"
  dir="$(fresh_dir "$name")"
  if ! "$compiler" "$@" -o "$dir/$name" "$SRC/$src" "${extra[@]}" 2>"$dir/compile.log"; then
    fail "$name" "$dir" "compile error: $(head -c 500 "$dir/compile.log")"
    return 0
  fi
  rm -f "$dir/compile.log"
  crash "$dir" "$name" || { fail "$name" "$dir" "no core"; return 0; }
  finish "$name" "$dir" "$stamp" "$t0"
}

simple null-deref null-deref.c "$CC" "$CC_VERSION" "${CFLAGS_DEBUG[@]}"
simple null-deref-o2 null-deref.c "$CC" "$CC_VERSION" "${CFLAGS_OPT[@]}"
simple abort-assert abort-assert.c "$CC" "$CC_VERSION" "${CFLAGS_DEBUG[@]}"
simple cxx-uncaught cxx-uncaught.cpp "$CXX" "$CXX_VERSION" "${CFLAGS_DEBUG[@]}"
simple div-zero div-zero.c "$CC" "$CC_VERSION" "${CFLAGS_DEBUG[@]}"
simple builtin-trap builtin-trap.c "$CC" "$CC_VERSION" "${CFLAGS_DEBUG[@]}"
simple sigbus sigbus.c "$CC" "$CC_VERSION" "${CFLAGS_DEBUG[@]}"
simple multithread multithread.c "$CC" "$CC_VERSION" "${CFLAGS_DEBUG[@]}"
simple stack-overflow stack-overflow.c "$CC" "$CC_VERSION" "${CFLAGS_DEBUG[@]}"

# external-kill: killed from outside with SIGQUIT while asleep in libc. The
# program prints "ready" just before it blocks; the signal is sent then, by
# this script (another process: siginfo says SI_USER with this shell's pid).
external_kill() {
  local name=external-kill
  local stamp
  stamp="$(stamp_of "$CC_VERSION" "$SRC/external-kill.c")"
  begin "$name" "$stamp" || return 0
  local t0 dir
  t0="$(date +%s%3N)"
  dir="$(fresh_dir "$name")"
  "$CC" "${CFLAGS_DEBUG[@]}" -o "$dir/$name" "$SRC/external-kill.c" || { fail "$name" "$dir" "compile error"; return 0; }
  rm -f "$dir"/core "$dir"/core.*
  local fifo="$dir/.ready" pid status
  mkfifo "$fifo"
  # --default-signal: a shell without job control starts `&` commands with
  # SIGQUIT ignored (and CI may hand it down ignored); the program must die of it.
  (cd "$dir" && ulimit -c unlimited && ulimit -s 512 && exec env -i --default-signal=QUIT PATH=/usr/bin:/bin LANG=C.UTF-8 "./$name" >"$fifo" 2>/dev/null) &
  pid=$!
  if ! timeout 10 head -n1 "$fifo" >/dev/null; then
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$fifo"
    fail "$name" "$dir" "the program never said ready"
    return 0
  fi
  # "ready" is printed just before the call that blocks, not inside it: on a
  # loaded machine the signal could land in printf's write or in run_worker
  # itself (a different crash frame). Send it once the thread is in the sleep:
  # /proc/PID/syscall names the system call it is blocked in (x86_64:
  # 230 clock_nanosleep, 35 nanosleep), for at most 10 s.
  local nr waited=0
  while (( waited < 100 )); do
    read -r nr _ <"/proc/$pid/syscall" 2>/dev/null || nr=""
    [[ "$nr" == 230 || "$nr" == 35 ]] && break
    sleep 0.1
    waited=$((waited + 1))
  done
  if [[ "$nr" != 230 && "$nr" != 35 ]]; then
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$fifo"
    fail "$name" "$dir" "the program did not block in sleep within 10 s (/proc/$pid/syscall: ${nr:-unreadable})"
    return 0
  fi
  kill -QUIT "$pid"
  # Never wait forever: a program that does not die of SIGQUIT is killed
  # after 10 s, and the missing core is reported below.
  (sleep 10; kill -KILL "$pid" 2>/dev/null) &
  local guard=$!
  status=0
  wait "$pid" 2>/dev/null || status=$?
  kill "$guard" 2>/dev/null || true
  wait "$guard" 2>/dev/null || true
  rm -f "$fifo"
  local found
  found="$(find "$dir" -maxdepth 1 -name 'core*' -type f | head -n1)"
  if ((status <= 128)) || [[ -z "$found" ]]; then
    fail "$name" "$dir" "no kernel core (status $status; core_pattern is '$(cat /proc/sys/kernel/core_pattern 2>/dev/null)'; gdb's generate-core-file cannot stand in: it records no sender)"
    return 0
  fi
  [[ "$found" == "$dir/core" ]] || mv "$found" "$dir/core"
  finish "$name" "$dir" "$stamp" "$t0"
}
external_kill

# Compressed copies of one core, for magic-byte detection and decompression.
compressed() {
  local dir="$OUT/null-deref"
  [[ -f "$dir/core" ]] || return 0
  if [[ ! -f "$dir/core.gz" || "$dir/core.gz" -ot "$dir/core" ]]; then
    gzip -1 -c "$dir/core" >"$dir/core.gz.tmp" && mv "$dir/core.gz.tmp" "$dir/core.gz"
    printf '%-16s built   core.gz %3d KiB\n' null-deref $(($(stat -c %s "$dir/core.gz") / 1024))
  fi
  if command -v zstd >/dev/null 2>&1; then
    if [[ ! -f "$dir/core.zst" || "$dir/core.zst" -ot "$dir/core" ]]; then
      zstd -q -1 -f -c "$dir/core" >"$dir/core.zst.tmp" && mv "$dir/core.zst.tmp" "$dir/core.zst"
      printf '%-16s built   core.zst %2d KiB\n' null-deref $(($(stat -c %s "$dir/core.zst") / 1024))
    fi
  else
    echo "null-deref       skipped core.zst (zstd not installed)"
  fi
}
compressed

# stripped: null-deref built with symbols, split into a stripped binary and
# a .debug file sharing its build-id. The core comes from the stripped one.
#   stripped          stripped binary (what ran)
#   stripped.full     the unstripped binary
#   stripped.debug    objcopy --only-keep-debug of it
#   debug-root/.build-id/xx/yyyy.debug   the same, laid out for `set debug-file-directory`
stripped() {
  local name=stripped
  local stamp
  stamp="$(stamp_of "$CC_VERSION strip" "$SRC/null-deref.c")"
  begin "$name" "$stamp" || return 0
  local t0 dir
  t0="$(date +%s%3N)"
  dir="$(fresh_dir "$name")"
  "$CC" "${CFLAGS_DEBUG[@]}" -o "$dir/$name.full" "$SRC/null-deref.c" || { fail "$name" "$dir" "compile error"; return 0; }
  objcopy --only-keep-debug "$dir/$name.full" "$dir/$name.debug"
  strip --strip-all -o "$dir/$name" "$dir/$name.full"
  local id
  id="$(readelf -n "$dir/$name" | sed -n 's/.*Build ID: \([0-9a-f]*\).*/\1/p' | head -n1)"
  if [[ -n "$id" ]]; then
    mkdir -p "$dir/debug-root/.build-id/${id:0:2}"
    cp "$dir/$name.debug" "$dir/debug-root/.build-id/${id:0:2}/${id:2}.debug"
    echo "$id" >"$dir/build-id"
  fi
  crash "$dir" "$name" || { fail "$name" "$dir" "no core"; return 0; }
  finish "$name" "$dir" "$stamp" "$t0"
}
stripped

# autoload: a binary that would run Python in gdb if auto-load were on, both
# from its .debug_gdb_scripts section and from an <objfile>-gdb.py beside it.
autoload() {
  local name=autoload
  local stamp
  stamp="$(stamp_of "$CC_VERSION" "$SRC/autoload.c")"
  begin "$name" "$stamp" || return 0
  local t0 dir
  t0="$(date +%s%3N)"
  dir="$(fresh_dir "$name")"
  "$CC" "${CFLAGS_DEBUG[@]}" -o "$dir/$name" "$SRC/autoload.c" || { fail "$name" "$dir" "compile error"; return 0; }
  cat >"$dir/$name-gdb.py" <<'PY'
import gdb
open(gdb.current_objfile().filename + '.AUTOLOADED-file', 'w').close()
PY
  crash "$dir" "$name" || { fail "$name" "$dir" "no core"; return 0; }
  finish "$name" "$dir" "$stamp" "$t0"
}
autoload

# rust-panic: needs rustc (Debian's 1.63 or rustup's; make deps installs Debian's).
rust_panic() {
  local name=rust-panic
  if [[ -z "$RUSTC_BIN" ]]; then
    fail "$name" "$OUT/$name" "rustc not found on PATH or in ~/.cargo/bin (Debian: apt-get install rustc; make deps does)"
    return 0
  fi
  local version stamp
  version="$("$RUSTC_BIN" --version)"
  stamp="$(stamp_of "$version" "$SRC/rust-panic.rs")"
  begin "$name" "$stamp" || return 0
  local t0 dir
  t0="$(date +%s%3N)"
  dir="$(fresh_dir "$name")"
  if ! "$RUSTC_BIN" --remap-path-prefix="$ROOT"=. --remap-path-prefix="$ROOT"/= --crate-name port_config -C panic=abort -g -C opt-level=0 -C force-frame-pointers=yes -o "$dir/$name" "$SRC/rust-panic.rs" 2>"$dir/compile.log"; then
    fail "$name" "$dir" "compile error: $(head -c 500 "$dir/compile.log")"
    return 0
  fi
  rm -f "$dir/compile.log"
  crash "$dir" "$name" || { fail "$name" "$dir" "no core"; return 0; }
  finish "$name" "$dir" "$stamp" "$t0"
}
rust_panic

# go-nil-deref: needs the go toolchain (Debian golang-go; make deps installs it).
# A Go program dumps core on a fatal panic only with GOTRACEBACK=crash (the
# runtime re-raises it as SIGABRT). GOMAXPROCS=1 keeps the threads, and so
# the core, few. The build is offline and root-safe on a fresh machine: its
# cache and GOPATH live under the output directory, GOTOOLCHAIN=local never
# downloads a toolchain (Go >= 1.21), GO111MODULE=off needs no go.mod.
# -N -l: no optimization or inlining, so every user function is a frame.
# The core's apparent size is ~45 MB, almost all of it sparse (the heap's
# arena index is reserved, never touched): about 0.5 MB on disk.
go_nil_deref() {
  local name=go-nil-deref
  local go_bin="${GO:-$(command -v go || true)}"
  if [[ -z "$go_bin" ]]; then
    fail "$name" "$OUT/$name" "go not found on PATH (Debian: apt-get install golang-go; make deps does)"
    return 0
  fi
  local version stamp
  version="$("$go_bin" version)"
  stamp="$(stamp_of "$version" "$SRC/go-nil-deref.go")"
  begin "$name" "$stamp" || return 0
  local t0 dir
  t0="$(date +%s%3N)"
  dir="$(fresh_dir "$name")"
  mkdir -p "$OUT/.go"
  # Go writes only its own build id; a GNU build-id note (as `-B` adds, or
  # an external link) is what lets symbol stores and the worker's build-id
  # ladder match the binary to the core. Derived from the inputs: reproducible.
  local gnu_build_id
  gnu_build_id="$(printf '%s' "$stamp" | sha1sum | cut -c1-40)"
  # -trimpath names files by import path: a GOPATH package "fixtures/crashes"
  # makes the file fixtures/crashes/go-nil-deref.go, as the C fixtures are.
  local gopath="$OUT/.go/path"
  rm -rf "$gopath/src/fixtures"
  mkdir -p "$gopath/src/fixtures/crashes"
  cp "$SRC/go-nil-deref.go" "$gopath/src/fixtures/crashes/"
  if ! (cd "$dir" && env GOCACHE="$OUT/.go/cache" GOPATH="$gopath" GOTOOLCHAIN=local GO111MODULE=off GOFLAGS= CGO_ENABLED=0 \
    "$go_bin" build -trimpath -gcflags='all=-N -l' -ldflags="-B 0x$gnu_build_id" -o "$dir/$name" fixtures/crashes) 2>"$dir/compile.log"; then
    fail "$name" "$dir" "compile error: $(head -c 500 "$dir/compile.log")"
    return 0
  fi
  rm -f "$dir/compile.log"
  crash "$dir" "$name" GOTRACEBACK=crash GOMAXPROCS=1 || { fail "$name" "$dir" "no core"; return 0; }
  finish "$name" "$dir" "$stamp" "$t0"
}
go_nil_deref

exit "$FAILED"
