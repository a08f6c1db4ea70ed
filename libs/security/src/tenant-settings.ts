import type { Redis } from 'ioredis';
import { z } from 'zod';
import { AppError } from '@fastvlm/contracts';
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
    const overrides = raw === null ? {} : (TenantOverridesSchema.safeParse(JSON.parse(raw)).data ?? {});
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
    const { overrides } = await this.get(tenant);
    const next: Record<string, unknown> = { ...overrides };
    for (const [k, v] of Object.entries(parsed.data)) {
      if (v === null) delete next[k];
      else if (v !== undefined) next[k] = v;
    }
    const checked = TenantOverridesSchema.parse(next);
    if (Object.keys(checked).length === 0) await this.redis.del(this.key(tenant));
    else await this.redis.set(this.key(tenant), JSON.stringify(checked));
    return { settings: { ...this.defaults, ...checked }, overrides: checked };
  }
}
