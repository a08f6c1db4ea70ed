import { Inject, Injectable } from '@nestjs/common';
import type { Queue } from 'bullmq';
import { LimitExceeded } from '@fastvlm/security';
import { CONFIG, type GatewayConfig } from '../config';
import { QUEUE } from '../infra/tokens';

/** How stale the backlog figure may be: every pod reads it at most this often. */
const REFRESH_MS = 250;
const RETRY_AFTER_MS = 5_000;

/**
 * Admission control: when the jobs waiting in the queue (all tenants) pass
 * `ADMISSION_MAX_BACKLOG`, new work gets 503 + Retry-After instead of growing
 * the queue without bound. The count is read at most every 250 ms per pod,
 * so the bound can be overshot by what all pods admit in that time.
 */
@Injectable()
export class BacklogGate {
  private count = 0;
  private readAt = 0;
  private reading: Promise<void> | null = null;

  constructor(
    @Inject(QUEUE) private readonly queue: Queue,
    @Inject(CONFIG) private readonly cfg: GatewayConfig,
  ) {}

  async check(): Promise<void> {
    if (Date.now() - this.readAt > REFRESH_MS) {
      this.reading ??= this.queue
        .count()
        .then((n) => {
          this.count = n;
          this.readAt = Date.now();
        })
        .finally(() => (this.reading = null));
      await this.reading;
    }
    const max = this.cfg.ADMISSION_MAX_BACKLOG;
    if (this.count >= max) {
      throw new LimitExceeded(
        'overloaded',
        'The service has more work queued than it accepts right now; retry after the Retry-After delay.',
        { name: 'global_backlog', limit: max, remaining: 0, resetMs: 0 },
        RETRY_AFTER_MS,
      );
    }
  }
}
