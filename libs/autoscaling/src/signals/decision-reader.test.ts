import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readDecision, parseDecision } from './decision-reader';
import { DECISION_TTL_S, type DecisionRecord } from './layout';
import { cleanup, freshKeys, producer, until } from './test-redis';

const record: DecisionRecord = {
  at: 1_700_000_000_000,
  queue: 'inference',
  scaledObject: 'default',
  strategy: 'predictive',
  desired: { conservative: 2, aggressive: 5, adaptive: 3, predictive: 4 },
  mode: 'panic',
  forecastRps: null,
  active: true,
  signals: {
    queued: 12,
    active: 8,
    ready: 2,
    loading: 1,
    arrivalsPerSecond: 3.5,
    replicaCapacity: 1.25,
    replicaCapacityMeasured: true,
    startupSeconds: 42,
    startupMeasured: false,
  },
};

describe('the scaler decision as the console reads it', () => {
  let redis: Redis;
  beforeAll(async () => {
    redis = await producer();
  });
  afterAll(() => redis?.disconnect());

  it('reads the record the scaler wrote, and null once it expired or when there is none', async () => {
    const keys = freshKeys();
    const key = keys.autoscale('inference', 'decision');
    try {
      expect(await readDecision(redis, keys, 'inference')).toBeNull();
      await redis.set(key, JSON.stringify(record), 'EX', DECISION_TTL_S);
      expect(await readDecision(redis, keys, 'inference')).toEqual(record);
      // A scaler that stopped writing: its last record expires.
      await redis.pexpire(key, 1);
      await until('the record to expire', async () => (await readDecision(redis, keys, 'inference')) === null);
    } finally {
      await cleanup(redis, keys);
    }
  });

  it('refuses what is not a decision record: broken JSON, a missing strategy, an unknown mode', () => {
    expect(parseDecision('{')).toBeNull();
    expect(parseDecision(JSON.stringify({ ...record, desired: { conservative: 1, aggressive: 1, adaptive: 1 } }))).toBeNull();
    expect(parseDecision(JSON.stringify({ ...record, mode: 'calm' }))).toBeNull();
    expect(parseDecision(JSON.stringify({ ...record, forecastRps: 2.5 }))?.forecastRps).toBe(2.5);
  });
});
