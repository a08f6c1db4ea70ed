import type { Redis } from 'ioredis';
import { z } from 'zod';
import { AppError, WORK_CLASSES } from '@fastvlm/contracts';
import { LuaScript } from '@fastvlm/jobs';
import { parseCidrList } from './ip-ranges';

const positive = z.number().int().min(1).max(1_000_000_000);

/**
 * Per-tenant limits and switches. Tenants without overrides get the
 * deployment's defaults (from the gateway's configuration), so changing a
 * default applies to every tenant that did not set its own value.
 */
export const TenantSettingsSchema = z.strictObject({
  /** Requests per minute across all of the tenant's keys. */
  requestsPerMinute: positive,
  /** Requests per minute for any one key of the tenant. */
  keyRequestsPerMinute: positive,
  /** Generated tokens per minute (each job reserves its `max_tokens` when admitted). */
  tokensPerMinute: positive,
  /** Unfinished jobs (queued or running) the tenant may have at once. */
  maxInFlightJobs: positive,
  /** Jobs of the tenant that may wait for a worker at once. */
  maxQueuedJobs: positive,
  /** Whether `image_url` may be an http(s) URL that the gateway fetches. */
  imageUrls: z.boolean(),
  /** Client addresses (CIDR or single IPs) the tenant's keys may be used from; empty = anywhere. */
  ipAllowlist: z.array(z.string().max(64)).max(256),
  /** The most urgent class of work the tenant's keys may use: a tenant capped at `async` has its chat completions run as async work. */
  maxWorkClass: z.enum(WORK_CLASSES),
  /** The tenant's share of a pool's lower-class work against other tenants' (weighted fair queueing): 2 gets twice what 1 gets. */
  weight: z.number().min(0.01).max(1000),
  /** Async and batch jobs the tenant may hold waiting in a pool's fair queue. */
  maxBacklogJobs: positive,
});
export type TenantSettings = z.infer<typeof TenantSettingsSchema>;

/** Stored overrides: any subset of the settings. */
export const TenantOverridesSchema = TenantSettingsSchema.partial();
export type TenantOverrides = z.infer<typeof TenantOverridesSchema>;

/** A change request: values set a field, `null` removes the override. */
export const TenantPatchSchema = z.strictObject(
  Object.fromEntries(Object.entries(TenantSettingsSchema.shape).map(([k, v]) => [k, v.nullable().optional()])) as {
    [K in keyof TenantSettings]: z.ZodOptional<z.ZodNullable<(typeof TenantSettingsSchema.shape)[K]>>;
  },
);
export type TenantPatch = z.infer<typeof TenantPatchSchema>;

export const TENANT_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export function assertTenant(tenant: string, field = 'tenant'): void {
  if (!TENANT_PATTERN.test(tenant)) {
    throw new AppError('invalid_request', 'Tenant names are 1 to 64 characters of A-Z, a-z, 0-9, "_", "." and "-", starting with a letter or digit.', field);
  }
}

/** Overrides merged over defaults; unreadable stored data falls back to the defaults (never to "no limits"). */
export function effectiveSettings(defaults: TenantSettings, storedJson: string | null): TenantSettings {
  if (storedJson === null) return defaults;
  let parsed: unknown;
  try {
    parsed = JSON.parse(storedJson);
  } catch {
    return defaults;
  }
  const o = TenantOverridesSchema.safeParse(parsed);
  return o.success ? { ...defaults, ...o.data } : defaults;
}

/**
 * Compare-and-set of a tenant's overrides: writes ARGV[2] (deletes the key
 * when empty) only if the key still holds ARGV[1] ('' = absent).
 * KEYS: tenant key. Reply: 1 written, 0 changed meanwhile.
 */
const COMPARE_AND_SET = new LuaScript(`
if (redis.call('GET', KEYS[1]) or '') ~= ARGV[1] then return 0 end
if ARGV[2] == '' then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], ARGV[2]) end
return 1
`);

/** Tries of a patch while other writers keep changing the same tenant. */
const PATCH_ATTEMPTS = 20;

/** Tenant overrides in Redis: one JSON string per tenant. */
export class TenantSettingsStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly defaults: TenantSettings,
  ) {}

  key(tenant: string): string {
    return `${this.prefix}:tenant:${tenant}`;
  }

  get defaultSettings(): TenantSettings {
    return this.defaults;
  }

  async get(tenant: string): Promise<{ settings: TenantSettings; overrides: TenantOverrides }> {
    assertTenant(tenant);
    const raw = await this.redis.get(this.key(tenant));
    const settings = effectiveSettings(this.defaults, raw);
    const overrides = storedOverrides(raw);
    return { settings, overrides };
  }

  /** Applies a patch (`null` clears a field) and returns the new effective settings. */
  async patch(tenant: string, patch: unknown): Promise<{ settings: TenantSettings; overrides: TenantOverrides }> {
    assertTenant(tenant);
    const parsed = TenantPatchSchema.safeParse(patch);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const param = issue?.path.join('.') ?? '';
      throw new AppError('invalid_request', `Invalid tenant settings: ${param ? `${param}: ` : ''}${issue?.message ?? 'malformed'}`, param || undefined);
    }
    if (parsed.data.ipAllowlist) parseCidrList(parsed.data.ipAllowlist, 'ipAllowlist');
    // Read, merge, write only if unchanged meanwhile: admins patching different fields at once all land.
    for (let attempt = 0; attempt < PATCH_ATTEMPTS; attempt++) {
      const raw = await this.redis.get(this.key(tenant));
      const next: Record<string, unknown> = { ...storedOverrides(raw) };
      for (const [k, v] of Object.entries(parsed.data)) {
        if (v === null) delete next[k];
        else if (v !== undefined) next[k] = v;
      }
      const checked = TenantOverridesSchema.parse(next);
      const json = Object.keys(checked).length === 0 ? '' : JSON.stringify(checked);
      if ((await COMPARE_AND_SET.run(this.redis, [this.key(tenant)], [raw ?? '', json])) === 1) {
        return { settings: { ...this.defaults, ...checked }, overrides: checked };
      }
    }
    throw new AppError('service_unavailable', `The settings of tenant ${tenant} kept changing while this change was applied; retry it.`);
  }
}

/** The stored overrides; unreadable data counts as none (as effectiveSettings reads it). */
function storedOverrides(raw: string | null): TenantOverrides {
  if (raw === null) return {};
  try {
    return TenantOverridesSchema.safeParse(JSON.parse(raw)).data ?? {};
  } catch {
    return {};
  }
}
