import type { Redis } from 'ioredis';
import { WORK_CLASSES, type RedisKeys, type WorkClass } from '@fastvlm/contracts';

const HOUR_S = 3_600;
const DAY_S = 86_400;
/** Hour keys read at once (each is one HGETALL or SMEMBERS): bounds the memory and the burst a long range costs. */
const READ_CHUNK = 256;

/** Days an hour of usage is kept from the hour's start, unless configured (`USAGE_RETENTION_DAYS`): a year and a month of invoices. */
export const DEFAULT_USAGE_RETENTION_DAYS = 400;

/** How a metered job ended. */
export type UsageOutcome = 'succeeded' | 'failed' | 'cancelled';

/** What one finished job cost, recorded once by the run that ended it. */
export interface UsageEntry {
  tenant: string;
  /** The model id the job asked for (what the pool serves). */
  model: string;
  workClass: WorkClass;
  outcome: UsageOutcome;
  /** Epoch milliseconds when the job ended: it is counted in that hour. */
  at: number;
  /** Device milliseconds charged to the job (its share of each model run it took part in). */
  deviceMs: number;
  promptTokens: number;
  completionTokens: number;
  /** Images the engine took in for the job (one per job that reached it). */
  images: number;
}

/** Sums of usage: what the hash fields hold, by metric. */
export interface UsageTotals {
  jobs: number;
  failedJobs: number;
  cancelledJobs: number;
  /** Device time in microseconds (integers add exactly in Redis; milliseconds are not whole). */
  deviceUs: number;
  promptTokens: number;
  completionTokens: number;
  images: number;
}

/** The hash fields' metric names, and which total each one adds to. */
const METRIC_FIELDS = {
  jobs: 'jobs',
  failed_jobs: 'failedJobs',
  cancelled_jobs: 'cancelledJobs',
  device_us: 'deviceUs',
  prompt_tokens: 'promptTokens',
  completion_tokens: 'completionTokens',
  images: 'images',
} as const satisfies Record<string, keyof UsageTotals>;
type MetricField = keyof typeof METRIC_FIELDS;

/** One tenant's usage of one model at one class in one hour: what a hash holds, regrouped. */
export interface UsageCell {
  tenant: string;
  /** Start of the hour, epoch seconds. */
  hour: number;
  model: string;
  workClass: WorkClass;
  totals: UsageTotals;
}

/** How rows are grouped: by a time bucket (or the whole range), and optionally by model and by class. Always by tenant. */
export interface UsageGrouping {
  bucket: 'hour' | 'day' | null;
  model: boolean;
  workClass: boolean;
}

export interface UsageRow {
  tenant: string;
  /** Epoch seconds: the bucket, cut to the range read. */
  start: number;
  end: number;
  model?: string;
  workClass?: WorkClass;
  totals: UsageTotals;
}

export const emptyTotals = (): UsageTotals => ({ jobs: 0, failedJobs: 0, cancelledJobs: 0, deviceUs: 0, promptTokens: 0, completionTokens: 0, images: 0 });

/** The start of the hour holding `epochMs`, in epoch seconds. */
export function hourOf(epochMs: number): number {
  return Math.floor(epochMs / 1000 / HOUR_S) * HOUR_S;
}

/** The hour starts (epoch seconds) in [fromHour, toHour). */
export function hoursIn(fromHour: number, toHour: number): number[] {
  const hours: number[] = [];
  for (let h = fromHour; h < toHour; h += HOUR_S) hours.push(h);
  return hours;
}

/**
 * Usage counters per tenant per hour, in the queue Redis (billing data: it
 * must not be evicted). A job's usage is one MULTI of HINCRBYs on its tenant's
 * hour hash, with EXPIREAT at the hour's start plus the retention, so a key's
 * life does not depend on when it was last written. The hash keys are
 * untagged: on a Cluster every write touches one slot, and tenants and hours
 * spread over the shards. A set per hour lists the tenants with usage in it,
 * so that an operator can read every tenant's usage without a SCAN.
 */
