# One image, two processes: the API (default) and the worker
# (`docker run IMAGE worker`). Infrastructure (Temporal, Kafka, Ray, the
# policy engine and identity service) is configured through the environment.

FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY gen ./gen
COPY openapi ./openapi
COPY src ./src
RUN npm run build && npm run build:workflow-bundle && npm prune --omit=dev

FROM node:24-bookworm-slim
ENV NODE_ENV=production \
    WORKFLOW_BUNDLE_PATH=/app/dist/workflow-bundle.js
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
USER node
EXPOSE 8090 9464
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["api"]
