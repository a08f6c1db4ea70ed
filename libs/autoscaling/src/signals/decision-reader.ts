import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { RedisKeys } from '@fastvlm/contracts';
import { STRATEGY_NAMES, type StrategyName } from '../types';
import type { DecisionRecord } from './layout';

const count = z.number().finite().min(0);

const DecisionRecordSchema = z.object({
  at: z.number().finite(),
  queue: z.string(),
  scaledObject: z.string(),
  strategy: z.enum(STRATEGY_NAMES),
  desired: z.object(Object.fromEntries(STRATEGY_NAMES.map((s) => [s, count])) as Record<StrategyName, typeof count>),
  mode: z.enum(['stable', 'panic']),
  forecastRps: count.nullable(),
  active: z.boolean(),
  signals: z.object({
    queued: count,
    active: count,
    ready: count,
    loading: count,
    arrivalsPerSecond: count,
    replicaCapacity: count,
    replicaCapacityMeasured: z.boolean(),
    startupSeconds: count,
    startupMeasured: z.boolean(),
  }),
}) satisfies z.ZodType<DecisionRecord>;

/** A `decision` value as the scaler wrote it, or null when it is not one (another version's, or garbage). */
export function parseDecision(json: string): DecisionRecord | null {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch {
    return null;
  }
  const parsed = DecisionRecordSchema.safeParse(raw);
  return parsed.success ? parsed.data : null;
}

/**
 * The scaler's latest decision for a queue (one GET), or null when no scaler
 * wrote one within DECISION_TTL_S (the key expired), or it cannot be read as one.
 */
export async function readDecision(redis: Redis, keys: RedisKeys, queue: string): Promise<DecisionRecord | null> {
  const json = await redis.get(keys.autoscale(queue, 'decision'));
  return json === null ? null : parseDecision(json);
}
