# coresight-worker: the two commands that matter are `make demo` and `make test`.
SHELL := /bin/bash
# Node 24 from scripts/install-node.sh when the system node is too old
# (`make deps` provides it); every target below runs on the node found first.
export PATH := $(CURDIR)/.tools/node/bin:$(PATH)

.PHONY: all deps build build-dev typecheck lint fixtures test demo bench schema versions fresh-machine-check image image-test clean

all: build

deps:
	@bash scripts/install-deps.sh

# dist/ for the service (lib, worker, api: what the image ships), and the
# binary bundled from it, dist/bundle/cli.js (scripts/bundle.mjs) ...
build: deps
	npx tsc -p tsconfig.build.json
	node scripts/bundle.mjs

# ... and also the dev stand-ins and the demo (dev/) and the benchmarks
# (bench/), for make demo, make test and make bench only.
build-dev: deps
	npx tsc -p tsconfig.dev.json
	node scripts/bundle.mjs

typecheck: deps
	npx tsc --noEmit -p tsconfig.json

# eslint (eslint.config.js: floating promises, type-only imports, throws of
# non-Errors) and prettier (.prettierrc.json): `npx prettier --write "**/*.ts"`
# fixes what the second complains about.
lint: deps
	npx eslint .
	npx prettier --check "**/*.ts"

# Compiles the crash programs in fixtures/ and crashes them into real cores
# under build/fixtures/ (skipped when up to date); the Debian bullseye root
# and its crash for the image symbol source under build/bullseye/ (debootstrap,
# as root, ~1-3 min the first time, cached). When that root cannot be built
# (not root, no mirror) the other suites still run and the image tests fail
# naming the script.
fixtures: deps
	bash scripts/build-fixtures.sh
	bash scripts/build-aarch64-fixture.sh
	bash scripts/build-bullseye-image.sh || echo "make fixtures: scripts/build-bullseye-image.sh failed; test/lib/symbols/image.test.ts will fail" >&2

# Typecheck (ts-jest only transpiles), lint, build dist/ (the queue tests run the
# real worker binary), build the fixture cores, then jest.
test: typecheck lint build-dev fixtures
	npm test

demo: build-dev fixtures
	node dist/dev/demo.js

bench: build-dev fixtures
	node dist/bench/run.js

schema: build
	node dist/bundle/cli.js schema > docs/result.schema.json
	node dist/bundle/cli.js schema --document > docs/result-document.schema.json
	node dist/bundle/cli.js schema --openapi > docs/openapi.json

# The version of each tool the targets use, one per line.
versions:
	@bash scripts/versions.sh

# A brand-new Debian 12 root (debootstrap), the README's two commands in it.
# Takes 15-30 minutes; not part of `make test`. See scripts/fresh-machine-check.sh --help.
fresh-machine-check:
	bash scripts/fresh-machine-check.sh

# The container image (Dockerfile.gdb), tagged with package.json's version.
# Without Docker Hub, `bash scripts/image-base.sh` first makes a stand-in base.
IMAGE ?= coresight-worker:$(shell node -p 'require("./package.json").version' 2>/dev/null || echo dev)
image:
	DOCKER_BUILDKIT=0 docker build --network host -f Dockerfile.gdb -t $(IMAGE) \
	  --build-arg VERSION=$(lastword $(subst :, ,$(IMAGE))) \
	  --build-arg REVISION=$$(git rev-parse HEAD 2>/dev/null || echo unknown) \
	  --build-arg CREATED=$$(date -u +%Y-%m-%dT%H:%M:%SZ) .

# Builds the image and runs it for real: --help, analyze, run through one event,
# read-only, --cap-drop ALL, an arbitrary UID, SIGTERM. Needs dockerd; takes
# minutes; not part of `make test`. See scripts/image-test.sh.
image-test: fixtures
	IMAGE=$(IMAGE) bash scripts/image-test.sh

clean:
	rm -rf dist build
