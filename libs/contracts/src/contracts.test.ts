import { describe, expect, it } from 'vitest';
import {
  AppError,
  ERROR_CODES,
  InferenceJobDataSchema,
  JobEventSchema,
  RedisKeys,
  isDeterministic,
  isFinalEvent,
  isRetryable,
  parseEnv,
  RedisEnvSchema,
  redisTargets,
  poolQueue,
  ModelEnvSchema,
  ModelRoutingEnvShape,
  checkModelRouting,
  modelRouting,
} from './index';

const job = {
  id: 'job_abcdefghijklmnopqrstuv',
  tenant: 'acme',
  model: 'tiny-random',
  modelRevision: 'r1',
  image: { sha256: 'a'.repeat(64), bytes: 10 },
  question: 'q',
  params: { maxTokens: 5, temperature: 0, topP: 1, stop: [] },
  cacheKey: null,
  createdAt: 1,
};

describe('contracts', () => {
  it('retries only transient error codes', () => {
    const retryable = ERROR_CODES.filter(isRetryable);
    expect(retryable).toEqual(['service_unavailable', 'internal']);
  });

  it('accepts a well-formed job and rejects inline image bytes, unknown fields and bad hashes', () => {
    expect(InferenceJobDataSchema.parse(job)).toEqual(job);
    expect(InferenceJobDataSchema.safeParse({ ...job, imageBytes: 'AAAA' }).success).toBe(false);
    expect(InferenceJobDataSchema.safeParse({ ...job, image: { sha256: 'xyz', bytes: 10 } }).success).toBe(false);
    expect(InferenceJobDataSchema.safeParse({ ...job, params: { ...job.params, maxTokens: 0 } }).success).toBe(false);
    expect(InferenceJobDataSchema.safeParse({ ...job, params: { ...job.params, stop: ['a', 'b', 'c', 'd', 'e'] } }).success).toBe(false);
  });

  it('treats greedy and seeded sampling as deterministic, unseeded sampling not', () => {
    expect(isDeterministic(job.params)).toBe(true);
    expect(isDeterministic({ ...job.params, temperature: 0.7 })).toBe(false);
    expect(isDeterministic({ ...job.params, temperature: 0.7, seed: 3 })).toBe(true);
  });

  it('ends an event stream on done, error and cancelled, not on tokens or other statuses', () => {
    const ev = (x: unknown) => JobEventSchema.parse(x);
    expect(isFinalEvent(ev({ type: 'token', index: 0, text: 'a' }))).toBe(false);
    expect(isFinalEvent(ev({ type: 'status', status: 'running' }))).toBe(false);
    expect(isFinalEvent(ev({ type: 'status', status: 'cancelled' }))).toBe(true);
    expect(isFinalEvent(ev({ type: 'error', error: { code: 'timeout', message: 'slow' } }))).toBe(true);
    expect(JobEventSchema.safeParse({ type: 'error', error: { code: 'made_up', message: 'x' } }).success).toBe(false);
  });

  it('keeps every key under the prefix', () => {
    const k = new RedisKeys('p1');
    for (const key of [k.job('j'), k.events('j'), k.eventsChannel('j'), k.image('h'), k.idempotency('t', 'h'), k.answer('c'), k.workers(), k.worker('w'), k.bull(), k.cancelChannel(), k.modelLoadFailures(), k.tenantJobs('t')]) {
      expect(key.startsWith('p1:')).toBe(true);
    }
  });

  it('serialises AppError with its code and param', () => {
    expect(new AppError('invalid_request', 'bad', 'max_tokens').toJSON()).toEqual({ code: 'invalid_request', message: 'bad', param: 'max_tokens' });
  });

  it('names every invalid variable in one configuration error', () => {
    expect(() => parseEnv(RedisEnvSchema, { REDIS_URL: 'not a url', FASTVLM_REDIS_PREFIX: 'bad prefix!' })).toThrow(/REDIS_URL[\s\S]*FASTVLM_REDIS_PREFIX/);
    expect(parseEnv(RedisEnvSchema, {}).REDIS_URL).toBe('redis://127.0.0.1:6379');
  });

  it('reads a Sentinel group and a Cluster from the environment, with the credentials of the URLs', () => {
    const env = parseEnv(RedisEnvSchema, {
      REDIS_URL: 'redis://:secret@ignored:6379/2',
      REDIS_SENTINELS: 'sentinel-0:26379, [::1]:26380',
      REDIS_SENTINEL_NAME: 'fastvlm',
      REDIS_SENTINEL_PASSWORD: 'watch',
      CACHE_REDIS_CLUSTER_NODES: 'cache-0:6379,cache-1:6379',
    });
    expect(redisTargets(env)).toEqual({
      queue: {
        kind: 'sentinel',
        url: 'redis://:secret@ignored:6379/2',
        sentinels: [
          { host: 'sentinel-0', port: 26379 },
          { host: '::1', port: 26380 },
        ],
        name: 'fastvlm',
        sentinelPassword: 'watch',
      },
      cache: { kind: 'cluster', url: 'redis://:secret@ignored:6379/2', nodes: [{ host: 'cache-0', port: 6379 }, { host: 'cache-1', port: 6379 }] },
    });
    expect(redisTargets(parseEnv(RedisEnvSchema, {}))).toEqual({ queue: { kind: 'standalone', url: 'redis://127.0.0.1:6379' }, cache: null });
  });

  it('refuses a Sentinel list without its name, both topologies at once, and a node that is not host:port', () => {
    expect(() => parseEnv(RedisEnvSchema, { REDIS_SENTINELS: 's:26379' })).toThrow(
      'Invalid configuration:\n  REDIS_SENTINEL_NAME: required with REDIS_SENTINELS (the name the Sentinels monitor)',
    );
    expect(() => parseEnv(RedisEnvSchema, { CACHE_REDIS_SENTINELS: 's:1', CACHE_REDIS_SENTINEL_NAME: 'm', CACHE_REDIS_CLUSTER_NODES: 'n:1' })).toThrow(
      'CACHE_REDIS_CLUSTER_NODES: give either CACHE_REDIS_SENTINELS or CACHE_REDIS_CLUSTER_NODES, not both',
    );
    expect(() => parseEnv(RedisEnvSchema, { REDIS_CLUSTER_NODES: 'n:1,n2' })).toThrow('REDIS_CLUSTER_NODES: "n2" is not host:port');
    expect(() => parseEnv(RedisEnvSchema, { REDIS_CLUSTER_NODES: 'n:70000' })).toThrow('"n:70000" is not host:port');
  });

  it('routes by FASTVLM_MODELS, aliases and a default, and with none of them serves FASTVLM_MODEL alone', () => {
    const schema = ModelEnvSchema.extend(ModelRoutingEnvShape).superRefine(checkModelRouting);
    const routing = (env: Record<string, string>) => modelRouting(parseEnv(schema, env));
    expect(routing({ FASTVLM_MODEL: 'tiny-random' })).toEqual({ models: ['tiny-random'], aliases: new Map(), defaultModel: 'tiny-random' });
    expect(routing({})).toEqual({ models: ['onnx-community/FastVLM-0.5B-ONNX'], aliases: new Map(), defaultModel: 'onnx-community/FastVLM-0.5B-ONNX' });
    // FASTVLM_MODELS replaces FASTVLM_MODEL; the default may be named by an alias, and is listed first.
    expect(
      routing({
        FASTVLM_MODEL: 'ignored',
        FASTVLM_MODELS: ' tiny-random , tiny-random@other ',
        FASTVLM_MODEL_ALIASES: 'fast=tiny-random, second = tiny-random@other',
        FASTVLM_DEFAULT_MODEL: 'second',
      }),
    ).toEqual({
      models: ['tiny-random@other', 'tiny-random'],
      aliases: new Map([
        ['fast', 'tiny-random'],
        ['second', 'tiny-random@other'],
      ]),
      defaultModel: 'tiny-random@other',
    });
  });

  it('refuses routing that could send a request nowhere, naming the variable', () => {
    const schema = ModelEnvSchema.extend(ModelRoutingEnvShape).superRefine(checkModelRouting);
    const fail = (env: Record<string, string>) => () => parseEnv(schema, env);
    expect(fail({ FASTVLM_MODELS: 'a,,b' })).toThrow('Invalid configuration:\n  FASTVLM_MODELS: an empty model id (give ids separated by commas)');
    expect(fail({ FASTVLM_MODELS: 'a,a' })).toThrow('FASTVLM_MODELS: "a" is listed twice');
    expect(fail({ FASTVLM_MODELS: 'a', FASTVLM_MODEL_ALIASES: 'x=b' })).toThrow('FASTVLM_MODEL_ALIASES: "x" names "b", which is not a served model (a)');
    expect(fail({ FASTVLM_MODELS: 'a,b', FASTVLM_MODEL_ALIASES: 'b=a' })).toThrow('FASTVLM_MODEL_ALIASES: "b" is a model id already; an alias must be another name');
    expect(fail({ FASTVLM_MODELS: 'a', FASTVLM_MODEL_ALIASES: 'x=a,x=a' })).toThrow('FASTVLM_MODEL_ALIASES: "x" is given twice');
    expect(fail({ FASTVLM_MODELS: 'a', FASTVLM_MODEL_ALIASES: 'just-a-name' })).toThrow('FASTVLM_MODEL_ALIASES: "just-a-name" is not alias=model-id');
    expect(fail({ FASTVLM_MODELS: 'a', FASTVLM_DEFAULT_MODEL: 'b' })).toThrow('FASTVLM_DEFAULT_MODEL: "b" is neither a served model nor an alias of one (a)');
  });

  it('names each model pool\'s queue from its id, readably and without collisions', () => {
    expect(poolQueue('onnx-community/FastVLM-0.5B-ONNX')).toBe('inference-onnx-community~2fFastVLM-0.5B-ONNX');
    expect(poolQueue('tiny-random')).toBe('inference-tiny-random');
    expect(poolQueue('tiny-random@other')).toBe('inference-tiny-random~40other');
    expect(poolQueue('a~2f')).toBe('inference-a~7e2f');
    expect(poolQueue('a/')).not.toBe(poolQueue('a~2f'));
    expect(poolQueue('modèle:1')).toBe('inference-mod~c3a8le~3a1');
  });
});
