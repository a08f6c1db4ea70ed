import 'reflect-metadata';
import multipart from '@fastify/multipart';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { assertNoEviction, waitReady } from '@fastvlm/jobs';
import { AppModule } from './app.module';
import type { GatewayConfig } from './config';
import { createLogger } from './http/logger';
import { REDIS } from './infra/tokens';

/** Builds the gateway application (not yet listening). */
export async function createGateway(cfg: GatewayConfig, log: Logger = createLogger(cfg.LOG_LEVEL)): Promise<NestFastifyApplication> {
  const adapter = new FastifyAdapter({ bodyLimit: cfg.BODY_LIMIT_BYTES, logger: false, trustProxy: false });
  const app = await NestFactory.create<NestFastifyApplication>(AppModule.forConfig(cfg, log), adapter, {
    logger: ['error', 'warn'],
    abortOnError: false,
  });
  await app.register(multipart, {
    limits: { fileSize: cfg.MAX_IMAGE_BYTES, files: 1, fields: 10, fieldSize: 64 * 1024, parts: 12, headerPairs: 100 },
  });
  const fastify = app.getHttpAdapter().getInstance();
  if (cfg.LOG_REQUESTS) {
    fastify.addHook('onResponse', (req, reply, done) => {
      log.info({ method: req.method, url: req.url, status: reply.statusCode, ms: Math.round(reply.elapsedTime) }, 'request');
      done();
    });
  }
  app.enableShutdownHooks();
  await app.init();
  const redis = app.get<Redis>(REDIS);
  await waitReady(redis, 10_000);
  await assertNoEviction(redis);
  return app;
}
