import type { Redis } from 'ioredis';
import type { RedisKeys } from '@fastvlm/contracts';
import type { MinuteCount, Sample } from '../types';
import { MINUTES_KEEP, SAMPLES_KEEP, type RecordedSample } from './layout';

/** A minute is rolled up this long after it ended, so that the sample of its last second is recorded by then. */
export const MINUTE_SETTLE_SECONDS = 2;
/** A minute boundary is read from the last sample before it, if that is at most this many seconds before it. */
export const MINUTE_ANCHOR_SECONDS = 5;

const FIELDS = ['t', 'arrivals', 'completions', 'queued', 'active', 'ready', 'loading', 'busyMs', 'busyDone', 'satMs', 'satDone'] as const;

/**
 * The per-second and per-minute history of a queue (the `samples` and `minutes`
 * streams of `layout.ts`). Entries carry explicit ids derived from their second
 * or minute, so every scaler replica may write each one: Redis takes the first
 * and refuses the others (XADD needs an id above the stream's top), and all
 * replicas then read the same history.
 */
export class SampleRecorder {
  /**
   * What this process has read of each queue's `samples` stream, up to the newest entry it saw. A
   * recorded entry never changes, and XADD only appends above the stream's top, so no entry can
   * appear later at or below that one: each tick reads only the seconds after it, not the whole
   * window again. This caches what Redis holds, not a decision: answers stay those of Redis.
   */
  private readonly read = new Map<string, { samples: RecordedSample[]; throughT: number }>();

  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
  ) {}

  /** Records the sample of its second; false when that second (or a later one) is already recorded. */
  async record(queue: string, s: RecordedSample): Promise<boolean> {
    const fields = FIELDS.flatMap((f) => [f, String(s[f])]);
    return added(this.redis.xadd(this.keys.autoscale(queue, 'samples'), 'MAXLEN', '~', SAMPLES_KEEP, `${s.t * 1000}-0`, ...fields));
  }

  /** Recorded samples of the seconds `fromT` to `toT` (inclusive), oldest first. */
  async history(queue: string, fromT: number, toT: number): Promise<RecordedSample[]> {
    if (toT < fromT) return [];
    const known = this.read.get(queue);
    // Reading on from what is known pays only while it covers the window's start; otherwise read it whole.
    const from = known && known.throughT >= fromT - 1 ? `(${known.throughT * 1000}-0` : String(fromT * 1000);
    const rows = await this.redis.xrange(this.keys.autoscale(queue, 'samples'), from, String(toT * 1000));
    const fresh = rows.map(([, kv]) => parseSample(kv));
    const all = known && known.throughT >= fromT - 1 ? known.samples.concat(fresh) : fresh;
    const kept = all.filter((x) => x.t >= fromT && x.t <= toT);
    const newest = kept.at(-1)?.t ?? known?.throughT ?? fromT - 1;
    this.read.set(queue, { samples: kept, throughT: Math.max(newest, fromT - 1) });
    return [...kept];
  }

  /** The last minute in the `minutes` stream, or null when it is empty. */
  async lastMinute(queue: string): Promise<number | null> {
    const rows = await this.redis.xrevrange(this.keys.autoscale(queue, 'minutes'), '+', '-', 'COUNT', 1);
    const id = rows[0]?.[0];
    return id === undefined ? null : Math.floor(Number(id.split('-')[0]) / 60_000);
  }

  /** Appends closed minutes (oldest first); returns how many this call added (another replica may have added the rest). */
  async appendMinutes(queue: string, minutes: readonly MinuteCount[]): Promise<number> {
    const key = this.keys.autoscale(queue, 'minutes');
    let n = 0;
    // One after the other: a refused minute must not stop the later ones, and order matters to XADD.
    for (const m of minutes) {
      if (await added(this.redis.xadd(key, 'MAXLEN', '~', MINUTES_KEEP, `${m.minute * 60_000}-0`, 'arrivals', String(m.arrivals)))) n++;
    }
    return n;
  }

  /** Minutes recorded after `minute` (all when null), oldest first. */
  async minutesAfter(queue: string, minute: number | null): Promise<MinuteCount[]> {
    const from = minute === null ? '-' : `(${minute * 60_000}-0`;
    const rows = await this.redis.xrange(this.keys.autoscale(queue, 'minutes'), from, '+');
    return rows.map(([id, kv]) => ({ minute: Math.floor(Number(id.split('-')[0]) / 60_000), arrivals: Number(fieldOf(kv, 'arrivals') ?? 0) }));
  }
}

/**
 * The minutes after `after` that have closed by `nowS` and whose arrivals the
 * history shows: the arrivals counter at the end of the minute minus at its
 * start, each read from the last sample at most MINUTE_ANCHOR_SECONDS before
 * the boundary. A minute without both readings (the scaler was away) is left
 * out: the forecast skips gaps rather than learn a zero.
 */
export function closedMinutes(history: readonly Sample[], after: number | null, nowS: number): MinuteCount[] {
  const first = history[0];
  if (!first) return [];
  const lastClosed = Math.floor((nowS - MINUTE_SETTLE_SECONDS) / 60) - 1;
  const out: MinuteCount[] = [];
  for (let m = Math.max(after === null ? -Infinity : after + 1, Math.floor(first.t / 60)); m <= lastClosed; m++) {
    const start = anchor(history, m * 60);
    const end = anchor(history, (m + 1) * 60);
    if (start && end) out.push({ minute: m, arrivals: Math.max(0, end.arrivals - start.arrivals) });
  }
  return out;
}

/** The last sample of the second before `boundary`, if it is recent enough to stand for the counter at the boundary. */
function anchor(history: readonly Sample[], boundary: number): Sample | null {
  let lo = 0;
  let hi = history.length - 1;
  let found: Sample | null = null;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const s = history[mid] as Sample;
    if (s.t <= boundary - 1) {
      found = s;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found && found.t >= boundary - MINUTE_ANCHOR_SECONDS ? found : null;
}

/** True when XADD added the entry; false when Redis refused its id (the entry or a later one exists). */
async function added(xadd: Promise<string | null>): Promise<boolean> {
  try {
    return (await xadd) !== null;
  } catch (e) {
    if (e instanceof Error && /equal or smaller than the target stream top item/i.test(e.message)) return false;
    throw e;
  }
}

function fieldOf(kv: string[], name: string): string | undefined {
  for (let i = 0; i + 1 < kv.length; i += 2) if (kv[i] === name) return kv[i + 1];
  return undefined;
}

function parseSample(kv: string[]): RecordedSample {
  const s = {} as RecordedSample;
  for (const f of FIELDS) {
    const n = Number(fieldOf(kv, f) ?? 0);
    s[f] = Number.isFinite(n) ? n : 0;
  }
  return s;
}
