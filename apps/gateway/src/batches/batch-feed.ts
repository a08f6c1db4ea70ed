import { AppError, isAppError, isRetryable, isTerminal } from '@fastvlm/contracts';
import { requestJobId, type BatchRecord, type InFlight } from '@fastvlm/batches';
import { isConnectionError } from '@fastvlm/jobs';
import { LimitExceeded, type JobReservation } from '@fastvlm/security';
import { linesAt } from './batch-input';
import { batchPrincipal, maxLineBytes, type BatchContext } from './batch-context';
import { announce, close, flush } from './batch-finish';
import { parseBatchLine, type BatchRequest } from './batch-lines';
import { projectedEnd, queuedTarget } from './batch-pace';
import { lineOfError, lineOfJob, lineOfUnrun } from './batch-results';

/** Requests fed per batch per tick: bounds the input lines (inline images) a runner holds at once. */
const FEED_PER_TICK = 64;
/** Submissions of one batch running at once (each validates an image, then writes to Redis). */
const SUBMIT_CONCURRENCY = 8;
/** Lines read per pass when a batch ends with requests never fed. */
const SKIP_CHUNK = 500;
/** Wait before a request refused for a passing reason (a limit, Redis away) is fed again, when the refusal names none. */
const RETRY_MS = 1_000;

/** Whether a refusal passes by itself (a limit, an overload, Redis away): the request waits and is fed again. */
function passing(e: unknown): boolean {
  if (e instanceof LimitExceeded || isConnectionError(e)) return true;
  return isAppError(e) && (e.code === 'rate_limited' || e.code === 'overloaded' || isRetryable(e.code));
}

function retryAfterMs(e: unknown): number {
  return e instanceof LimitExceeded && e.retryAfterMs > 0 ? e.retryAfterMs : RETRY_MS;
}

/**
 * Runs an in-progress batch a tick at a time: records the requests whose jobs
 * ended, feeds the next ones to the queue at the `batch` class (its tenant's
 * fair share decides when they run), flushes result lines to storage, and ends
 * the batch when every request has its line, or when its window or a cancel
 * ends it first. Everything it knows is in Redis, so any gateway can take over.
 */
export class BatchFeeder {
  /** Token reservations of the jobs this gateway fed: a recorded job gives back what it did not generate. */
  private readonly reservations = new Map<string, JobReservation>();

  constructor(private readonly ctx: BatchContext) {}

  async tick(b: BatchRecord, stillMine: () => boolean): Promise<void> {
    const now = Date.now();
    const stopping = b.status === 'cancelling' ? 'cancelled' : now >= b.expiresAt ? 'expired' : null;
    const { open, queued } = await this.collect(b, await this.ctx.store.inflight(b.id), now, stopping);
    if (!stillMine()) return;
    if (stopping) return this.stop(b, open, stopping);
    const waiting = open.filter((f) => f.state === 'waiting' && f.at <= now).slice(0, FEED_PER_TICK);
    const n = Math.max(0, Math.min(this.target(b, now) - queued - waiting.length, this.ctx.cfg.BATCH_MAX_IN_FLIGHT - open.length, b.total - b.next, FEED_PER_TICK - waiting.length));
    if (waiting.length > 0 || n > 0) await this.feed(b, waiting, n);
    if ((await this.ctx.store.resultCount(b.id)) >= this.ctx.cfg.BATCH_SEGMENT_LINES) await flush(this.ctx, b.id);
    const projected = projectedEnd(b.total, b.completed + b.failed, b.times.in_progress_at ?? now, now);
    if (projected !== null) await this.ctx.store.setProjection(b.id, projected);
    if (b.next === b.total && open.length === 0 && waiting.length === 0) {
      if (await this.ctx.store.transition(b.id, ['in_progress'], 'finalizing', Date.now())) {
        const fin = await this.ctx.store.get(b.id);
        if (fin) await this.finalize(fin);
      }
    }
  }

  /** Ends a finalizing batch: output files, `completed`, and its announcement. */
  async finalize(b: BatchRecord): Promise<void> {
    await close(this.ctx, b, ['finalizing'], 'completed');
    const done = await this.ctx.store.get(b.id);
    if (done) await announce(this.ctx, done);
  }

