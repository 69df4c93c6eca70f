# Runtime image of coresight-worker: Node 24 LTS (gzip and zstd dumps are
# decompressed by its node:zlib), gdb (+ gdb-multiarch for
# foreign-architecture cores), elfutils (eu-unstrip: build-id inventory),
# running as a non-root user.
#
#   docker build -f Dockerfile.gdb -t coresight-worker .
#   docker run --rm -e NATS_URL=nats://nats:4222 -e CORESIGHT_API_URL=http://coresight-api:8000 \
#     -e CORESIGHT_API_TOKEN=... coresight-worker
#
# (Not built in CI: the CI machines have no Docker engine.)

FROM node:24-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY lib ./lib
COPY worker ./worker
COPY bench ./bench
RUN npx tsc -p tsconfig.build.json && npm prune --omit=dev

FROM node:24-bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      gdb gdb-multiarch elfutils ca-certificates tini \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/coresight --create-home coresight
WORKDIR /app
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
ENV NODE_ENV=production \
    WORK_DIR=/var/lib/coresight/work \
    LOG_FILE=/var/lib/coresight/worker.log \
    RESULTS_DIR=/var/lib/coresight/results \
    METRICS_PORT=9464
USER 10001
EXPOSE 9464
HEALTHCHECK --interval=30s --timeout=5s CMD node -e "fetch('http://127.0.0.1:9464/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
ENTRYPOINT ["/usr/bin/tini", "--", "node", "/app/dist/worker/cli.js"]
CMD ["run"]
