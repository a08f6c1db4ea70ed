import type { Redis } from 'ioredis';
import type { RedisKeys } from '@fastvlm/contracts';
import { STRATEGY_NAMES, type StrategyName } from '../types';
import { readDecision } from './decision-reader';
import type { Evaluation } from './evaluate';
import { DECISION_TTL_S, type DecisionRecord, type RecordedSample } from './layout';

/** The name of the scaler's own watch of its configured queue (no ScaledObject asked for it). */
export const DEFAULT_SCALED_OBJECT = 'default';

/**
 * Writes ARGV[1] with a TTL of ARGV[2] seconds. The scaler's own default watch
 * (ARGV[3] = '1') does not replace a live record of a real ScaledObject on the
 * same queue: KEDA may ask only one replica, and the console should show what
 * KEDA is told, not what the others would say.
 */
const WRITE = `
if ARGV[3] == '1' then
  local current = redis.call('GET', KEYS[1])
  if current and not string.find(current, '"scaledObject":"${DEFAULT_SCALED_OBJECT}"', 1, true) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 1
`;

/** The `decision` record of a queue (see `layout.ts`): the latest tick, for the console. */
export class DecisionStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
  ) {}

  /** Writes the record; false when a real ScaledObject's live record kept a default one out. */
  async write(record: DecisionRecord): Promise<boolean> {
    const isDefault = record.scaledObject === DEFAULT_SCALED_OBJECT ? '1' : '0';
    const n = await this.redis.eval(WRITE, 1, this.keys.autoscale(record.queue, 'decision'), JSON.stringify(record), DECISION_TTL_S, isDefault);
    return n === 1;
  }

  /** The record as the console reads it (checked against its schema; null when absent or unreadable). */
  read(queue: string): Promise<DecisionRecord | null> {
    return readDecision(this.redis, this.keys, queue);
  }
}

/** The record of one evaluation of `scaledObject` on the reading `sample`, taken at `at` (epoch ms). */
export function decisionRecord(at: number, scaledObject: string, ev: Evaluation, sample: RecordedSample): DecisionRecord {
  const desired = {} as Record<StrategyName, number>;
  for (const name of STRATEGY_NAMES) desired[name] = ev.decisions[name].desired;
  return {
    at,
    queue: ev.settings.queue,
    scaledObject,
    strategy: ev.settings.strategy,
    desired,
    mode: ev.decisions.adaptive.mode,
    forecastRps: ev.decisions.predictive.forecastRps,
    active: ev.active,
    signals: {
      queued: sample.queued,
      active: sample.active,
      ready: sample.ready,
      loading: sample.loading,
      arrivalsPerSecond: ev.arrivalsPerSecond,
      replicaCapacity: ev.params.replicaCapacity,
      replicaCapacityMeasured: ev.settings.replicaCapacity === 'measured' && ev.measured.replicaCapacity !== null,
      startupSeconds: ev.params.startupSeconds,
      startupMeasured: ev.settings.startupSeconds === 'measured' && ev.measured.startupSeconds !== null,
    },
  };
}