  private target(b: BatchRecord, now: number): number {
    const c = this.ctx.cfg;
    return queuedTarget(b.total - b.completed - b.failed, b.expiresAt - now, { minQueued: c.BATCH_MIN_QUEUED, lookaheadS: c.BATCH_FEED_LOOKAHEAD_S, maxInFlight: c.BATCH_MAX_IN_FLIGHT });
  }

  /**
   * Reads the jobs of the requests in flight; records those that ended. A claimed request whose job never
   * appeared (its runner died between the two) waits to be fed again. `stopping`: jobs cancelled by the batch's
   * own end get its error line instead of a plain cancellation.
   */
  private async collect(b: BatchRecord, inflight: InFlight[], now: number, stopping: 'expired' | 'cancelled' | null): Promise<{ open: InFlight[]; queued: number }> {
    const open: InFlight[] = [];
    let queued = 0;
    const submitted = inflight.filter((f) => f.state === 'submitted');
    const records = await Promise.all(submitted.map((f) => this.ctx.jobs.get(requestJobId(b.id, f.index))));
    for (const [i, f] of submitted.entries()) {
      const job = records[i] ?? null;
      if (!job) {
        if (now - f.at > this.ctx.cfg.BATCH_RESUBMIT_AFTER_MS) await this.ctx.store.markWaiting(b.id, f.index, now);
        open.push(f);
      } else if (isTerminal(job.status)) {
        const line = stopping && job.status === 'cancelled' ? lineOfUnrun(b.id, f.index, f.customId, stopping) : lineOfJob(b.id, f.index, f.customId, job);
        if (await this.record(b.id, f.index, line.kind, line.line, line.promptTokens, line.completionTokens)) this.settle(job.id, line.completionTokens);
      } else {
        if (job.status === 'queued') queued += 1;
        open.push(f);
      }
    }
    return { open: [...open, ...inflight.filter((f) => f.state === 'waiting')], queued };
  }

  /** Records a request's line once (see `BatchStore.record`), counting it in the metrics when this call did. */
  private async record(id: string, index: number, kind: 'o' | 'e', line: string, promptTokens: number, completionTokens: number): Promise<boolean> {
    const recorded = await this.ctx.store.record(id, index, kind, line, promptTokens, completionTokens);
    if (recorded) this.ctx.metrics.batchRequest(kind === 'o' ? 'completed' : 'failed');
    return recorded;
  }

  private settle(jobId: string, completionTokens: number): void {
    const r = this.reservations.get(jobId);
    if (!r) return;
    this.reservations.delete(jobId);
    this.ctx.inference.refund(r, completionTokens);
  }

  /** Feeds `waiting` requests again and claims `n` new ones from the cursor. */
  private async feed(b: BatchRecord, waiting: InFlight[], n: number): Promise<void> {
    const file = await this.ctx.files.get(b.inputFileId);
    const key = file?.parts[0]?.key;
    if (!key) return this.lose(b, waiting, n);
    const fresh = Array.from({ length: n }, (_, i) => b.next + i);
    const indices = [...waiting.map((f) => f.index), ...fresh].sort((x, y) => x - y);
    const lines = new Map<number, BatchRequest | AppError>();
    for await (const line of linesAt(this.ctx.blobs, key, await this.ctx.store.offsets(b.id), indices, maxLineBytes(this.ctx.cfg))) {
      try {
        lines.set(line.index, parseBatchLine(line.bytes, line.index, b.endpoint));
      } catch (e) {
        lines.set(line.index, new AppError('invalid_request', (e as Error).message));
      }
    }
    const customId = (i: number) => {
      const l = lines.get(i);
      return l && !(l instanceof AppError) ? l.customId : String(i);
    };
    if (n > 0 && (await this.ctx.store.claim(b.id, b.next, fresh.map(customId), Date.now())) !== 1) return;
    const principal = await batchPrincipal(this.ctx, b.tenant, b.keyId);
    const again = new Set(waiting.map((f) => f.index));
    // After a passing refusal the rest of this tick's requests wait too (the limit would refuse them as well).
    let waitUntil = 0;
    const submitOne = async (index: number): Promise<void> => {
      const jobId = requestJobId(b.id, index);
      if (waitUntil > 0) return this.ctx.store.markWaiting(b.id, index, waitUntil);
      if (again.has(index) && (await this.ctx.jobs.status(jobId)) !== null) return this.ctx.store.markSubmitted(b.id, index, Date.now());
      const parsed = lines.get(index);
      try {
        if (!parsed || parsed instanceof AppError) throw parsed ?? new AppError('internal', `Line ${index + 1} of the input file could not be read.`);
        const admitted = await this.ctx.inference.submit(principal, { ...parsed.request, workClass: 'batch' }, 'async', jobId);
        if (admitted.reservation) this.reservations.set(jobId, admitted.reservation);
        if (again.has(index)) await this.ctx.store.markSubmitted(b.id, index, Date.now());
      } catch (e) {
        if (passing(e)) {
          waitUntil = Math.max(waitUntil, Date.now() + retryAfterMs(e));
          await this.ctx.store.markWaiting(b.id, index, waitUntil);
          return;
        }
        const line = lineOfError(b.id, index, customId(index), e, null);
        await this.record(b.id, index, line.kind, line.line, 0, 0);
      }
    };
    await pool(indices, SUBMIT_CONCURRENCY, submitOne);
  }

