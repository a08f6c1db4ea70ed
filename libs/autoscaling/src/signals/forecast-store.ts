import type { Redis } from 'ioredis';
import type { RedisKeys } from '@fastvlm/contracts';
import { emptyForecast, foldMinutes, type ForecastState } from '../forecast/seasonal-forecast';
import type { SampleRecorder } from './sample-recorder';

/**
 * Replaces the model only if its `minute` is still the one the fold started
 * from (ARGV[1], empty for no model yet): of two replicas folding the same
 * minutes, one writes and the other finds the model moved on.
 */
const COMPARE_AND_SET = `
local current = redis.call('HGET', KEYS[1], 'minute')
if (current or '') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'minute', ARGV[2], 'state', ARGV[3])
return 1
`;

export interface FoldResult {
  /** The model after the fold (this replica's or another's); null while no minute has been recorded. */
  state: ForecastState | null;
  /** Whether this call wrote the model. */
  folded: boolean;
}

/**
 * The predictive strategy's arrival model in the `forecast` hash, shared by
 * every scaler replica: folded forward from the `minutes` stream, each minute
 * once, under optimistic concurrency.
 */
export class ForecastStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly recorder: SampleRecorder,
  ) {}

  /** The stored model; null when there is none (or it cannot be read: the next fold rebuilds it). */
  async read(queue: string): Promise<ForecastState | null> {
    return (await this.stored(queue)).state;
  }

  /** Folds the minutes recorded after the model's last one into it. */
  async fold(queue: string): Promise<FoldResult> {
    const { rawMinute, state } = await this.stored(queue);
    const minutes = await this.recorder.minutesAfter(queue, state ? state.lastMinute : null);
    if (minutes.length === 0) return { state, folded: false };
    const next = foldMinutes(state ?? emptyForecast(), minutes);
    const written = await this.redis.eval(
      COMPARE_AND_SET,
      1,
      this.keys.autoscale(queue, 'forecast'),
      rawMinute ?? '',
      String(next.lastMinute),
      JSON.stringify(next),
    );
    if (written === 1) return { state: next, folded: true };
    return { state: await this.read(queue), folded: false };
  }

  private async stored(queue: string): Promise<{ rawMinute: string | null; state: ForecastState | null }> {
    const [rawMinute, json] = await this.redis.hmget(this.keys.autoscale(queue, 'forecast'), 'minute', 'state');
    return { rawMinute: rawMinute ?? null, state: parseState(json ?? null) };
  }
}

function parseState(json: string | null): ForecastState | null {
  if (json === null) return null;
  try {
    const s = JSON.parse(json) as Partial<ForecastState>;
    return s.version === 1 && Array.isArray(s.daily) && Array.isArray(s.weekly) && typeof s.lastMinute === 'number' ? (s as ForecastState) : null;
  } catch {
    return null;
  }
}
