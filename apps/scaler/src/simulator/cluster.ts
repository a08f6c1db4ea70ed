import { CompletionHeap } from './completion-heap';
import { RNG_STREAM, Rng } from './rng';

/** Gamma shape of service times: coefficient of variation 1/√4 = 0.5. */
export const SERVICE_SHAPE = 4;
/** Each pod's start-up time is uniform in [1 − this, 1 + this] × the mean start-up time. */
export const STARTUP_SPREAD = 0.1;

export interface ClusterOptions {
  /** Arrival times of the jobs, epoch seconds, ascending. */
  arrivals: Float64Array;
  /** Epoch second the simulation starts at. */
  startS: number;
  /** Jobs per second one busy replica completes: service times have mean 1 / replicaRps. */
  replicaRps: number;
  /** Mean seconds from creating a pod until it takes jobs. */
  startupS: number;
  /** Pods ready at the start (the cluster starts warm). */
  initialReady: number;
  /** Seed of the service-time and start-up streams. */
  seed: number;
}

// Pod states. A draining pod was removed while busy: it finishes its job, then ends.
const STARTING = 0;
const IDLE = 1;
const BUSY = 2;
const DRAINING = 3;
const GONE = 4;

/**
 * The queue and the pods, as discrete events: arrivals, service completions
 * and pods becoming ready, in time order with sub-second precision. One FIFO
 * queue; each ready pod serves one job at a time. Jobs are numbered by
 * arrival, and FIFO service means the queue is just the jobs between
 * `started` and `arrived`.
 */
export class Cluster {
  /** Queue wait of each job (service start − arrival); filled as jobs start, the rest by `finish`. */
  readonly waits: Float64Array;
  /** Jobs arrived so far (the next job to arrive is number `arrived`). */
  arrived = 0;
  /** Jobs that a pod took so far. */
  started = 0;
  completions = 0;
  /** Ready pods that are not being removed. */
  ready = 0;

  private readonly arrivals: Float64Array;
  private readonly serviceRng: Rng;
  private readonly startupRng: Rng;
  private readonly serviceScale: number;
  private readonly startupS: number;
  private readonly state: number[] = [];
  private readonly readyAt: number[] = [];
  private readonly freeIds: number[] = [];
  /** Idle ready pods (a stack: which idle pod takes a job does not matter, they are alike). */
  private readonly idle: number[] = [];
  /** Pods starting, in creation order (scale-down removes the newest first). */
  private readonly starting: number[] = [];
  private nextReadyAt = Number.POSITIVE_INFINITY;
  private nextReadyPod = -1;
  private readonly heap = new CompletionHeap();
  /** Pods that exist (starting, ready or draining): what replica-minutes count. */
  private existing = 0;
  private podSeconds = 0;
  private areaSince: number;

  constructor(o: ClusterOptions) {
    this.arrivals = o.arrivals;
    this.waits = new Float64Array(o.arrivals.length);
    this.serviceRng = new Rng(o.seed, RNG_STREAM.service);
    this.startupRng = new Rng(o.seed, RNG_STREAM.startup);
    this.serviceScale = 1 / (SERVICE_SHAPE * o.replicaRps);
    this.startupS = o.startupS;
    this.areaSince = o.startS;
    for (let i = 0; i < o.initialReady; i++) {
      const id = this.newPod(IDLE);
      this.idle.push(id);
      this.ready++;
    }
    this.existing = o.initialReady;
  }

  /** Jobs waiting for a pod. */
  get queued(): number {
    return this.arrived - this.started;
  }

  /** Jobs in service (draining pods' included). */
  get active(): number {
    return this.heap.size;
  }

  /** Pods created and not yet ready. */
  get loading(): number {
    return this.starting.length;
  }

  /** The Deployment's replica count: starting and ready pods, not draining ones. */
  get replicas(): number {
    return this.starting.length + this.ready;
  }

  /** Pods that exist: starting, ready and draining. */
  get pods(): number {
    return this.existing;
  }