  /** The input file is gone mid-batch: the requests not yet run cannot be, and end with an error line. */
  private async lose(b: BatchRecord, waiting: InFlight[], n: number): Promise<void> {
    const gone = new AppError('not_found', `The input file ${b.inputFileId} was deleted before this request ran.`, 'input_file_id');
    for (const f of waiting) {
      const l = lineOfError(b.id, f.index, f.customId, gone, null);
      await this.record(b.id, f.index, l.kind, l.line, 0, 0);
    }
    if (n > 0) {
      const ids = Array.from({ length: b.total - b.next }, (_, i) => lineOfError(b.id, b.next + i, String(b.next + i), gone, null).line);
      if (await this.ctx.store.skip(b.id, b.next, ids)) this.ctx.metrics.batchRequest('failed', ids.length);
    }
  }

  /** Ends a batch that expired or was cancelled: its jobs in flight are cancelled, everything not done gets its error line. */
  private async stop(b: BatchRecord, open: InFlight[], why: 'expired' | 'cancelled'): Promise<void> {
    const submitted = open.filter((f) => f.state === 'submitted');
    // Idempotent: a job already cancelled stays so. Cancelled records are final at once, and the next tick records them.
    await Promise.all(submitted.map((f) => this.ctx.inference.cancel(requestJobId(b.id, f.index)).catch(() => undefined)));
    // Past the window nothing waits any longer: requests still open end `batch_expired`, even if a job finishes later.
    const left = why === 'expired' ? open : open.filter((f) => f.state === 'waiting');
    for (const f of left) {
      const l = lineOfUnrun(b.id, f.index, f.customId, why);
      await this.record(b.id, f.index, l.kind, l.line, 0, 0);
    }
    if (why === 'cancelled' && submitted.length > 0) return;
    await this.skipRest(b, why);
    await close(this.ctx, b, [b.status], why);
    const done = await this.ctx.store.get(b.id);
    if (done) await announce(this.ctx, done);
  }

  /** Error lines for the requests never fed, read from the input for their custom ids. */
  private async skipRest(b: BatchRecord, why: 'expired' | 'cancelled'): Promise<void> {
    const file = await this.ctx.files.get(b.inputFileId);
    const key = file?.parts[0]?.key;
    const offsets = await this.ctx.store.offsets(b.id);
    let next = b.next;
    while (next < b.total) {
      const indices = Array.from({ length: Math.min(SKIP_CHUNK, b.total - next) }, (_, i) => next + i);
      const ids = new Map<number, string>();
      if (key) {
        for await (const line of linesAt(this.ctx.blobs, key, offsets, indices, maxLineBytes(this.ctx.cfg))) {
          try {
            ids.set(line.index, parseBatchLine(line.bytes, line.index, b.endpoint).customId);
          } catch {
            // Validated before it ran; a line that no longer parses keeps its index as its name.
          }
        }
      }
      const lines = indices.map((i) => lineOfUnrun(b.id, i, ids.get(i) ?? String(i), why).line);
      if (!(await this.ctx.store.skip(b.id, next, lines))) return;
      this.ctx.metrics.batchRequest('failed', lines.length);
      next += indices.length;
    }
  }
}

/** Runs `fn` over `items`, at most `n` at a time. */
async function pool<T>(items: T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let i = 0;
  const lane = async (): Promise<void> => {
    while (i < items.length) {
      const item = items[i++] as T;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, lane));
}
