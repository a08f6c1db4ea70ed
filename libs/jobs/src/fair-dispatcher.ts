import type { Queue } from 'bullmq';
import { INFERENCE_JOB, type InferenceJobData, type WorkClass } from '@fastvlm/contracts';
import type { FairQueue } from './fair-queue';

/**
 * BullMQ priorities of the classes. Interactive work has none (0): BullMQ
 * takes a job without a priority before any prioritized one, in arrival
 * order. Among prioritized jobs, 1 goes before 2.
 */
export const CLASS_PRIORITY: Readonly<Record<WorkClass, number>> = { interactive: 0, async: 1, batch: 2 };

export interface FairDispatcherOptions {
  /** Jobs the pool's queue should hold waiting (about twice the pool's slots): what it tops up to. */
  target: number;
  /** A lower-class job that has waited this long in the pool's queue is raised to the interactive priority. */
  ageMs: number;
  /** Milliseconds between two ticks. */
  intervalMs: number;
  /** Receives failures of a tick (Redis away): the next tick tries again. */
  onError?: (e: unknown) => void;
}

export interface TickReport {
  dispatched: number;
  aged: number;
}

/**
 * Moves a pool's lower-class jobs from its fair queue into its BullMQ queue,
 * keeping the BullMQ queue short (`target` waiting), so that the order in
 * which the workers take lower-class work is the fair queue's. Any number of
 * dispatchers may run (one per gateway): claims are atomic and leased (see
 * FairQueue), and a job added twice under its id is one job.
 *
 * Starvation of the lower classes is bounded by aging: interactive jobs are
 * always taken first, but a lower-class job that has waited `ageMs` in the
 * pool's queue is raised to their priority, and then waits only for the
 * interactive jobs queued before it.
 */
export class FairDispatcher {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly fair: FairQueue<InferenceJobData>,
    private readonly queue: Queue,
    private readonly opts: FairDispatcherOptions,
  ) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.kick(), this.opts.intervalMs);
    this.timer.unref();
  }

  /** Ticks now (a job was just pushed), unless a tick is already running. */
  kick(): void {
    this.running = this.running.then(() => this.tick(Date.now()).catch((e: unknown) => this.opts.onError?.(e)));
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }

  async tick(now: number): Promise<TickReport> {
    const aged = await this.age(now);
    const counts = await this.queue.getJobCounts('wait', 'prioritized');
    const waiting = (counts.wait ?? 0) + (counts.prioritized ?? 0);
    const room = this.opts.target - waiting;
    if (room <= 0) return { dispatched: 0, aged };
    const entries = await this.fair.claim(room, now);
    if (entries.length === 0) return { dispatched: 0, aged };
    await this.queue.addBulk(entries.map((e) => ({ name: INFERENCE_JOB, data: e.job, opts: { jobId: e.id, priority: CLASS_PRIORITY[e.workClass] } })));
    await this.fair.confirm(entries.map((e) => e.id));
    return { dispatched: entries.length, aged };
  }

  /** Raises the lower-class jobs that waited `ageMs` in the pool's queue to the interactive priority. */
  async age(now: number): Promise<number> {
    // The pool's queue holds about `target` lower-class jobs, behind the interactive ones.
    const waiting = await this.queue.getPrioritized(0, this.opts.target * 4);
    const old = waiting.filter((j) => now - j.timestamp >= this.opts.ageMs);
    await Promise.all(old.map((j) => j.changePriority({ priority: CLASS_PRIORITY.interactive })));
    return old.length;
  }
}
