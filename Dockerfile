# syntax=docker/dockerfile:1
# rowsync's image: the CLI is the entrypoint, so the container's arguments are a rowsync command:
#   docker build -t rowsync:local .
#   docker run --rm -v "$PWD/rowsync.yml:/etc/rowsync/rowsync.yml:ro" rowsync:local start --config /etc/rowsync/rowsync.yml
# docker-compose.yml runs it beside Redis (profile "rowsync"). CI has no Docker engine: the image is
# not built there; test/unit/deployment.test.ts checks that this file, the compose profile and the
# README agree.

# ---- build: compile TypeScript with the dev dependencies ----------------------------------------
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` would build before the sources are copied (it runs below instead).
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY jobs ./jobs
COPY workers ./workers
RUN npx tsc -p tsconfig.json

# ---- runtime: production dependencies and the compiled CLI, as an unprivileged user -------------
FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
# The board (`start`, `board`) listens on board.port; it needs basic auth to listen beyond loopback.
EXPOSE 3000
# `node` (uid 1000) comes with the base image; the app files stay root-owned and read-only to it.
USER node
ENTRYPOINT ["node", "/app/dist/src/cli/main.js"]
CMD ["--help"]
