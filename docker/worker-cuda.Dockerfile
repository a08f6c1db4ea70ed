# syntax=docker/dockerfile:1
# The worker on NVIDIA GPUs: onnxruntime-node with its CUDA 12 execution provider,
# on a CUDA 12 + cuDNN 9 runtime base. From the repository root:
#   docker build -f docker/worker-cuda.Dockerfile -t fastvlm/worker-cuda:0.1.0 .
#
# Host: an NVIDIA driver for CUDA 12.6, that is >= 560.28, or >= 525.60.13 on
# data-center GPUs through CUDA's minor version compatibility (the base image's
# NVIDIA_REQUIRE_CUDA states it), and the NVIDIA Container Toolkit (Docker:
# `--gpus all`; Kubernetes: the NVIDIA device plugin or GPU Operator).
# Run with FASTVLM_DEVICE=cuda.
ARG NODE_IMAGE=node:24-bookworm-slim
ARG CUDA_IMAGE=nvidia/cuda:12.6.3-cudnn-runtime-ubuntu22.04

# Node 24 itself, copied into the CUDA base below (same binary as the other images).
FROM ${NODE_IMAGE} AS node

FROM ${NODE_IMAGE} AS build
WORKDIR /src
# The build stage loads no model; the CUDA libraries are installed in the final stage only.
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

FROM ${CUDA_IMAGE}
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
ARG SOURCE=unknown
LABEL org.opencontainers.image.title="fastvlm-worker-cuda" \
      org.opencontainers.image.description="FastVLM serving cluster: inference worker, onnxruntime CUDA 12 provider (cuDNN 9)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=node /usr/local/bin/node /usr/local/bin/node
COPY --from=node /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/npm
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm
ENV NODE_ENV=production \
    ONNXRUNTIME_NODE_INSTALL=skip \
    WORKER_HTTP_HOST=0.0.0.0 \
    WORKER_HTTP_PORT=9464 \
    FASTVLM_CACHE_DIR=/models \
    FASTVLM_DEVICE=cuda
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
# Production dependencies, then onnxruntime-node's CUDA 12 provider libraries
# (ONNXRUNTIME_NODE_INSTALL=cuda12), fetched by the package's own install script run
# by hand: package.json's allowScripts keeps npm from running it, and the skip above
# keeps an npm without allowScripts from running it during `npm ci`. The check fails
# the build when the provider library is missing.
RUN npm ci --omit=dev --no-audit --no-fund \
 && cd node_modules/onnxruntime-node \
 && ONNXRUNTIME_NODE_INSTALL=cuda12 node script/install.js \
 && test -f bin/napi-v6/linux/x64/libonnxruntime_providers_cuda.so \
 && cd /app \
 && npm cache clean --force \
 && groupadd --system --gid 10001 fastvlm \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin fastvlm \
 && mkdir -p /models \
 && chown 10001:10001 /models
COPY --from=build /src/dist/apps/worker ./dist/apps/worker
USER 10001:10001
EXPOSE 9464
HEALTHCHECK --interval=10s --timeout=3s --start-period=600s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + process.env.WORKER_HTTP_PORT + '/health/ready').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "--enable-source-maps", "dist/apps/worker/main.js"]