export class UsageStore {
  /** Tenants this process has put in the index of an hour (recent hours only): saves the index write for each job after the first. */
  private readonly indexed = new Map<number, Set<string>>();
  private readonly retentionS: number;

  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    /** `retentionDays`: how long the hours written are kept (reads do not use it). */
    opts: { retentionDays?: number } = {},
  ) {
    this.retentionS = (opts.retentionDays ?? DEFAULT_USAGE_RETENTION_DAYS) * DAY_S;
  }

  /**
   * Adds one job's usage to its tenant's hour. The index comes first: a crash
   * in between leaves a tenant listed with nothing for the hour, which reads
   * as no usage, never usage that the all-tenants view cannot find.
   */
  async record(e: UsageEntry): Promise<void> {
    const hour = hourOf(e.at);
    const expireAt = hour + this.retentionS;
    await this.index(e.tenant, hour, expireAt);
    const field = (metric: MetricField): string => `${e.model}|${e.workClass}|${metric}`;
    const add: [MetricField, number][] = [
      ['jobs', 1],
      ['failed_jobs', e.outcome === 'failed' ? 1 : 0],
      ['cancelled_jobs', e.outcome === 'cancelled' ? 1 : 0],
      ['device_us', Math.round(e.deviceMs * 1000)],
      ['prompt_tokens', e.promptTokens],
      ['completion_tokens', e.completionTokens],
      ['images', e.images],
    ];
    const key = this.keys.usage(e.tenant, hour);
    const tx = this.redis.multi();
    // Zeros are left out: a field appears once there is something to count.
    for (const [metric, n] of add) if (n !== 0) tx.hincrby(key, field(metric), n);
    tx.expireat(key, expireAt);
    settled(key, await tx.exec());
  }

  /**
   * The usage cells of `tenant` (or of every tenant listed for each hour) in
   * the hours [fromHour, toHour). `maxKeys` bounds the hashes read when no
   * tenant is named: past it, `TooMuchUsage` is thrown before any is read.
   */
  async read(q: { tenant?: string | undefined; fromHour: number; toHour: number; maxKeys?: number }): Promise<UsageCell[]> {
    const hours = hoursIn(q.fromHour, q.toHour);
    let targets: { tenant: string; hour: number }[];
    if (q.tenant !== undefined) {
      const tenant = q.tenant;
      targets = hours.map((hour) => ({ tenant, hour }));
    } else {
      const lists = await chunked(hours, (hour) => this.redis.smembers(this.keys.usageTenants(hour)));
      targets = hours.flatMap((hour, i) => (lists[i] ?? []).map((tenant) => ({ tenant, hour })));
      if (q.maxKeys !== undefined && targets.length > q.maxKeys) throw new TooMuchUsage(targets.length, q.maxKeys);
    }
    const hashes = await chunked(targets, (t) => this.redis.hgetall(this.keys.usage(t.tenant, t.hour)));
    return targets.flatMap((t, i) => cellsOf(t.tenant, t.hour, hashes[i] ?? {}));
  }

  private async index(tenant: string, hour: number, expireAt: number): Promise<void> {
    if (this.indexed.get(hour)?.has(tenant)) return;
    const key = this.keys.usageTenants(hour);
    settled(key, await this.redis.multi().sadd(key, tenant).expireat(key, expireAt).exec());
    // Only the hours a job can still end in are remembered (a job ends in the current hour, rarely the one before).
    for (const h of this.indexed.keys()) if (h < hour - HOUR_S) this.indexed.delete(h);
    let set = this.indexed.get(hour);
    if (!set) this.indexed.set(hour, (set = new Set()));
    set.add(tenant);
  }
}

