import type { SerializedError } from '@fastvlm/contracts';
import type { JobStore, SweepOutcome } from './job-store';

export interface SweeperOptions {
  /** Milliseconds a record may wait for its queue job before it counts as lost. */
  graceMs: number;
  /** Pending ids looked at per tick at most. */
  batch: number;
}

export interface SweepReport {
  checked: number;
  /** Records failed with `enqueue_lost`. */
  failed: string[];
}

const ENQUEUE_LOST: SerializedError = {
  code: 'enqueue_lost',
  message: 'The job never reached the queue (its gateway failed while submitting it); submit it again.',
};

/**
 * Ends the jobs no queue event will ever report: a record created but never
 * added to the queue (its gateway died in between, or the add failed without
 * its reply saying whether it happened). It reads only the pending index (ids
 * not yet claimed, oldest first), at most `batch` per tick, so its cost does
 * not grow with the keyspace; each check is one atomic script, so any number
 * of workers may sweep at once.
 */
export class JobSweeper {
  constructor(
    private readonly store: JobStore,
    /** Whether the pool of `model` holds the job: in its BullMQ queue or its fair queue (see `poolHolds`). */
    private readonly isEnqueued: (id: string, model: string) => Promise<boolean>,
    private readonly opts: SweeperOptions,
  ) {}

  async tick(now: number): Promise<SweepReport> {
    const ids = await this.store.pendingBefore(now - this.opts.graceMs, this.opts.batch);
    const outcomes: SweepOutcome[] = await Promise.all(ids.map((id) => this.store.sweepPending(id, (model) => this.isEnqueued(id, model), ENQUEUE_LOST, now)));
    return { checked: ids.length, failed: ids.filter((_, i) => outcomes[i] === 'lost') };
  }
}
