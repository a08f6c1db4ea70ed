import { Inject, Injectable } from '@nestjs/common';
import type { Queue } from 'bullmq';
import { LimitExceeded, type AuditLog, type JobQuota, type JobReservation, type Principal } from '@fastvlm/security';
import { AUDIT_LOG, JOB_QUOTA } from '../security/tokens';
import { BacklogGate } from './backlog';

/**
 * Admission of one job: its pool's backlog, then the tenant's tokens,
 * in-flight and queued caps (one atomic step in Redis).
 *
 * Token accounting: a job reserves its `max_tokens` when admitted. When the
 * gateway sees a sync request's answer it gives back what was not generated;
 * answers from the cache and de-duplicated requests give back everything.
 * Async jobs keep their reservation (nothing sees their end exactly once), so
 * for them the limit bounds what tenants may commit, a conservative reading.
 */
@Injectable()
export class Admission {
  constructor(
    @Inject(JOB_QUOTA) private readonly quota: JobQuota,
    @Inject(BacklogGate) private readonly backlog: BacklogGate,
    @Inject(AUDIT_LOG) private readonly audit: AuditLog,
  ) {}

  /** `queue`: the queue of the pool the job goes to. */
  /**
   * `counted` false for async and batch jobs: their pool's fair queue bounds them (`held`, which throws
   * when the tenant's share of it is full), not the in-flight and queued caps.
   */
  async admit(p: Principal, jobId: string, maxTokens: number, queue: Queue, counted = true, held?: () => Promise<void>): Promise<JobReservation> {
    try {
      await this.backlog.check(queue);
      await held?.();
      const { reservation } = await this.quota.admit(p.tenant, jobId, maxTokens, p.settings, Date.now(), counted);
      return reservation;
    } catch (e) {
      if (e instanceof LimitExceeded) this.audit.emit({ type: 'limit_hit', limit: e.state.name, tenant: p.tenant, keyId: p.keyId });
      throw e;
    }
  }

  /** Undoes an admission whose job never ran here (failed enqueue, cache hit, de-duplicated onto another job). */
  async release(r: JobReservation): Promise<void> {
    // Best effort: if Redis is away the slot ages out of the tenant's set and the window resets.
    await Promise.all([this.quota.releaseSlot(r), this.quota.refundTokens(r, r.tokens)]).catch(() => undefined);
  }

  /** A sync request's answer arrived: give back the tokens it did not generate. */
  async settle(r: JobReservation, completionTokens: number): Promise<void> {
    await this.quota.refundTokens(r, r.tokens - completionTokens).catch(() => undefined);
  }
}
