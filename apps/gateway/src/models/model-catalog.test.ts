import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError, RedisKeys, poolQueue } from '@fastvlm/contracts';
import { WorkerRegistry } from '@fastvlm/jobs';
import { loadGatewayConfig } from '../config';
import { ModelCatalog } from './model-catalog';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

describe('model catalog on a real worker registry', () => {
  const prefix = `t-${randomBytes(5).toString('hex')}`;
  const keys = new RedisKeys(prefix);
  let redis: Redis;
  let registry: WorkerRegistry;
  let catalog: ModelCatalog;

  /** A worker of `model` in the registry, as a real one announces itself once ready. */
  const announce = (id: string, model: string, revision: string, at = Date.now()): Promise<void> =>
    registry.announce({ id, model, revision, dtype: 'fp32', device: 'cpu', pid: 1, startedAt: at, queue: poolQueue(model) }, at);

  beforeAll(async () => {
    redis = new Redis(REDIS_URL);
    registry = new WorkerRegistry(redis, keys);
    const cfg = loadGatewayConfig({
      FASTVLM_REDIS_PREFIX: prefix,
      FASTVLM_MODELS: 'a,b',
      FASTVLM_MODEL_ALIASES: 'fast=a',
      FASTVLM_DEFAULT_MODEL: 'b',
    });
    await announce('w-a-old', 'a', 'rev-1', Date.now() - 1000);
    await announce('w-a-new', 'a', 'rev-2');
    // Announced by its workers, configured nowhere.
    await announce('w-c', 'c', 'rev-c');
    catalog = new ModelCatalog(cfg, registry);
  });
  afterAll(async () => {
    const found = await redis.keys(`${prefix}:*`);
    if (found.length > 0) await redis.del(...found);
    redis.disconnect();
  });

  it('resolves an id, an alias, no name (the default) and a model only live workers announce', async () => {
    expect(await catalog.resolve('a')).toBe('a');
    expect(await catalog.resolve('fast')).toBe('a');
    expect(await catalog.resolve(undefined)).toBe('b');
    expect(await catalog.resolve('c')).toBe('c');
  });

  it('refuses any other name with model_not_found on `model`, listing the served models and the aliases', async () => {
    const e = await catalog.resolve('gpt-4o').then(
      () => null,
      (err: unknown) => err,
    );
    expect(e).toBeInstanceOf(AppError);
    expect((e as AppError).toJSON()).toEqual({
      code: 'model_not_found',
      message: 'The model "gpt-4o" is not served here; served models: b, a, c; aliases: fast → a.',
      param: 'model',
    });
  });

  it('lists the pools: configured ones first (the default leading), then announced ones, with the newest worker’s revision', async () => {
    expect(await catalog.pools()).toEqual([
      { id: 'b', configured: true, workers: 0, revision: null },
      { id: 'a', configured: true, workers: 2, revision: 'rev-2' },
      { id: 'c', configured: false, workers: 1, revision: 'rev-c' },
    ]);
    expect(await catalog.revision('a')).toEqual({ id: 'a', revision: 'rev-2' });
    expect(await catalog.revision('b')).toBeNull();
  });
});
