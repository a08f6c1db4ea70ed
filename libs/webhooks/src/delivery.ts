import { DelayedError, UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { RedisKeys } from '@fastvlm/contracts';
import { postToUrl, type PostOutcome, type Resolver } from '@fastvlm/security';
import type { EndpointCircuit } from './endpoint-circuit';
import { isActive } from './endpoint-store';
import type { DeliveryLog, DeliveryLogEntry } from './delivery-log';
import { retryDelayMs, type RetryPolicy } from './retry-policy';
import { signatureHeaders } from './signing';
import { DELIVERY_JOB, DeliveryJobDataSchema, WEBHOOK_QUEUE, type DeliveryJobData } from './webhook-queue';

/** What the delivery worker logs through (pino's Logger fits). */
export interface WebhookLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface DeliveryOptions {
  /** Deliveries in flight at once in this process. */
  concurrency: number;
  /** One attempt, connection and response headers included, in ms. */
  timeoutMs: number;
  retry: RetryPolicy;
  /** Addresses a delivery may connect to (see `webhookAddressPolicy`). */
  isAllowedAddress: (ip: string) => boolean;
  resolve?: Resolver;
  userAgent?: string;
  now?: () => number;
  /** Told each attempt's status as it is logged (the gateway counts them in its metrics). */
  onAttempt?: (status: DeliveryLogEntry['status']) => void;
}

/** While another attempt probes the endpoint, the others look again this often (a successful probe lets them all go). */
const PROBE_WAIT_MS = 1_000;
/** Times a delivery may be lost with its gateway before BullMQ fails it (its default is 1). */
const MAX_STALLED = 5;
/** A closing worker waits this much longer than one attempt may take before it is forced. */
const CLOSE_SLACK_MS = 2_000;
/** Milliseconds between BullMQ's retries of a failed fetch of the next job (its default, 15 s, is long after a Redis restart). */
const RUN_RETRY_DELAY_MS = 1_000;

/**
 * The consumer of the `webhooks` queue: signs and POSTs each delivery,
 * records the attempt in the endpoint's circuit and delivery log, and leaves
 * retries to BullMQ (custom backoff, see `retryDelayMs`). At least once: a
 * gateway that dies mid-attempt leaves a stalled job that another one sends
 * again, with the same `webhook-id` for the receiver to de-duplicate.
 */
export class WebhookDelivery {
  private worker: Worker<DeliveryJobData> | null = null;
  private readonly now: () => number;

  constructor(
    /** A connection that waits for Redis (`maxRetriesPerRequest: null`), as BullMQ workers need. */
    private readonly connection: Redis,
    private readonly keys: RedisKeys,
    private readonly circuit: EndpointCircuit,
    private readonly deliveries: DeliveryLog,
    private readonly opts: DeliveryOptions,
    private readonly log: WebhookLogger,
  ) {
    this.now = opts.now ?? Date.now;
  }

  start(): void {
    if (this.worker) return;
    const retry = this.opts.retry;
    this.worker = new Worker<DeliveryJobData>(WEBHOOK_QUEUE, (job, token) => this.process(job, token), {
      connection: this.connection,
      prefix: this.keys.bull(),
      concurrency: this.opts.concurrency,
      runRetryDelay: RUN_RETRY_DELAY_MS,
      // A gateway killed mid-attempt stalls its jobs; a few such losses must not fail a delivery for good.
      maxStalledCount: MAX_STALLED,
      settings: { backoffStrategy: (attemptsMade: number) => retryDelayMs(attemptsMade, retry) },
    });
    this.worker.on('error', (err) => this.log.warn({ err: err.message }, 'webhook queue error'));
    this.worker.on('failed', (job, err) => {
      if (!job || err instanceof DelayedError || err.name === 'DelayedError') return;
      if (job.attemptsMade >= (job.opts.attempts ?? 1) || err instanceof UnrecoverableError) {
        this.log.warn({ endpointId: job.data.endpointId, eventId: job.data.eventId, attempts: job.attemptsMade, err: err.message }, 'webhook delivery given up');
      }
    });
  }

  /**
   * Stops taking deliveries and waits for those in flight (each bounded by the attempt timeout).
   * Bounded itself: with Redis away BullMQ's close can wait for ever, and a gateway must still stop;
   * a delivery cut off then is sent again by another gateway (stalled job).
   */
  async close(): Promise<void> {
    const w = this.worker;
    this.worker = null;
    if (!w) return;
    const graceful = w.close().then(
      () => true,
      () => true,
    );
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<false>((r) => {
      timer = setTimeout(() => r(false), this.opts.timeoutMs + CLOSE_SLACK_MS);
    });
    const closed = await Promise.race([graceful, timedOut]);
    clearTimeout(timer);
    if (!closed) {
      this.log.warn({ waitedMs: this.opts.timeoutMs + CLOSE_SLACK_MS }, 'webhook worker did not close in time; forcing it');
      await w.close(true).catch(() => undefined);
    }
  }

  private async process(job: Job<DeliveryJobData>, token: string | undefined): Promise<'delivered'> {
    if (job.name !== DELIVERY_JOB) throw new UnrecoverableError(`unknown webhook job name "${job.name}"`);
    const parsed = DeliveryJobDataSchema.safeParse(job.data);
    if (!parsed.success) throw new UnrecoverableError(`invalid webhook job data: ${parsed.error.message}`);
    const d = parsed.data;
    const started = this.now();
    const entry = (status: DeliveryLogEntry['status'], extra: Partial<DeliveryLogEntry> = {}): DeliveryLogEntry => ({
      event_id: d.eventId,
      type: d.type,
      attempt: job.attemptsMade + 1,
      status,
      http_status: null,
      error: null,
      duration_ms: 0,
      at: Math.floor(started / 1000),
      ...extra,
    });
    const admission = await this.circuit.admit(d.endpointId, started);
    switch (admission.kind) {
      case 'gone':
        this.log.info({ endpointId: d.endpointId, eventId: d.eventId }, 'webhook delivery dropped: the endpoint was deleted');
        throw new UnrecoverableError('the endpoint was deleted');
      case 'disabled':
        await this.record(d.endpointId, entry('refused', { error: 'the endpoint is disabled' }));
        throw new UnrecoverableError('the endpoint is disabled');
      case 'open':
        // Waiting for the circuit spends no attempt: the schedule resumes where it was when it closes.
        await this.record(d.endpointId, entry('circuit_open', { error: `circuit open until ${new Date(admission.until).toISOString()}` }));
        await job.moveToDelayed(admission.until, token);
        throw new DelayedError();
      case 'probing':
        // Not logged: a wait of a second or so, not a refusal; the probe's own entry tells the story.
        await job.moveToDelayed(Math.min(admission.until, started + PROBE_WAIT_MS), token);
        throw new DelayedError();
      case 'send':
        break;
    }
    const secrets = admission.secrets.filter((s) => isActive(s, started)).map((s) => s.value);
    const headers = {
      'content-type': 'application/json',
      'user-agent': this.opts.userAgent ?? 'fastvlm-webhooks/1',
      ...signatureHeaders(d.eventId, Math.floor(started / 1000), d.body, secrets),
    };
    const outcome = await postToUrl(admission.url, d.body, headers, {
      timeoutMs: this.opts.timeoutMs,
      isAllowedAddress: this.opts.isAllowedAddress,
      ...(this.opts.resolve ? { resolve: this.opts.resolve } : {}),
    });
    const ended = this.now();
    const ok = outcome.kind === 'answered' && outcome.status >= 200 && outcome.status < 300;
    const openedMs = await this.circuit.record(d.endpointId, ok, admission.probe, ended).catch((e: unknown) => {
      this.log.warn({ endpointId: d.endpointId, err: e instanceof Error ? e.message : String(e) }, 'could not record a webhook attempt in the circuit');
      return 0;
    });
    if (openedMs > 0) this.log.warn({ endpointId: d.endpointId, openMs: openedMs }, 'webhook endpoint circuit opened');
    const error = ok ? null : describe(outcome);
    await this.record(
      d.endpointId,
      entry(ok ? 'delivered' : 'failed', { http_status: outcome.kind === 'answered' ? outcome.status : null, error, duration_ms: ended - started }),
    );
    if (!ok) throw new Error(error ?? 'failed');
    return 'delivered';
  }

  /** Log writes never decide a delivery's fate: a delivered event whose entry was lost must not be sent again. */
  private async record(endpointId: string, e: DeliveryLogEntry): Promise<void> {
    this.opts.onAttempt?.(e.status);
    try {
      await this.deliveries.append(endpointId, e);
    } catch (err) {
      this.log.warn({ endpointId, entry: e, err: err instanceof Error ? err.message : String(err) }, 'could not write the webhook delivery log');
    }
  }
}

function describe(o: PostOutcome): string {
  return o.kind === 'answered' ? (o.status >= 300 && o.status < 400 ? `HTTP ${o.status} (redirects are not followed)` : `HTTP ${o.status}`) : `${o.reason}: ${o.message}`;
}
