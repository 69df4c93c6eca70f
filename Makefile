# coresight-worker: the two commands that matter are `make demo` and `make test`.
SHELL := /bin/bash
export AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED := true

.PHONY: all deps build typecheck fixtures test demo bench schema clean

all: build

deps:
	@bash scripts/install-deps.sh

build: deps
	npx tsc -p tsconfig.build.json

typecheck: deps
	npx tsc --noEmit -p tsconfig.json

# Compiles the crash programs in fixtures/ and crashes them into real cores
# under build/fixtures/ (skipped when up to date).
fixtures: deps
	bash scripts/build-fixtures.sh
	bash scripts/build-aarch64-fixture.sh

# Typecheck (ts-jest only transpiles), build dist/ (the queue tests run the
# real worker binary), build the fixture cores, then jest.
test: typecheck build fixtures
	npm test

demo: build fixtures
	node dist/worker/demo.js

bench: build fixtures
	node dist/bench/run.js

schema: build
	node dist/worker/cli.js schema > docs/result.schema.json
	node dist/worker/cli.js schema --document > docs/result-document.schema.json

clean:
	rm -rf dist build
