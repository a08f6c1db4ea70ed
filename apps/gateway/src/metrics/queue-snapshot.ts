import type { Queue } from 'bullmq';
import type { WorkerRegistry } from '@fastvlm/jobs';
import type { QueueSnapshot } from '@fastvlm/observability';

/** BullMQ states that make up the queue depth (paused and waiting-children are never used here). */
export const QUEUE_STATES = ['wait', 'prioritized', 'delayed', 'active', 'failed', 'completed'] as const;

/** Jobs by state and the age of the oldest waiting one: two round trips, made per scrape, never per request. */
export async function readQueue(queue: Queue, now: number): Promise<QueueSnapshot> {
  const [counts, [oldestWaiting], [firstPrioritized]] = await Promise.all([
    queue.getJobCounts(...QUEUE_STATES),
    // asc: the wait list's far end holds the job that has waited longest.
    queue.getJobs(['wait'], 0, 0, true),
    queue.getJobs(['prioritized'], 0, 0, true),
  ]);
  const oldest = Math.min(oldestWaiting?.timestamp ?? now, firstPrioritized?.timestamp ?? now);
  return { counts, oldestWaitSeconds: Math.max(0, now - oldest) / 1000 };
}

/** Live workers by the model they serve; every configured model is present, with 0 when none is alive (alerts need the zero). */
export async function readWorkers(registry: WorkerRegistry, now: number, configured: readonly string[]): Promise<Record<string, number>> {
  const byModel: Record<string, number> = Object.fromEntries(configured.map((m) => [m, 0]));
  for (const w of await registry.alive(now)) byModel[w.model] = (byModel[w.model] ?? 0) + 1;
  return byModel;
}
