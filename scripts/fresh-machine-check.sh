#!/usr/bin/env bash
# Proves the README's two commands on a brand-new machine: builds a Debian 12
# root with debootstrap, gives it only what a fresh machine of this kind
# starts with (this machine's Node and npm, python3, make, g++, git and the
# CA trust), clones the repository inside and runs `make demo`, then
# `make test`, in a chroot. Prints each command's exit code and time.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: scripts/fresh-machine-check.sh [options]

Builds a fresh Debian 12 (bookworm) root with debootstrap, clones this
repository's committed HEAD into it and runs exactly the README's commands,
`make demo` and `make test`, in a chroot; prints each one's exit code and
wall time, and exits non-zero when any failed. Takes 15-30 minutes a run;
not part of `make test`. Needs root and Debian's package mirror.

What the root starts with: debootstrap's minbase, then python3, make, g++,
git, ca-certificates from apt; this machine's node and npm (the nodejs
package's files and /usr/lib/node_modules/npm) and npm config; the CA
certificates of /usr/local/share/ca-certificates. No NODE_EXTRA_CA_CERTS:
npm on the project's Node 24 must find the machine's npm config (cafile)
itself (scripts/install-node.sh). Everything else (gdb,
nats-server, the toolchains, Node 24) must come from `make` itself.

Options:
  --rustc MODE     none: no rustc in the root (make deps must install it)
                   host: this machine's rustc (rustup's) mounted read-only
                         at /opt/rust and first on PATH
                   both: one run of each, in two fresh roots (default)
  --dir DIR        where the roots and logs go (default /var/tmp/coresight-fresh)
  --base-cache F   reuse a tarball of the debootstrapped base root (made on
                   the first run); saves ~2 minutes a run
  --keep           keep the roots afterwards (default: remove them)
  -h, --help       this text

Logs: DIR/<mode>/{bootstrap,demo,test}.log; the summary is also written to
DIR/summary.txt.
EOF
}

MODE=both
DIR=/var/tmp/coresight-fresh
BASE_CACHE=""
KEEP=0
while (($#)); do
  case "$1" in
    --rustc) MODE="${2:?--rustc needs none, host or both}"; shift 2 ;;
    --dir) DIR="${2:?--dir needs a directory}"; shift 2 ;;
    --base-cache) BASE_CACHE="${2:?--base-cache needs a file}"; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "fresh-machine-check: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$MODE" in none | host) MODES=("$MODE") ;; both) MODES=(none host) ;; *) echo "fresh-machine-check: --rustc must be none, host or both" >&2; exit 2 ;; esac
[[ "$(id -u)" == 0 ]] || { echo "fresh-machine-check: needs root (debootstrap, chroot, mount)" >&2; exit 2; }

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
mkdir -p "$DIR"
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*"; }

if ! command -v debootstrap >/dev/null 2>&1; then
  log "installing debootstrap"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi

