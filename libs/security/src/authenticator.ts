import { AppError } from '@fastvlm/contracts';
import { isWellFormedApiKey, keyDigest } from './api-key-format';
import type { BootstrapKeys } from './api-keys';
import type { ApiKeyStore, KeyLookup } from './key-store';
import type { LimitState } from './limit-error';
import type { WindowLimit, WindowLimiter } from './request-limiter';
import type { Scope } from './scopes';
import { effectiveSettings, type TenantSettings } from './tenant-settings';

/** Who is calling: the tenant, which key (by its public id), what it may do, and the tenant's limits. */
export interface Principal {
  tenant: string;
  /** Public, non-secret key id (`key_…` or `boot_…`): safe in logs and the audit log. */
  keyId: string;
  scopes: readonly Scope[];
  settings: TenantSettings;
}

export type AuthFailureReason = 'missing' | 'malformed' | 'unknown_key' | 'revoked';

/** An authentication failure; `reason` goes to the audit log, the client sees one generic message per case. */
export class AuthError extends AppError {
  constructor(
    readonly reason: AuthFailureReason,
    message: string,
  ) {
    super('unauthorized', message);
  }
}

/** Longest credential looked at; anything longer is malformed, not hashed. */
const MAX_KEY_CHARS = 256;
/** Principals remembered per process (a principal is a few hundred bytes). */
const MAX_CACHED_PRINCIPALS = 10_000;
/** Times a request re-reads a key whose record or tenant changes under it before giving up on the fast path. */
const GUARD_ATTEMPTS = 3;

/** What a request must pass once its caller is known. */
export interface AdmitPlan {
  /**
   * Throws to refuse the caller (e.g. the tenant's network allowlist); runs before any limit is taken,
   * possibly twice per request (a refusal of a remembered principal is re-checked against Redis).
   */
  check: (p: Principal) => void;
  /** The request-rate limits this caller's request takes. */
  limits: (p: Principal) => WindowLimit[];
}

export interface AdmittedCaller {
  principal: Principal;
  limits: LimitState[];
}

export interface AuthenticatorOptions {
  /** Reads a tenant's stored settings JSON (bootstrap keys only: Redis keys get them with their record). */
  tenantSettingsJson: (tenant: string) => Promise<string | null>;
  defaults: TenantSettings;
  /** Milliseconds between `last_used_at` writes for one key from this process. Default 60 000. */
  touchIntervalMs?: number;
  now?: () => number;
  /** Receives failures of the background `last_used_at` write. */
  onTouchError?: (e: unknown) => void;
}

/**
 * Turns an `Authorization` header into a Principal: bootstrap keys from
 * memory, others by SHA-256 in Redis on every request, so a revocation
 * applies to the next request on every gateway pod. Malformed keys (wrong
 * prefix or checksum) are refused without touching Redis.
 */
export class Authenticator {
  private readonly touched = new Map<string, number>();
  private readonly principals = new Map<string, { principal: Principal; fingerprint: string }>();
  private readonly touchIntervalMs: number;
  private readonly now: () => number;

  constructor(
    private readonly store: ApiKeyStore,
    private readonly bootstrap: BootstrapKeys,
    private readonly opts: AuthenticatorOptions,
  ) {
    this.touchIntervalMs = opts.touchIntervalMs ?? 60_000;
    this.now = opts.now ?? Date.now;
  }

  async authenticate(header: string | undefined): Promise<Principal> {
    const { digest, key } = credential(header);
    const boot = this.bootstrap.find(digest);
    if (boot) return this.bootstrapPrincipal(boot);
    if (!isWellFormedApiKey(key)) throw new AuthError('unknown_key', 'Invalid API key.');
    const principal = this.principalOf(await this.store.lookup(digest));
    this.touch(digest);
    return principal;
  }

