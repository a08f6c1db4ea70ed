import { Inject, Injectable } from '@nestjs/common';
import type { Queue } from 'bullmq';
import { LimitExceeded } from '@fastvlm/security';
import { CONFIG, type GatewayConfig } from '../config';

/** How stale a backlog figure may be: every pod reads each pool's at most this often. */
const REFRESH_MS = 250;
const RETRY_AFTER_MS = 5_000;

interface Backlog {
  count: number;
  readAt: number;
  reading: Promise<void> | null;
}

/**
 * Admission control: when the jobs waiting in a model pool's queue (all
 * tenants) pass `ADMISSION_MAX_BACKLOG`, new work for that pool gets 503 +
 * Retry-After instead of growing its queue without bound; the other pools are
 * not held back by it. Each count is read at most every 250 ms per pod, so the
 * bound can be overshot by what all pods admit in that time.
 */
@Injectable()
export class BacklogGate {
  private readonly backlogs = new Map<string, Backlog>();

  constructor(@Inject(CONFIG) private readonly cfg: GatewayConfig) {}

  /** Refuses a job for the pool whose queue is `queue` while its backlog is over the bound. */
  async check(queue: Queue): Promise<void> {
    let b = this.backlogs.get(queue.name);
    if (!b) {
      b = { count: 0, readAt: 0, reading: null };
      this.backlogs.set(queue.name, b);
    }
    if (Date.now() - b.readAt > REFRESH_MS) {
      const backlog = b;
      backlog.reading ??= queue
        .count()
        .then((n) => {
          backlog.count = n;
          backlog.readAt = Date.now();
        })
        .finally(() => (backlog.reading = null));
      await backlog.reading;
    }
    const max = this.cfg.ADMISSION_MAX_BACKLOG;
    if (b.count >= max) {
      throw new LimitExceeded(
        'overloaded',
        'The service has more work queued for this model than it accepts right now; retry after the Retry-After delay.',
        { name: 'global_backlog', limit: max, remaining: 0, resetMs: 0 },
        RETRY_AFTER_MS,
      );
    }
  }
}