  /** Processes every event at or before `t` (epoch seconds), in time order. */
  advanceTo(t: number): void {
    const arrivals = this.arrivals;
    const n = arrivals.length;
    for (;;) {
      const a = this.arrived < n ? (arrivals[this.arrived] as number) : Number.POSITIVE_INFINITY;
      const c = this.heap.peekTime();
      const r = this.nextReadyAt;
      if (a <= c && a <= r) {
        if (a > t) return;
        this.arrived++;
        const pod = this.idle.pop();
        if (pod !== undefined) this.startJob(pod, a);
      } else if (c <= r) {
        if (c > t) return;
        this.complete(c);
      } else {
        if (r > t) return;
        this.becomeReady(r);
      }
    }
  }

  /**
   * Sets the Deployment's replica count at `now` (after `advanceTo(now)`).
   * Up: new pods, each ready after uniform [0.9, 1.1] × the start-up time.
   * Down: starting pods go first (newest first), then idle ready pods, then
   * busy ones, which take no new job and end when their job is done.
   */
  scaleTo(target: number, now: number): void {
    let current = this.replicas;
    if (target > current) {
      this.accrue(now);
      for (; current < target; current++) {
        const id = this.newPod(STARTING);
        this.readyAt[id] = now + this.startupS * this.startupRng.uniform(1 - STARTUP_SPREAD, 1 + STARTUP_SPREAD);
        this.starting.push(id);
        this.existing++;
      }
      this.findNextReady();
      return;
    }
    if (target >= current) return;
    this.accrue(now);
    for (; current > target && this.starting.length > 0; current--) this.endPod(this.starting.pop() as number);
    this.findNextReady();
    for (; current > target && this.idle.length > 0; current--) {
      this.endPod(this.idle.pop() as number);
      this.ready--;
    }
    for (let id = 0; current > target && id < this.state.length; id++) {
      if (this.state[id] !== BUSY) continue;
      this.state[id] = DRAINING;
      this.ready--;
      current--;
    }
  }

  /** Pod-seconds of every pod that existed from the start until `now`. */
  podSecondsUntil(now: number): number {
    return this.podSeconds + this.existing * (now - this.areaSince);
  }

  /** Ends the run at `endS`: jobs still waiting count with their wait so far. */
  finish(endS: number): void {
    for (let j = this.started; j < this.arrivals.length; j++) this.waits[j] = Math.max(0, endS - (this.arrivals[j] as number));
  }

  private startJob(pod: number, now: number): void {
    const job = this.started++;
    this.waits[job] = now - (this.arrivals[job] as number);
    this.state[pod] = BUSY;
    this.heap.push(now + this.serviceRng.gamma(SERVICE_SHAPE, this.serviceScale), pod);
  }

  private complete(now: number): void {
    const pod = this.heap.peekPod();
    this.heap.pop();
    this.completions++;
    if (this.state[pod] === DRAINING) {
      this.accrue(now);
      this.endPod(pod);
    } else if (this.started < this.arrived) this.startJob(pod, now);
    else {
      this.state[pod] = IDLE;
      this.idle.push(pod);
    }
  }

  private becomeReady(now: number): void {
    const pod = this.nextReadyPod;
    this.starting.splice(this.starting.indexOf(pod), 1);
    this.findNextReady();
    this.ready++;
    if (this.started < this.arrived) this.startJob(pod, now);
    else {
      this.state[pod] = IDLE;
      this.idle.push(pod);
    }
  }

  private findNextReady(): void {
    this.nextReadyAt = Number.POSITIVE_INFINITY;
    this.nextReadyPod = -1;
    for (const id of this.starting) {
      const at = this.readyAt[id] as number;
      if (at < this.nextReadyAt) {
        this.nextReadyAt = at;
        this.nextReadyPod = id;
      }
    }
  }

  private newPod(state: number): number {
    const id = this.freeIds.pop() ?? this.state.length;
    this.state[id] = state;
    this.readyAt[id] = Number.NaN;
    return id;
  }

  /** Removes a pod at the time last passed to `accrue`. */
  private endPod(id: number): void {
    this.state[id] = GONE;
    this.freeIds.push(id);
    this.existing--;
  }

  /** Adds the pod-seconds since the last change of the pod count. */
  private accrue(now: number): void {
    this.podSeconds += this.existing * (now - this.areaSince);
    this.areaSince = now;
  }
}
