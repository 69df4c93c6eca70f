# Runtime image of coresight-worker: Node 24 LTS (gzip and zstd dumps are
# decompressed by its node:zlib), gdb (+ gdb-multiarch for
# foreign-architecture cores), elfutils (eu-unstrip: build-id inventory),
# running as a non-root user (any UID works: nothing in /app is writable,
# and the worker writes only under WORK_DIR, a volume in Kubernetes).
#
#   make image          # docker build -f Dockerfile.gdb -t coresight-worker:<version> .
#   make image-test     # builds it, then runs it for real (scripts/image-test.sh)
#   docker run --rm -e NATS_URL=nats://nats:4222 -e CORESIGHT_API_URL=http://coresight-api:8000 \
#     -e CORESIGHT_API_TOKEN=... coresight-worker
#
# Ships what `run`, `analyze`, `api` and the other operator commands need:
# dist/lib, dist/api, dist/worker (tsconfig.build.json) and the binary bundled
# from them, dist/bundle/cli.js (scripts/bundle.mjs), never dev/ (the
# stand-ins and demo of `make demo`: private nats-server, s3rver) or bench/,
# which .dockerignore keeps out of the context; production node_modules only.

FROM node:24-bookworm-slim AS build
# better-sqlite3 (the API's SQLite) builds from source when no prebuilt binary
# can be fetched; the image's own Node headers (/usr/local/include/node) serve.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm_config_nodedir=/usr/local npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY lib ./lib
COPY worker ./worker
COPY api ./api
COPY scripts/bundle.mjs ./scripts/
RUN npx tsc -p tsconfig.build.json \
 && node scripts/bundle.mjs \
 && npm prune --omit=dev

FROM node:24-bookworm-slim
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="coresight-worker" \
      org.opencontainers.image.description="CoreSight's queue-driven GDB crash-analysis worker (and the CoreSight API)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="docker.io/library/node:24-bookworm-slim"
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      gdb gdb-multiarch elfutils ca-certificates tini util-linux \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/coresight --create-home coresight
WORKDIR /app
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
ENV NODE_ENV=production \
    WORK_DIR=/var/lib/coresight/work \
    LOG_FILE="" \
    RESULTS_DIR=/var/lib/coresight/results \
    METRICS_PORT=9464
USER 10001
EXPOSE 9464
# METRICS_PORT, not a fixed 9464: `docker run -e METRICS_PORT=...` moves the probes.
HEALTHCHECK --interval=30s --timeout=5s CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.METRICS_PORT||9464}/healthz`).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["/usr/bin/tini", "--", "node", "/app/dist/bundle/cli.js"]
CMD ["run"]