/** An all-tenants read would touch more hashes than allowed. */
export class TooMuchUsage extends Error {
  constructor(
    readonly keys: number,
    readonly max: number,
  ) {
    super(`the range holds ${keys} tenant-hours of usage, more than ${max} read at once`);
    this.name = 'TooMuchUsage';
  }
}

/** A transaction's replies: an error inside it (ioredis resolves those) is thrown, as is a discarded one. */
function settled(key: string, replies: [Error | null, unknown][] | null): void {
  if (!replies) throw new Error(`the usage write of ${key} was discarded`);
  const failed = replies.find(([err]) => err !== null)?.[0];
  if (failed) throw failed;
}

async function chunked<T, R>(items: readonly T[], read: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += READ_CHUNK) out.push(...(await Promise.all(items.slice(i, i + READ_CHUNK).map(read))));
  return out;
}

const isClass = (s: string): s is WorkClass => (WORK_CLASSES as readonly string[]).includes(s);
const isMetric = (s: string): s is MetricField => Object.hasOwn(METRIC_FIELDS, s);

/** Parses an hour hash: `<model>|<class>|<metric>`; the model id may itself hold `|`, so it is read from the right. */
function cellsOf(tenant: string, hour: number, hash: Record<string, string>): UsageCell[] {
  const cells = new Map<string, UsageCell>();
  for (const [field, value] of Object.entries(hash)) {
    const metricAt = field.lastIndexOf('|');
    const classAt = field.lastIndexOf('|', metricAt - 1);
    if (classAt <= 0) continue;
    const model = field.slice(0, classAt);
    const workClass = field.slice(classAt + 1, metricAt);
    const metric = field.slice(metricAt + 1);
    // Fields of a later release are skipped, not misread.
    if (!isClass(workClass) || !isMetric(metric)) continue;
    const id = `${model}|${workClass}`;
    let cell = cells.get(id);
    if (!cell) cells.set(id, (cell = { tenant, hour, model, workClass, totals: emptyTotals() }));
    cell.totals[METRIC_FIELDS[metric]] += Number(value);
  }
  return [...cells.values()];
}

function addTotals(into: UsageTotals, t: UsageTotals): void {
  for (const k of Object.keys(into) as (keyof UsageTotals)[]) into[k] += t[k];
}

/**
 * Sums cells into rows: one per tenant and bucket (an hour, a UTC day, or the
 * whole range [fromHour, toHour)), split by model and class when asked.
 * Buckets are cut to the range; rows come ordered by start, tenant, model, class.
 */
export function groupUsage(cells: readonly UsageCell[], by: UsageGrouping, fromHour: number, toHour: number): UsageRow[] {
  const rows = new Map<string, UsageRow>();
  for (const c of cells) {
    const start = by.bucket === 'hour' ? c.hour : by.bucket === 'day' ? Math.max(fromHour, Math.floor(c.hour / DAY_S) * DAY_S) : fromHour;
    const end = by.bucket === 'hour' ? c.hour + HOUR_S : by.bucket === 'day' ? Math.min(toHour, Math.floor(c.hour / DAY_S) * DAY_S + DAY_S) : toHour;
    const id = JSON.stringify([start, c.tenant, by.model ? c.model : null, by.workClass ? c.workClass : null]);
    let row = rows.get(id);
    if (!row) {
      row = { tenant: c.tenant, start, end, ...(by.model ? { model: c.model } : {}), ...(by.workClass ? { workClass: c.workClass } : {}), totals: emptyTotals() };
      rows.set(id, row);
    }
    addTotals(row.totals, c.totals);
  }
  const order = (r: UsageRow): string[] => [r.tenant, r.model ?? '', r.workClass ?? ''];
  return [...rows.values()].sort((a, b) => a.start - b.start || compareLists(order(a), order(b)));
}

function compareLists(a: string[], b: string[]): number {
  for (let i = 0; i < a.length; i++) {
    const x = a[i] ?? '';
    const y = b[i] ?? '';
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}
