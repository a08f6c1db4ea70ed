import 'reflect-metadata';
import multipart from '@fastify/multipart';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { assertQueueRedisSafe, waitReady } from '@fastvlm/jobs';
import { restrictImageLoaders } from '@fastvlm/security';
import { AppModule, type GatewayOverrides } from './app.module';
import type { GatewayConfig } from './config';
import { createLogger } from './http/logger';
import { REDIS } from './infra/tokens';
import { consoleDir, serveConsole } from './console/serve-console';
import { installHttpTelemetry, requestId } from './metrics/http-telemetry';
import { METRICS } from './metrics/tokens';
import { utf8JsonParser } from './intake/json-body';
import { AccessControl } from './security/access-control';
import { installAccessHook } from './security/access-hook';
import { fastifyTrustProxy } from './security/security-config';

/** Builds the gateway application (not yet listening). */
export async function createGateway(
  cfg: GatewayConfig,
  log: Logger = createLogger(cfg.LOG_LEVEL),
  overrides: GatewayOverrides = {},
): Promise<NestFastifyApplication> {
  restrictImageLoaders();
  const adapter = new FastifyAdapter({ bodyLimit: cfg.BODY_LIMIT_BYTES, logger: false, trustProxy: fastifyTrustProxy(cfg.TRUST_PROXY), genReqId: requestId });
  const app = await NestFactory.create<NestFastifyApplication>(AppModule.forConfig(cfg, log, overrides), adapter, {
    logger: ['error', 'warn'],
    abortOnError: false,
  });
  await app.register(multipart, {
    limits: { fileSize: cfg.MAX_IMAGE_BYTES, files: 1, fields: 10, fieldSize: 64 * 1024, parts: 12, headerPairs: 100 },
  });
  const fastify = app.getHttpAdapter().getInstance();
  installHttpTelemetry(fastify, app.get(METRICS), log, cfg.LOG_REQUESTS);
  await serveConsole(app, consoleDir(cfg.CONSOLE_DIR));
  installAccessHook(fastify, app.get(AccessControl));
  app.useBodyParser('application/json', { bodyLimit: cfg.BODY_LIMIT_BYTES }, utf8JsonParser(fastify));
  app.enableShutdownHooks();
  await app.init();
  const redis = app.get<Redis>(REDIS);
  try {
    await waitReady(redis, 10_000);
    // Refused: a Cluster node or a Sentinel (every request would fail), or a Redis that may evict jobs.
    await assertQueueRedisSafe(redis);
  } catch (e) {
    await app.close();
    throw e;
  }
  return app;
}
