# Hookstream gateway image. Node 22 (Node 20 is past end of life); better-sqlite3 builds natively here.
# test/dockerfile.e2e-spec.ts replays these steps without a container engine: keep to WORKDIR, COPY, RUN, ENV,
# USER, EXPOSE, HEALTHCHECK and an exec-form CMD.
FROM node:22-bookworm-slim AS build
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
# The workspace package's manifest too: `npm ci` links @hookstream/client (the browser SDK) as the lockfile says.
COPY packages/client/package.json ./packages/client/
RUN npm ci --no-audit --no-fund
# `npm run build` compiles the server (nest build: tsc with tsconfig.build.json) and bundles the SDK and the console
# (scripts/build-client.mjs, from packages/client and web/console; it also builds the package's own dist).
COPY nest-cli.json tsconfig*.json ./
COPY scripts ./scripts
COPY packages ./packages
COPY web ./web
COPY src ./src
RUN npm run build && npm prune --omit=dev

FROM node:22-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production PORT=3000 HOST=0.0.0.0
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY config ./config
# Without NATS_URL the embedded log writes ./data, and /app itself belongs to root.
RUN mkdir -p data && chown node:node data
USER node
EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=3s CMD node -e "fetch('http://127.0.0.1:3000/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
CMD ["node", "dist/main.js"]
