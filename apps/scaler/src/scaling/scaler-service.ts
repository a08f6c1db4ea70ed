import {
  PRIOR_REPLICA_CAPACITY,
  PRIOR_STARTUP_SECONDS,
  STRATEGY_NAMES,
  decisionRecord,
  evaluate,
  measure,
  parseScalerMetadata,
  reportedArrivalRate,
  type DecisionStore,
  type Evaluation,
  type QueueObservation,
  type QueueObserver,
  type StrategyName,
} from '@fastvlm/autoscaling';
import type { ScalerMetrics } from '@fastvlm/observability';
import type { Logger } from 'pino';
import { ScalerStopping } from '../errors';
import { ActivityStreams, type ActivitySink } from './activity-streams';
import type { QueueEventHandlers, QueueEventsHub } from './queue-events-hub';
import { METRIC_TARGET, checkMetricName, metricNameFor, resolveScaledObject, type ScaledObjectRef } from './scaled-object';
import { SingleFlight } from './single-flight';
import { WatchSet, type Watch } from './watch-set';

/** A queue with open streams is re-read at most this often on its own (one sample's resolution). */
const REREAD_MS = 1_000;

export interface ScalerServiceOptions {
  observer: QueueObserver;
  decisions: DecisionStore;
  metrics: ScalerMetrics;
  log: Logger;
  /** The default model's pool queue: that of a ScaledObject whose metadata names none. */
  defaultQueue: string;
  /** The configured pools' queues: the scaler watches each on its own (`default`), for its metrics and the console. */
  ownQueues: readonly string[];
  /** The strategy of the scaler's own watches. */
  defaultStrategy: StrategyName;
  tickMs: number;
  /** Builds the queue event readers, wired to the handlers given. */
  queueEvents: (handlers: QueueEventHandlers) => QueueEventsHub;
  now?: () => number;
}

/** What GetMetricSpec answers. */
export interface MetricSpecAnswer {
  metricName: string;
  target: number;
}

/**
 * The scaler's use cases behind KEDA's four calls and its tick loop. Every
 * answer is computed from what Redis holds at the time of the call: the live
 * signals, the recorded history and the shared forecast, read fresh for the
 * call (or joined with a read already under way). Nothing decided earlier in
 * this process is served, so every replica answers alike.
 */
export class ScalerService {
  private readonly watches: WatchSet;
  private readonly flights = new SingleFlight<QueueObservation>();
  private readonly streams = new ActivityStreams();
  private readonly hub: QueueEventsHub;
  private readonly now: () => number;
  private readonly lastRead = new Map<string, number>();
  private readonly rereads = new Map<string, NodeJS.Timeout>();
  private knownQueues = new Set<string>();
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private failing = false;

  constructor(private readonly opts: ScalerServiceOptions) {
    this.now = opts.now ?? Date.now;
    this.watches = new WatchSet(opts.ownQueues.map((queue) => parseScalerMetadata({ strategy: opts.defaultStrategy, queue }, opts.defaultQueue)));
    this.hub = opts.queueEvents({ arrived: (q) => this.onArrival(q), departed: (q) => this.onDeparture(q) });
  }

  /** Opens the queue readers and starts ticking (the first tick at once). */
  async start(): Promise<void> {
    await this.syncQueues();
    this.loop();
  }

  /** Stops ticking, ends every stream and closes the queue readers. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    for (const t of this.rereads.values()) clearTimeout(t);
    this.rereads.clear();
    this.streams.endAll();
    await this.hub.close();
  }

  /** GetMetricSpec: one metric, target 1 (the metric is the desired count itself). */
  async metricSpec(ref: ScaledObjectRef): Promise<MetricSpecAnswer> {
    const { settings } = await this.watch(ref);
    return { metricName: metricNameFor(settings.queue), target: METRIC_TARGET };
  }

  /** IsActive and GetMetrics: the ScaledObject's decision on a fresh reading of its queue. */
  async decide(ref: ScaledObjectRef, metricName?: string): Promise<Evaluation> {
    const { settings } = await this.watch(ref, metricName);
    const obs = await this.read(settings.queue, false);
    return evaluate(settings, obs);
  }

  /**
   * StreamIsActive: `sink` gets the current value once `ready` settles, then every change. Throws at
   * once on bad metadata; `ready` rejects when the first reading fails (the stream should then end).
   */
  subscribe(ref: ScaledObjectRef, sink: ActivitySink): { ready: Promise<void>; unsubscribe: () => void } {
    if (this.stopped) throw new ScalerStopping();
    const { key, settings } = resolveScaledObject(ref, this.opts.defaultQueue);
    const w = this.touch(key, settings);
    w.streams += 1;
    const remove = this.streams.add(key, sink);
    let done = false;
    const unsubscribe = (): void => {
      if (done) return;
      done = true;
      remove();
      w.streams -= 1;
      w.lastCallMs = Math.max(w.lastCallMs, this.now());
    };
    // The first value is read once the queue's event reader is anchored: a job added after that reading
    // is an event the reader delivers, so no arrival can fall between the two.
    const ready = this.syncQueues()
      .then(() => this.hub.ready(settings.queue))
      .then(() => this.read(settings.queue, true))
      .then(() => undefined);
    return { ready, unsubscribe };
  }

  /** Validates the call (metadata, and the metric name GetMetrics asks for), then watches its ScaledObject. */
  private async watch(ref: ScaledObjectRef, metricName?: string): Promise<{ key: string; settings: Watch['settings'] }> {
    if (this.stopped) throw new ScalerStopping();
    const resolved = resolveScaledObject(ref, this.opts.defaultQueue);
    if (metricName !== undefined) checkMetricName(metricName, metricNameFor(resolved.settings.queue));
    this.touch(resolved.key, resolved.settings);
    await this.syncQueues();
    return resolved;
  }

