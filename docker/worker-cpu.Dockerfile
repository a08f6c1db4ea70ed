# syntax=docker/dockerfile:1
# The worker on CPU: onnxruntime's CPU provider, which ships in the onnxruntime-node
# package. From the repository root:
#   docker build -f docker/worker-cpu.Dockerfile -t fastvlm/worker-cpu:0.1.0 .
ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
# onnxruntime-node's install script would download CUDA libraries that a CPU worker never loads.
ENV ONNXRUNTIME_NODE_INSTALL=skip
COPY package.json package-lock.json .npmrc ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY scripts ./scripts
COPY libs ./libs
COPY apps ./apps
# The worker, and the model pull CLI as a bundle of its own (dist/apps/worker/model-pull.js)
# for the init container: `npm run model:pull` runs it through tsx, a devDependency.
RUN npm run build -- worker

FROM ${NODE_IMAGE}
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
ARG SOURCE=unknown
LABEL org.opencontainers.image.title="fastvlm-worker-cpu" \
      org.opencontainers.image.description="FastVLM serving cluster: inference worker, onnxruntime CPU provider" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV NODE_ENV=production \
    ONNXRUNTIME_NODE_INSTALL=skip \
    WORKER_HTTP_HOST=0.0.0.0 \
    WORKER_HTTP_PORT=9464 \
    FASTVLM_CACHE_DIR=/models
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
# /models is the model cache; a volume mounted there (Docker named volumes copy
# this ownership) is writable by the worker's user.
RUN npm ci --omit=dev --no-audit --no-fund \
 && npm cache clean --force \
 && groupadd --system --gid 10001 fastvlm \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin fastvlm \
 && mkdir -p /models \
 && chown 10001:10001 /models
# main.js (the worker) and model-pull.js (the model pull CLI).
COPY --from=build /src/dist/apps/worker ./dist/apps/worker
USER 10001:10001
EXPOSE 9464
# Ready once the model is loaded and warmed: a first start may pull it, hence the long start period.
HEALTHCHECK --interval=10s --timeout=3s --start-period=600s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + process.env.WORKER_HTTP_PORT + '/health/ready').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "--enable-source-maps", "dist/apps/worker/main.js"]
