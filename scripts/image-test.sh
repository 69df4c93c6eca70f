#!/usr/bin/env bash
# Builds the image and runs it for real (make image-test; not part of make
# test: it needs a running dockerd and takes minutes):
#   1. the stand-in base (scripts/image-base.sh) unless SKIP_BASE=1 or the
#      real node:24-bookworm-slim is there; 2. the image (Dockerfile.gdb);
#   3. --help; 4. analyze of a mounted fixture core; 5. run against a
#      nats-server on the host network: one event, one stored result (file
#      sink, a mounted directory), then SIGTERM drains and it exits 0.
# Every container runs read-only, --cap-drop ALL, as an arbitrary UID
# (--user 12345:12345), with tmpfs for /tmp and the work dir. Prints each
# step's time and the image size.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.tools/node/bin:$PATH"
IMAGE="${IMAGE:-coresight-worker:test}"
RUN=(docker run --rm --read-only --cap-drop ALL --security-opt no-new-privileges --user 12345:12345
  --tmpfs /tmp:rw,exec,size=256m --tmpfs /var/lib/coresight/work:rw,size=512m)
t0=$(date +%s)
step() { local now; now=$(date +%s); echo "image-test: [$(( now - t0 ))s] $*"; }
timed() { local s; s=$(date +%s); "$@"; echo "image-test:   took $(( $(date +%s) - s ))s"; }
fail() { echo "image-test: FAIL: $*" >&2; exit 1; }
docker info >/dev/null 2>&1 || fail "no Docker daemon (docker info failed; start dockerd)"
[[ -f build/fixtures/null-deref/core ]] || bash scripts/build-fixtures.sh

if [[ "${SKIP_BASE:-0}" != 1 ]] && ! docker image inspect node:24-bookworm-slim >/dev/null 2>&1; then
  step "stand-in base node:24-bookworm-slim"
  timed bash scripts/image-base.sh ${BASE_CACHE:+--base-cache "$BASE_CACHE"}
fi
step "docker build $IMAGE"
timed env DOCKER_BUILDKIT=0 docker build -q --network host -f Dockerfile.gdb -t "$IMAGE" \
  --build-arg VERSION="$(node -p 'require("./package.json").version')" \
  --build-arg REVISION="$(git rev-parse HEAD 2>/dev/null || echo unknown)" \
  --build-arg CREATED="$(date -u +%Y-%m-%dT%H:%M:%SZ)" . >/dev/null
size=$(docker image inspect -f '{{.Size}}' "$IMAGE")
step "image size: $(( size / 1000000 )) MB"
docker image inspect -f '{{json .Config.Labels}}' "$IMAGE" | grep -q org.opencontainers.image.version || fail "no OCI labels"
if docker run --rm --entrypoint /bin/sh "$IMAGE" -c 'ls -d /app/dist/dev /app/dist/bench /app/dev /app/bench 2>/dev/null' | grep -q .; then
  fail "dev stand-ins, demo or bench shipped in the image"
fi

step "--help"
# Captured, not piped into grep -q: with pipefail an early grep exit fails the step.
help=$(timed "${RUN[@]}" "$IMAGE" --help)
grep -q "queue" <<<"$help" || fail "--help does not list the commands: $help"

step "analyze a mounted fixture core"
out=$(timed "${RUN[@]}" -v "$PWD/build/fixtures/null-deref:/in:ro" "$IMAGE" analyze --json /in/core)
grep -q '"status":"completed"' <<<"$out" || grep -q '"status": "completed"' <<<"$out" || fail "analyze: $out"
grep -q 'SIGSEGV' <<<"$out" || fail "analyze found no SIGSEGV"

step "run: one event through a host nats-server to a stored result, then SIGTERM drains"
work=$(mktemp -d /tmp/coresight-image-test.XXXXXX)
cleanup() { docker rm -f coresight-image-test >/dev/null 2>&1 || true; [[ -n "${nats_pid:-}" ]] && kill "$nats_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
mkdir -p "$work/results" "$work/dumps" "$work/js"
cp build/fixtures/null-deref/core "$work/dumps/core"
chmod 0777 "$work/results"; chmod -R a+rX "$work/dumps"
nats_port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
probe_port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
nats-server -a 127.0.0.1 -p "$nats_port" -js -sd "$work/js" >/dev/null 2>&1 & nats_pid=$!
s=$(date +%s)
docker run -d --name coresight-image-test --network host --read-only --cap-drop ALL --security-opt no-new-privileges --user 12345:12345 \
  --tmpfs /tmp:rw,exec,size=256m --tmpfs /var/lib/coresight/work:rw,size=512m \
  -v "$work/results:/results" -v "$work/dumps:/dumps:ro" \
  -e NATS_URL="nats://127.0.0.1:$nats_port" -e RESULT_SINKS=file -e RESULTS_DIR=/results \
  -e ALLOWED_FILE_ROOTS=/dumps -e METRICS_PORT="$probe_port" -e WORKER_CONCURRENCY=1 \
  "$IMAGE" run >/dev/null
for _ in $(seq 1 60); do docker logs coresight-image-test 2>&1 | grep -q "waiting for coredump.uploaded events" && break; sleep 1; done
docker logs coresight-image-test 2>&1 | grep -q "waiting for coredump.uploaded events" || fail "run never became ready: $(docker logs coresight-image-test 2>&1 | tail -5)"
curl -fsS "http://127.0.0.1:$probe_port/readyz" >/dev/null || fail "/readyz not 200"
node --input-type=module -e '
import { connect } from "@nats-io/transport-node";
import { jetstream } from "@nats-io/jetstream";
const nc = await connect({ servers: process.argv[1] });
const ev = { specversion: "1.0", type: "coredog.coredump.uploaded", source: "coredog-agent", id: "coredog-image-test-1", time: new Date().toISOString(),
  data: { file_url: "file:///dumps/core", file_name: "core.image-test", executable_path: "/app/crash", file_size: 0, md5: "", image: "x", timestamp: new Date().toISOString(), pod_name: "p", pod_namespace: "n", node_ip: "10.0.0.1" } };
await jetstream(nc).publish("coredog.coredump.uploaded", JSON.stringify(ev));
await nc.close();' "nats://127.0.0.1:$nats_port"
for _ in $(seq 1 60); do ls "$work/results"/*.json >/dev/null 2>&1 && break; sleep 1; done
result=$(cat "$work"/results/*.json 2>/dev/null || true)
grep -q '"completed"' <<<"$result" || fail "no completed result stored: $(docker logs coresight-image-test 2>&1 | tail -5)"
echo "image-test:   took $(( $(date +%s) - s ))s (start to stored result)"
s=$(date +%s)
docker kill --signal TERM coresight-image-test >/dev/null
code=$(docker wait coresight-image-test)
[[ "$code" == 0 ]] || fail "run exited $code after SIGTERM"
docker logs coresight-image-test 2>&1 | grep -q "coresight-worker stopped" || fail "no drain on SIGTERM"
echo "image-test:   SIGTERM drained, exit 0, took $(( $(date +%s) - s ))s"
docker rm coresight-image-test >/dev/null
step "all passed (image $IMAGE, $(( size / 1000000 )) MB)"
