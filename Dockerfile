# syntax=docker/dockerfile:1
# Greentic runner image. Multi-stage: the build stage compiles TypeScript and builds the demo
# pack's component (componentize-js, a dev dependency); the runtime stage holds production
# dependencies only, runs as the unprivileged `node` user and is probed on /health/live.
#   docker build -t greentic-runner .
#   docker run --rm -p 8080:8080 greentic-runner            # the demo bundle, embedded bus/store
# See docs/operations.md for the environment variables and docker-compose.yml for NATS + Redis.

ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
# Native addons (cbor-extract) build with these when no prebuilt binary matches.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY wit ./wit
COPY scripts ./scripts
COPY examples ./examples
RUN npm run build \
  && GREENTIC_CACHE_DIR=/app/.cache/greentic node scripts/build-demo.mjs

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --omit=dev && npm cache clean --force

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    GREENTIC_BUNDLE=/app/examples/demo/greentic.demo.yaml \
    GREENTIC_CACHE_DIR=/var/cache/greentic
WORKDIR /app
COPY --from=deps --chown=root:root /app/node_modules ./node_modules
COPY --from=build --chown=root:root /app/dist ./dist
COPY --chown=root:root package.json ./
COPY --chown=root:root bin ./bin
COPY --chown=root:root wit ./wit
COPY --from=build --chown=root:root /app/examples ./examples
# The transpile cache warmed by the demo build, writable by the runtime user; mount a volume
# here (or an emptyDir in Kubernetes) to keep it across restarts.
COPY --from=build --chown=node:node /app/.cache/greentic /var/cache/greentic
USER node
EXPOSE 8080
STOPSIGNAL SIGTERM
# No curl in the slim image: Node's fetch does the probe.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/health/live').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["node", "dist/cli/greentic-runner/main.js"]
CMD ["start"]
