/** What a worker adds to its queue's `completions` counter and `work` hash (see layout.ts). */
export interface WorkTotals {
  /** Jobs that ended, whatever their outcome. */
  completions: number;
  /** Milliseconds with at least one job running. */
  busyMs: number;
  /** Jobs that ended while busy (every job that ends: it was running). */
  busyDone: number;
  /** Milliseconds with every slot taken. */
  satMs: number;
  /** Jobs that ended while every slot was taken (judged just before the ending job left its slot). */
  satDone: number;
}

const ZERO: WorkTotals = { completions: 0, busyMs: 0, busyDone: 0, satMs: 0, satDone: 0 };

/**
 * A worker's job activity, in memory: how long it had work, how long it was
 * saturated, and how many jobs ended in each state. `busyDone / busyMs` and
 * `satDone / satMs` are the measured service rates the scaler derives a
 * replica's capacity from. Pure: time comes from `now`, so a scripted
 * sequence of starts and ends gives exact totals.
 */
export class WorkMeter {
  private active = 0;
  private last: number;
  private acc: WorkTotals = { ...ZERO };

  constructor(
    /** Jobs the worker runs at once (its BullMQ concurrency): all of them taken is saturation. */
    readonly slots: number,
    /**
     * Clock in milliseconds; default `performance.now()`, which never steps with the wall clock. Fractions
     * are carried until they make a whole millisecond.
     */
    private readonly now: () => number = () => performance.now(),
  ) {
    if (!Number.isInteger(slots) || slots < 1) throw new RangeError(`slots must be a positive integer, got ${slots}`);
    this.last = now();
  }

  /** Jobs running now. */
  get running(): number {
    return this.active;
  }

  /** A job took a slot. */
  started(): void {
    this.advance();
    this.active += 1;
  }

  /** A job left its slot (any outcome). */
  ended(): void {
    this.advance();
    // An end without a start is a caller's defect; it must not drive the count below zero.
    if (this.active === 0) return;
    this.acc.completions += 1;
    this.acc.busyDone += 1;
    if (this.active >= this.slots) this.acc.satDone += 1;
    this.active -= 1;
  }

  /**
   * Takes what accumulated since the last take, in whole milliseconds (a fraction stays for the next);
   * null when nothing changed (no job ended and no busy time passed).
   */
  take(): WorkTotals | null {
    this.advance();
    const busyMs = Math.floor(this.acc.busyMs);
    const satMs = Math.floor(this.acc.satMs);
    const out: WorkTotals = { completions: this.acc.completions, busyMs, busyDone: this.acc.busyDone, satMs, satDone: this.acc.satDone };
    if (out.completions === 0 && busyMs === 0 && satMs === 0) return null;
    this.acc = { ...ZERO, busyMs: this.acc.busyMs - busyMs, satMs: this.acc.satMs - satMs };
    return out;
  }

  /** Returns totals a write surely did not deliver, so that the next take carries them. */
  giveBack(t: WorkTotals): void {
    for (const k of Object.keys(ZERO) as (keyof WorkTotals)[]) this.acc[k] += t[k];
  }

  private advance(): void {
    const now = this.now();
    // A clock that steps back (wall time corrected) adds nothing rather than negative time.
    const dt = Math.max(0, now - this.last);
    this.last = now;
    if (this.active >= 1) this.acc.busyMs += dt;
    if (this.active >= this.slots) this.acc.satMs += dt;
  }
}
