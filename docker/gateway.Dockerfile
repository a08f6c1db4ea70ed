# syntax=docker/dockerfile:1
# The gateway: OpenAI-compatible API, jobs API, web console. From the repository root:
#   docker build -f docker/gateway.Dockerfile -t fastvlm/gateway:0.1.0 .
ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
# onnxruntime-node's install script would download CUDA libraries that no gateway uses.
ENV ONNXRUNTIME_NODE_INSTALL=skip
COPY package.json package-lock.json .npmrc ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY scripts ./scripts
COPY libs ./libs
COPY apps ./apps
RUN npm run build -- gateway

FROM ${NODE_IMAGE}
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
ARG SOURCE=unknown
LABEL org.opencontainers.image.title="fastvlm-gateway" \
      org.opencontainers.image.description="FastVLM serving cluster: OpenAI-compatible gateway, async jobs API and web console" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV NODE_ENV=production \
    ONNXRUNTIME_NODE_INSTALL=skip \
    HOST=0.0.0.0 \
    PORT=8080 \
    FILES_DIR=/var/lib/fastvlm/files
WORKDIR /app
# Production dependencies only: the bundle leaves packages external, and nothing it imports is a devDependency.
COPY package.json package-lock.json .npmrc ./
RUN npm ci --omit=dev --no-audit --no-fund \
 && npm cache clean --force \
 && groupadd --system --gid 10001 fastvlm \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin fastvlm \
 && mkdir -p /var/lib/fastvlm/files \
 && chown 10001:10001 /var/lib/fastvlm/files
# Batch API files live in a volume mounted here; a fresh named volume takes this folder's owner.
VOLUME /var/lib/fastvlm/files
# The bundle and the web console it serves (dist/apps/gateway/console).
COPY --from=build /src/dist/apps/gateway ./dist/apps/gateway
# Numeric, so that Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
EXPOSE 8080
# Ready: Redis answers (and does not evict) and a worker serves the model.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + process.env.PORT + '/health/ready').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "--enable-source-maps", "dist/apps/gateway/main.js"]
