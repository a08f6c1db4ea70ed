import { z } from 'zod';
import { AppError } from '@fastvlm/contracts';
import type { UsageGrouping, UsageRow } from '@fastvlm/jobs';
import { parseOr400 } from '../admin/admin-views';

const HOUR_S = 3_600;
/** Hours one request reads at most (one HGETALL each per tenant): 31 days, a month's invoice. */
export const MAX_RANGE_HOURS = 31 * 24;
/** Tenant-hours an all-tenants read may touch (one HGETALL each); past it the admin names a tenant or shortens the range. */
export const MAX_ALL_TENANT_KEYS = 20_000;
/** The range when none is given: the last day. */
const DEFAULT_RANGE_S = 24 * HOUR_S;

/** Unix seconds, a UTC date (`2025-01-31`), or an ISO-8601 date-time with its zone (`2025-01-31T12:00:00Z`, `…+02:00`). */
const ISO = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2}))?$/;
const Instant = z.string().transform((s, ctx) => {
  if (/^\d{1,11}$/.test(s)) return Number(s);
  const ms = ISO.test(s) ? Date.parse(s) : Number.NaN;
  if (Number.isNaN(ms)) {
    // A time without a zone is refused rather than read in some server's local time.
    ctx.addIssue({ code: 'custom', message: 'expected unix seconds or an ISO-8601 date or date-time with a zone, e.g. 2025-01-31T00:00:00Z' });
    return z.NEVER;
  }
  return Math.floor(ms / 1000);
});

const GROUPS = ['hour', 'day', 'model', 'class'] as const;
type Group = (typeof GROUPS)[number];
const GroupBy = z
  .string()
  .default('day')
  .transform((s, ctx) => {
    const parts = s.split(',').map((p) => p.trim());
    const known = parts.filter((p): p is Group => (GROUPS as readonly string[]).includes(p));
    if (known.length !== parts.length || new Set(known).size !== known.length) {
      ctx.addIssue({ code: 'custom', message: `expected a comma-separated list of ${GROUPS.join(', ')}, each at most once` });
      return z.NEVER;
    }
    if (known.includes('hour') && known.includes('day')) {
      ctx.addIssue({ code: 'custom', message: 'hour and day are both time buckets; pick one' });
      return z.NEVER;
    }
    return known;
  });

const range = {
  /** OpenAI's usage API names: `start_time`, `end_time` (unix seconds); `from`/`to` are accepted as well. */
  start_time: Instant.optional(),
  end_time: Instant.optional(),
  from: Instant.optional(),
  to: Instant.optional(),
  group_by: GroupBy,
};
const OwnUsageQuery = z.strictObject(range);
const AdminUsageQuery = z.strictObject({ ...range, tenant: z.string().min(1).max(128).optional() });

export interface UsageQuery {
  /** Absent: every tenant (admin only). */
  tenant?: string;
  /** Whole hours, epoch seconds: [fromHour, toHour). */
  fromHour: number;
  toHour: number;
  groupBy: Group[];
  grouping: UsageGrouping;
}

/**
 * Reads a usage query: the range (defaults to the last day), widened to whole
 * hours (the hours that overlap it), at most MAX_RANGE_HOURS long, and the
 * grouping. Every problem is a 400 naming its parameter.
 */
export function parseUsageQuery(raw: unknown, opts: { admin: boolean; now: number }): UsageQuery {
  if (!opts.admin && typeof raw === 'object' && raw !== null && 'tenant' in raw) {
    throw new AppError('invalid_request', 'This route reads the key\'s own tenant; other tenants\' usage is at /v1/admin/usage (admin scope).', 'tenant');
  }
  const q: z.infer<typeof AdminUsageQuery> = opts.admin ? parseOr400(AdminUsageQuery, raw, 'query') : parseOr400(OwnUsageQuery, raw, 'query');
  if (q.start_time !== undefined && q.from !== undefined) throw new AppError('invalid_request', 'Give start_time or from, not both.', 'from');
  if (q.end_time !== undefined && q.to !== undefined) throw new AppError('invalid_request', 'Give end_time or to, not both.', 'to');
  const [fromName, toName] = [q.from !== undefined ? 'from' : 'start_time', q.to !== undefined ? 'to' : 'end_time'];
  const to = q.end_time ?? q.to ?? Math.floor(opts.now / 1000);
  const from = q.start_time ?? q.from ?? to - DEFAULT_RANGE_S;
  if (to <= from) throw new AppError('invalid_request', `Invalid query: ${toName} must be after ${fromName}.`, toName);
  const fromHour = Math.floor(from / HOUR_S) * HOUR_S;
  const toHour = Math.ceil(to / HOUR_S) * HOUR_S;
  const hours = (toHour - fromHour) / HOUR_S;
  if (hours > MAX_RANGE_HOURS) {
    throw new AppError('invalid_request', `Invalid query: the range covers ${hours} hours; at most ${MAX_RANGE_HOURS} (31 days) are read at once.`, toName);
  }
  const groupBy = q.group_by;
  const bucket = groupBy.includes('hour') ? 'hour' : groupBy.includes('day') ? 'day' : null;
  return {
    ...(q.tenant !== undefined ? { tenant: q.tenant } : {}),
    fromHour,
    toHour,
    groupBy,
    grouping: { bucket, model: groupBy.includes('model'), workClass: groupBy.includes('class') },
  };
}

export interface UsageBucketView {
  object: 'usage.bucket';
  start_time: number;
  end_time: number;
  tenant: string;
  model?: string;
  class?: string;
  jobs: number;
  failed_jobs: number;
  cancelled_jobs: number;
  device_seconds: number;
  prompt_tokens: number;
  completion_tokens: number;
  images: number;
}

export interface UsageListView {
  object: 'list';
  start_time: number;
  end_time: number;
  group_by: string[];
  data: UsageBucketView[];
}

export function usageView(q: UsageQuery, rows: readonly UsageRow[]): UsageListView {
  return {
    object: 'list',
    start_time: q.fromHour,
    end_time: q.toHour,
    group_by: q.groupBy,
    data: rows.map((r) => ({
      object: 'usage.bucket',
      start_time: r.start,
      end_time: r.end,
      tenant: r.tenant,
      ...(r.model !== undefined ? { model: r.model } : {}),
      ...(r.workClass !== undefined ? { class: r.workClass } : {}),
      jobs: r.totals.jobs,
      failed_jobs: r.totals.failedJobs,
      cancelled_jobs: r.totals.cancelledJobs,
      // Stored in whole microseconds: the division is exact to the microsecond.
      device_seconds: r.totals.deviceUs / 1e6,
      prompt_tokens: r.totals.promptTokens,
      completion_tokens: r.totals.completionTokens,
      images: r.totals.images,
    })),
  };
}
