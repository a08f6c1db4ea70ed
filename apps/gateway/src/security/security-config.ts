import { z } from 'zod';
import { WORK_CLASSES, envBoolean } from '@fastvlm/contracts';
import { parseCidrList, type TenantSettings } from '@fastvlm/security';

const int = (min: number) => z.coerce.number().int().min(min);

/**
 * `TRUST_PROXY`: whether X-Forwarded-For decides the client address (IP
 * allowlists, audit). `false` (default): the socket's peer, headers ignored;
 * `true`: trust every hop (only behind a proxy that overwrites the header);
 * a number: trust that many hops; or a comma list of proxy addresses/CIDRs.
 */
function parseTrustProxy(v: string, ctx: z.RefinementCtx): boolean | number | string[] {
  const s = v.trim().toLowerCase();
  if (s === '' || s === 'false' || s === '0') return false;
  if (s === 'true') return true;
  if (/^\d+$/.test(s)) return Number(s);
  const list = v.split(',').map((x) => x.trim()).filter(Boolean);
  try {
    parseCidrList(list, 'TRUST_PROXY');
  } catch {
    ctx.addIssue({ code: 'custom', message: 'TRUST_PROXY must be false, true, a hop count, or a comma list of addresses/CIDRs' });
  }
  return list;
}

/** Security settings of the gateway; per-tenant values are defaults that the admin API can override per tenant. */
export const SecurityEnvSchema = z.object({
  /** Longest question in tokens (counted only for questions longer than this in bytes). */
  MAX_QUESTION_TOKENS: int(1).default(4_096),
  /** Largest image width or height. */
  MAX_IMAGE_SIDE: int(1).default(16_384),
  /** Most frames an animated GIF/WebP may have (the model sees the first). */
  MAX_IMAGE_FRAMES: int(1).default(1_000),
  /** Default requests per minute for one API key. */
  RATE_LIMIT_KEY_RPM: int(1).default(1_200),
  /** Default requests per minute for one tenant (all its keys). */
  RATE_LIMIT_TENANT_RPM: int(1).default(2_400),
  /** Default generated tokens per minute for one tenant (jobs reserve their max_tokens). */
  TENANT_TOKENS_PER_MIN: int(1).default(200_000),
  /** Default unfinished (queued or running) jobs per tenant. */
  TENANT_MAX_INFLIGHT_JOBS: int(1).default(64),
  /** Default jobs per tenant waiting for a worker. */
  TENANT_MAX_QUEUED_JOBS: int(1).default(64),
  /** Default most urgent class of work a tenant may use (`interactive`, `async` or `batch`). */
  TENANT_MAX_WORK_CLASS: z.enum(WORK_CLASSES).default('interactive'),
  /** Default weight of a tenant in a pool's fair queue. */
  TENANT_WEIGHT: z.coerce.number().min(0.01).max(1000).default(1),
  /** Default async and batch jobs a tenant may hold waiting in a pool's fair queue. */
  TENANT_MAX_BACKLOG_JOBS: int(1).default(100_000),
  /** Default for whether tenants may send http(s) image URLs. */
  TENANT_IMAGE_URLS: envBoolean.default(false),
  /**
   * Failed authentications per minute from one client address (all gateway pods together)
   * after which that address gets 429 until the minute is over, valid key or not. 0 = no limit.
   */
  AUTH_FAILURES_PER_IP_PER_MIN: int(0).default(60),
  /** Jobs waiting in the queue (all tenants) above which new work gets 503. */
  ADMISSION_MAX_BACKLOG: int(1).default(10_000),
  /** Whole image download, redirects included, in milliseconds. */
  IMAGE_URL_TIMEOUT_MS: int(100).default(10_000),
  /** Redirects followed when fetching an image URL. */
  IMAGE_URL_MAX_REDIRECTS: int(0).max(10).default(3),
  /**
   * Internal ranges image URLs may reach anyway (comma-separated CIDRs), for an
   * internal image store. Empty by default: only public addresses are fetched.
   */
  IMAGE_URL_ALLOW_CIDRS: z.string().default(''),
  /** Audit log entries kept in Redis. */
  AUDIT_MAX_ENTRIES: int(100).default(100_000),
  /** Days audit log entries are kept in Redis. */
  AUDIT_RETENTION_DAYS: int(1).default(30),
  TRUST_PROXY: z.string().default('false').transform(parseTrustProxy),
});

export type SecurityConfig = z.infer<typeof SecurityEnvSchema>;

export function tenantDefaults(c: SecurityConfig): TenantSettings {
  return {
    requestsPerMinute: c.RATE_LIMIT_TENANT_RPM,
    keyRequestsPerMinute: c.RATE_LIMIT_KEY_RPM,
    tokensPerMinute: c.TENANT_TOKENS_PER_MIN,
    maxInFlightJobs: c.TENANT_MAX_INFLIGHT_JOBS,
    maxQueuedJobs: c.TENANT_MAX_QUEUED_JOBS,
    imageUrls: c.TENANT_IMAGE_URLS,
    ipAllowlist: [],
    maxWorkClass: c.TENANT_MAX_WORK_CLASS,
    weight: c.TENANT_WEIGHT,
    maxBacklogJobs: c.TENANT_MAX_BACKLOG_JOBS,
  };
}

/** `TRUST_PROXY` in the form Fastify's adapter takes (a hop count becomes "trust the first n hops"). */
export function fastifyTrustProxy(v: boolean | number | string[]): boolean | string[] | ((address: string, hop: number) => boolean) {
  return typeof v === 'number' ? (_address, hop) => hop < v : v;
}
