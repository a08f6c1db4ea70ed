# syntax=docker/dockerfile:1
# The KEDA external scaler (gRPC) with its health and metrics endpoints. From the repository root:
#   docker build -f docker/scaler.Dockerfile -t fastvlm/scaler:0.1.0 .
ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
# onnxruntime-node's install script would download CUDA libraries that the scaler never loads.
ENV ONNXRUNTIME_NODE_INSTALL=skip
COPY package.json package-lock.json .npmrc ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY scripts ./scripts
COPY libs ./libs
COPY apps ./apps
RUN npm run build -- scaler

FROM ${NODE_IMAGE}
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
ARG SOURCE=unknown
LABEL org.opencontainers.image.title="fastvlm-scaler" \
      org.opencontainers.image.description="FastVLM serving cluster: KEDA external scaler (conservative, aggressive, adaptive, predictive)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV NODE_ENV=production \
    ONNXRUNTIME_NODE_INSTALL=skip \
    SCALER_GRPC_HOST=0.0.0.0 \
    SCALER_GRPC_PORT=9090 \
    SCALER_HTTP_HOST=0.0.0.0 \
    SCALER_HTTP_PORT=9466
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci --omit=dev --no-audit --no-fund \
 && npm cache clean --force \
 && groupadd --system --gid 10001 fastvlm \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin fastvlm
# The bundle and, next to it, the externalscaler.proto it loads.
COPY --from=build /src/dist/apps/scaler ./dist/apps/scaler
USER 10001:10001
EXPOSE 9090 9466
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + process.env.SCALER_HTTP_PORT + '/health/ready').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "--enable-source-maps", "dist/apps/scaler/main.js"]
