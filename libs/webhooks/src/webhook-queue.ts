import { Queue, type JobsOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { RedisKeys } from '@fastvlm/contracts';
import type { RetryPolicy } from './retry-policy';

/** The BullMQ queue of webhook deliveries (under `RedisKeys.bull()`, like the pools' queues). */
export const WEBHOOK_QUEUE = 'webhooks';
/** The only job name on it; the delivery worker refuses any other. */
export const DELIVERY_JOB = 'deliver';
/** Name of the custom backoff strategy (see `retryDelayMs`). */
export const WEBHOOK_BACKOFF = 'webhook';

/**
 * One delivery: an event for one endpoint. The body is serialized once, at
 * emit, so that every attempt sends the same bytes under the same
 * `webhook-id`. No secret here (job data is readable by whoever reads the
 * queue): the worker reads the endpoint's secrets at each attempt, which is
 * also what makes a rotation apply to pending retries.
 */
export const DeliveryJobDataSchema = z.strictObject({
  endpointId: z.string().min(1),
  eventId: z.string().min(1),
  type: z.string().min(1),
  body: z.string().min(1),
});
export type DeliveryJobData = z.infer<typeof DeliveryJobDataSchema>;

/** The BullMQ job id: one delivery per endpoint and event, so emitting an event twice enqueues it once. */
export function deliveryJobId(endpointId: string, eventId: string): string {
  return `${endpointId}.${eventId}`;
}

/** Options of every delivery job. */
export function deliveryJobOptions(p: RetryPolicy): JobsOptions {
  return {
    attempts: p.maxAttempts,
    backoff: { type: WEBHOOK_BACKOFF },
    // Kept a day: re-emitting an event (a caller that crashed between its change and the emit) finds it and adds nothing.
    removeOnComplete: { age: 86_400, count: 100_000 },
    // Deliveries that used every attempt are the dead letters: a week for inspection.
    removeOnFail: { age: 7 * 86_400 },
  };
}

/** The producer side of the queue, on a fail-fast connection (emit errors reach the caller instead of waiting for Redis). */
export function createWebhookQueue(redis: Redis, keys: RedisKeys): Queue<DeliveryJobData> {
  return new Queue<DeliveryJobData>(WEBHOOK_QUEUE, { connection: redis, prefix: keys.bull() });
}
