# syntax=docker/dockerfile:1
# One image for every process of the orchestrator, chosen by command:
#   api (default) | worker | policy-engine | identity-service
# Everything else (Temporal, Kafka, Ray) is reached through the environment
# (README "Configuration"); deploy/compose.yaml wires a whole stack.
# Checked without a Docker engine by deploy/check-image.sh (npm run check:image),
# which runs this file's COPY and RUN steps and each role's start command.

FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json ./
COPY gen ./gen
COPY console ./console
# npm ci also builds the session console (the prepare script) from console/ and gen/ into dist/console.
RUN npm ci --no-audit --no-fund
COPY tsconfig.build.json ./
COPY openapi ./openapi
COPY src ./src
RUN npm run build && npm run build:workflow-bundle && npm prune --omit=dev --no-audit --no-fund

FROM node:24-bookworm-slim
ENV NODE_ENV=production \
    WORKFLOW_BUNDLE_PATH=/app/dist/workflow-bundle.js
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY deploy/healthcheck.mjs ./deploy/healthcheck.mjs
COPY docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
# The base image's unprivileged user `node`, by id so the host can resolve it.
USER 1000:1000
# API; worker /metrics + /health and the Temporal SDK's metrics; policy engine; identity service.
EXPOSE 8090 9464 9465 8101 8102
# Probes the /health of whichever role runs here, on that role's configured port.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "deploy/healthcheck.mjs"]
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["api"]