MOUNTED=()
unmount_all() {
  local i
  for ((i = ${#MOUNTED[@]} - 1; i >= 0; i--)); do umount -l "${MOUNTED[$i]}" 2>/dev/null || true; done
  MOUNTED=()
}
# Processes left running inside a root (a test's server) keep its mounts busy.
kill_inside() {
  local root="$1" p
  for p in /proc/[0-9]*; do
    [[ "$(readlink "$p/root" 2>/dev/null)" == "$root" ]] && kill -9 "${p#/proc/}" 2>/dev/null || true
  done
}
CURRENT_ROOT=""
cleanup() {
  [[ -n "$CURRENT_ROOT" ]] && kill_inside "$CURRENT_ROOT"
  unmount_all
}
trap cleanup EXIT

bind() { # <source> <target inside root> [ro]
  mkdir -p "$2"
  mount --bind "$1" "$2"
  MOUNTED+=("$2")
  [[ "${3:-}" == ro ]] && mount -o remount,bind,ro "$2"
  return 0
}

# in_root <root> <command...>: runs a command in the chroot with a clean environment.
in_root() {
  local root="$1"
  shift
  chroot "$root" env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
    PATH="${ROOT_PATH:-/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin}" \
    DEBIAN_FRONTEND=noninteractive "$@"
}

make_base() { # <root>
  local root="$1"
  if [[ -n "$BASE_CACHE" && -f "$BASE_CACHE" ]]; then
    log "base root from $BASE_CACHE"
    mkdir -p "$root"
    tar -xpf "$BASE_CACHE" -C "$root"
    return
  fi
  log "debootstrap --variant=minbase bookworm ($MIRROR)"
  debootstrap --variant=minbase bookworm "$root" "$MIRROR"
  if [[ -n "$BASE_CACHE" ]]; then
    log "saving the base root to $BASE_CACHE"
    tar -cpf "$BASE_CACHE" -C "$root" .
  fi
}

# What a fresh machine of this kind starts with, on top of the base root.
provision() { # <root>
  local root="$1" f
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  # debootstrap writes no /etc/hosts; every installed machine has one (localhost).
  [[ -s "$root/etc/hosts" ]] || printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"
  # The same archive (and snapshot) as this machine, so versions match.
  if [[ -d /etc/apt/sources.list.d ]] && ls /etc/apt/sources.list.d/*.sources >/dev/null 2>&1; then
    rm -f "$root/etc/apt/sources.list"
    cp /etc/apt/sources.list.d/*.sources "$root/etc/apt/sources.list.d/"
  fi
  in_root "$root" apt-get update -qq
  in_root "$root" apt-get install -y -qq --no-install-recommends python3 make g++ git ca-certificates >/dev/null
  if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then
    mkdir -p "$root/usr/local/share/ca-certificates"
    cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
    in_root "$root" update-ca-certificates >/dev/null
  fi
  # This machine's node (the nodejs package's files) and npm.
  dpkg -L nodejs | while IFS= read -r f; do
    [[ -f "$f" || -L "$f" ]] && cp -a --parents "$f" "$root/"
  done
  mkdir -p "$root/usr/lib/node_modules"
  rm -rf "$root/usr/lib/node_modules/npm"
  cp -a "$(readlink -f /usr/lib/node_modules/npm)" "$root/usr/lib/node_modules/npm"
  ln -sfn ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/bin/npm"
  ln -sfn ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/bin/npx"
  for f in /usr/etc/npmrc /etc/npmrc /root/.npmrc; do
    [[ -f "$f" ]] && cp --parents "$f" "$root/"
  done
  return 0
}

# timed <log> <root> <command...>: prints "<exit code> <seconds>".
timed() {
  local logf="$1" root="$2" t0 rc
  shift 2
  t0="$(date +%s)"
  set +e
  in_root "$root" bash -c "$*" >"$logf" 2>&1
  rc=$?
  set -e
  echo "$rc $(($(date +%s) - t0))"
}

SUMMARY=()
FAILED=0
for mode in "${MODES[@]}"; do
  out="$DIR/$mode"
  root="$out/root"
  [[ -d "$root" ]] && { kill_inside "$root"; rm -rf "$root"; }
  mkdir -p "$out"
  CURRENT_ROOT="$root"
  t0="$(date +%s)"
  {
    make_base "$root"
    bind /dev "$root/dev"
    bind /dev/pts "$root/dev/pts"
    mkdir -p "$root/proc" "$root/sys"
    mount -t proc proc "$root/proc" && MOUNTED+=("$root/proc")
    mount -t sysfs sys "$root/sys" && MOUNTED+=("$root/sys")
    mkdir -p "$root/dev/shm" && mount -t tmpfs shm "$root/dev/shm" && MOUNTED+=("$root/dev/shm")
    provision "$root"
  } >"$out/bootstrap.log" 2>&1 || { log "$mode: building the root failed, see $out/bootstrap.log"; tail -n 20 "$out/bootstrap.log"; exit 1; }
  ROOT_PATH=""
  if [[ "$mode" == host ]]; then
    sysroot="$(rustc --print sysroot 2>/dev/null || true)"
    [[ -x "$sysroot/bin/rustc" ]] || { log "--rustc host: this machine has no rustc"; exit 2; }
    bind "$sysroot" "$root/opt/rust" ro
    ROOT_PATH="/opt/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
  fi
  export ROOT_PATH
  log "$mode: root ready in $(($(date +%s) - t0)) s: $(in_root "$root" node --version), npm $(in_root "$root" npm --version), rustc: $(in_root "$root" bash -c 'rustc --version 2>/dev/null || echo none')"
  git clone -q --no-hardlinks "$REPO" "$root/work/coresight-worker"
  log "$mode: cloned $(git -C "$REPO" rev-parse --short HEAD) ($(git -C "$REPO" log -1 --format=%s | cut -c1-60))"

  for cmd in demo test; do
    log "$mode: make $cmd ..."
    read -r rc secs < <(timed "$out/$cmd.log" "$root" "cd /work/coresight-worker && make $cmd")
    line="$(printf 'rustc=%-5s make %-5s exit %3d  %5d s  (%s)' "$mode" "$cmd" "$rc" "$secs" "$out/$cmd.log")"
    log "$line"
    SUMMARY+=("$line")
    ((rc == 0)) || { FAILED=1; tail -n 30 "$out/$cmd.log" | sed 's/^/    /'; }
  done
  log "$mode: node used by make test: $(in_root "$root" bash -c 'cd /work/coresight-worker && PATH=$PWD/.tools/node/bin:$PATH node --version')"

  kill_inside "$root"
  unmount_all
  CURRENT_ROOT=""
  ((KEEP)) || rm -rf "$root"
done

printf '%s\n' "${SUMMARY[@]}" | tee "$DIR/summary.txt"
exit "$FAILED"
