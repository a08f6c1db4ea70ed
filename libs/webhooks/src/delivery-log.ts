import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { RedisKeys } from '@fastvlm/contracts';
import { LuaScript } from '@fastvlm/jobs';

export const DELIVERY_STATUSES = ['delivered', 'failed', 'circuit_open', 'refused'] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

/** One attempt, as the admins' delivery log shows it (the API's field names: it is returned as stored). */
export interface DeliveryLogEntry {
  event_id: string;
  type: string;
  /** 1 for the first attempt; a circuit wait carries the number of the attempt it postponed. */
  attempt: number;
  status: DeliveryStatus;
  http_status: number | null;
  error: string | null;
  duration_ms: number;
  /** Unix seconds. */
  at: number;
}

const Entry = z.object({
  event_id: z.string(),
  type: z.string(),
  attempt: z.number(),
  status: z.enum(DELIVERY_STATUSES),
  http_status: z.number().nullable(),
  error: z.string().nullable(),
  duration_ms: z.number(),
  at: z.number(),
});

/**
 * Appends an entry unless the endpoint is gone (an attempt that ends after a DELETE must not
 * leave an orphan log behind). KEYS: endpoint, log. ARGV: entry, entries kept. Reply: 1 appended, 0 gone.
 */
const APPEND = new LuaScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('LPUSH', KEYS[2], ARGV[1])
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[2]) - 1)
return 1
`);

/** Each endpoint's recent attempts, newest first: a list capped at `maxEntries`. */
export class DeliveryLog {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly maxEntries: number,
  ) {}

  async append(endpointId: string, entry: DeliveryLogEntry): Promise<void> {
    await APPEND.run(this.redis, [this.keys.webhookEndpoint(endpointId), this.keys.webhookDeliveries(endpointId)], [JSON.stringify(entry), this.maxEntries]);
  }

  /** The newest `limit` entries; an unreadable one is skipped rather than failing the whole log. */
  async read(endpointId: string, limit: number): Promise<DeliveryLogEntry[]> {
    const raw = await this.redis.lrange(this.keys.webhookDeliveries(endpointId), 0, limit - 1);
    const entries: DeliveryLogEntry[] = [];
    for (const r of raw) {
      try {
        const parsed = Entry.safeParse(JSON.parse(r));
        if (parsed.success) entries.push(parsed.data);
      } catch {
        // Not JSON: skipped.
      }
    }
    return entries;
  }
}