  /** Starts or refreshes a ScaledObject's watch; one that moved to another queue leaves its old queue's series. */
  private touch(key: string, settings: Watch['settings']): Watch {
    const before = this.watches.get(key);
    if (before && before.settings.queue !== settings.queue) this.opts.metrics.forgetScaledObject(key);
    return this.watches.touch(key, settings, this.now());
  }

  private loop(): void {
    if (this.stopped) return;
    const started = this.now();
    void this.tick().finally(() => {
      if (this.stopped) return;
      this.timer = setTimeout(() => this.loop(), Math.max(0, started + this.opts.tickMs - this.now()));
    });
  }

  private async tick(): Promise<void> {
    const gone = this.watches.expire(this.now());
    for (const w of gone) this.opts.metrics.forgetScaledObject(w.key);
    if (gone.length > 0) await this.syncQueues().catch((err: unknown) => this.opts.log.warn({ err }, 'closing queue readers failed'));
    await Promise.all([...this.watches.byQueue().keys()].map((q) => this.read(q, false).then(() => undefined, () => undefined)));
  }

  /** A fresh observation of `queue`, shared with callers that ask meanwhile; publishes every watch's decision on it. */
  private read(queue: string, fresh: boolean): Promise<QueueObservation> {
    return this.flights.run(queue, fresh, async () => {
      const at = this.now();
      this.lastRead.set(queue, at);
      let obs: QueueObservation;
      try {
        obs = await this.opts.observer.observe(queue, at);
      } catch (e) {
        this.readFailed(queue, e);
        throw e;
      }
      if (this.failing) this.opts.log.info('signals readable again');
      this.failing = false;
      await this.publish(queue, obs, at);
      return obs;
    });
  }

  private async publish(queue: string, obs: QueueObservation, at: number): Promise<void> {
    if (this.stopped) return;
    const m = measure(obs.history, obs.startupSeconds);
    const s = obs.sample;
    this.opts.metrics.queueSignals(queue, {
      queued: s.queued,
      active: s.active,
      ready: s.ready,
      loading: s.loading,
      arrivals_per_second: reportedArrivalRate(obs.history),
      replica_capacity: m.replicaCapacity ?? PRIOR_REPLICA_CAPACITY,
      startup_seconds: m.startupSeconds ?? PRIOR_STARTUP_SECONDS,
    });
    let graceHolds = false;
    const writes: Promise<unknown>[] = [];
    for (const w of this.watches.onQueue(queue)) {
      const ev = evaluate(w.settings, obs);
      const desired = {} as Record<StrategyName, number>;
      for (const name of STRATEGY_NAMES) desired[name] = ev.decisions[name].desired;
      this.opts.metrics.scaledObject({
        scaledObject: w.key,
        queue,
        desired,
        chosen: w.settings.strategy,
        panic: ev.decisions.adaptive.mode === 'panic',
        forecastRps: ev.decisions.predictive.forecastRps,
        active: ev.active,
      });
      this.streams.publish(w.key, ev.active);
      // Active on the grace period alone: the moment it runs out is a change a stream must see.
      if (ev.active && s.queued + s.active === 0 && this.streams.has(w.key)) graceHolds = true;
      writes.push(
        this.opts.decisions
          .write(decisionRecord(at, w.key, ev, s))
          .catch((err: unknown) => this.opts.log.debug({ err, queue }, 'decision record not written')),
      );
    }
    if (graceHolds) this.rereadSoon(queue);
    await Promise.all(writes);
  }

  private readFailed(queue: string, e: unknown): void {
    if (!this.failing) this.opts.log.warn({ err: e instanceof Error ? e.message : String(e), queue }, 'reading the signals failed; retrying each tick');
    this.failing = true;
  }

  /** An idle queue got a job: streams that show it inactive must learn at once, not at the next tick. */
  private onArrival(queue: string): void {
    if (this.stopped) return;
    const keys = this.watches.onQueue(queue).map((w) => w.key);
    if (this.streams.anyShowing(keys, false)) void this.read(queue, true).catch(() => undefined);
  }

  /** A job left: a stream that shows the queue active may see it go idle (after the grace period). */
  private onDeparture(queue: string): void {
    if (this.stopped) return;
    const keys = this.watches.onQueue(queue).map((w) => w.key);
    if (this.streams.anyShowing(keys, true)) this.rereadSoon(queue);
  }

  /** Reads the queue again within REREAD_MS of its last reading (once, however often asked meanwhile). */
  private rereadSoon(queue: string): void {
    if (this.stopped || this.rereads.has(queue)) return;
    const delay = Math.max(0, (this.lastRead.get(queue) ?? 0) + REREAD_MS - this.now());
    this.rereads.set(
      queue,
      setTimeout(() => {
        this.rereads.delete(queue);
        void this.read(queue, true).catch(() => undefined);
      }, delay),
    );
  }

  /** Opens readers for newly watched queues; closes those (and forgets the series) of queues no longer watched. */
  private async syncQueues(): Promise<void> {
    const queues = new Set(this.watches.byQueue().keys());
    for (const q of this.knownQueues) {
      if (!queues.has(q)) {
        this.opts.metrics.forgetQueue(q);
        this.lastRead.delete(q);
      }
    }
    this.knownQueues = queues;
    await this.hub.sync(queues);
  }
}