  /**
   * Authenticates and takes the request-rate limits in one Redis round trip
   * (two when the key is new to this process, or changed). The principal
   * built at a key's first use is kept in memory, and the limit script checks
   * in Redis, atomically with taking the limits, that the key record and its
   * tenant's settings are unchanged (`KEY_GUARD_LUA`): a revocation or a
   * settings change still applies to the very next request on every pod.
   */
  async admit(header: string | undefined, limiter: WindowLimiter, plan: AdmitPlan): Promise<AdmittedCaller> {
    const { digest, key } = credential(header);
    const boot = this.bootstrap.find(digest);
    if (boot) {
      const principal = await this.bootstrapPrincipal(boot);
      plan.check(principal);
      return { principal, limits: await limiter.consume(plan.limits(principal)) };
    }
    if (!isWellFormedApiKey(key)) throw new AuthError('unknown_key', 'Invalid API key.');
    for (let attempt = 0; attempt < GUARD_ATTEMPTS; attempt++) {
      let known = this.principals.get(digest);
      const remembered = known !== undefined;
      if (!known) {
        const found = await this.store.lookup(digest);
        known = { principal: this.principalOf(found), fingerprint: found?.fingerprint ?? '' };
        if (this.principals.size >= MAX_CACHED_PRINCIPALS) this.principals.clear();
        this.principals.set(digest, known);
      }
      try {
        plan.check(known.principal);
      } catch (e) {
        // Only a refusal based on what Redis holds now is final: the settings may have changed.
        if (!remembered) throw e;
        this.principals.delete(digest);
        continue;
      }
      const guard = { recordKey: this.store.recordKey(digest), tenantSettingsKey: this.store.tenantSettingsKey(known.principal.tenant), fingerprint: known.fingerprint };
      const limits = await limiter.consumeGuarded(guard, plan.limits(known.principal));
      if (limits) {
        this.touch(digest);
        return { principal: known.principal, limits };
      }
      // The key or its tenant changed since this process built the principal.
      this.principals.delete(digest);
    }
    // Changing on every read: settle for the uncached path (each step still reads Redis).
    const principal = await this.authenticate(header);
    plan.check(principal);
    return { principal, limits: await limiter.consume(plan.limits(principal)) };
  }

  private async bootstrapPrincipal(boot: { tenant: string; keyId: string; scopes: readonly Scope[] }): Promise<Principal> {
    const settings = effectiveSettings(this.opts.defaults, await this.opts.tenantSettingsJson(boot.tenant));
    return { tenant: boot.tenant, keyId: boot.keyId, scopes: boot.scopes, settings };
  }

  /** The principal of a looked-up key; AuthError for unknown and revoked keys. */
  private principalOf(found: KeyLookup | null): Principal {
    if (!found) throw new AuthError('unknown_key', 'Invalid API key.');
    // Same message as an unknown key: a caller holding a revoked key learns nothing new.
    if (found.record.revokedAt !== null) throw new AuthError('revoked', 'Invalid API key.');
    const { record } = found;
    return { tenant: record.tenant, keyId: record.id, scopes: record.scopes, settings: effectiveSettings(this.opts.defaults, found.tenantSettingsJson) };
  }

  /** `last_used_at` is a write; once a minute per key and process is precise enough for "is this key still used?". */
  private touch(digest: string): void {
    const now = this.now();
    const last = this.touched.get(digest);
    if (last !== undefined && now - last < this.touchIntervalMs) return;
    if (this.touched.size > 10_000) this.touched.clear();
    this.touched.set(digest, now);
    this.store.touch(digest, now).catch((e: unknown) => this.opts.onTouchError?.(e));
  }
}

/** The key's digest, from a well-formed `Authorization: Bearer <key>` header. */
function credential(header: string | undefined): { digest: string; key: string } {
  if (!header) throw new AuthError('missing', 'Missing API key: send "Authorization: Bearer <key>".');
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
  const key = m?.[1];
  if (!key || key.length > MAX_KEY_CHARS) throw new AuthError('malformed', 'Malformed Authorization header: expected "Bearer <key>".');
  return { digest: keyDigest(key), key };
}
