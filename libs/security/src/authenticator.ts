import { AppError } from '@fastvlm/contracts';
import { isWellFormedApiKey, keyDigest } from './api-key-format';
import type { BootstrapKeys } from './api-keys';
import type { ApiKeyStore } from './key-store';
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
    if (!header) throw new AuthError('missing', 'Missing API key: send "Authorization: Bearer <key>".');
    const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
    const key = m?.[1];
    if (!key || key.length > MAX_KEY_CHARS) throw new AuthError('malformed', 'Malformed Authorization header: expected "Bearer <key>".');
    const digest = keyDigest(key);
    const boot = this.bootstrap.find(digest);
    if (boot) {
      const settings = effectiveSettings(this.opts.defaults, await this.opts.tenantSettingsJson(boot.tenant));
      return { tenant: boot.tenant, keyId: boot.keyId, scopes: boot.scopes, settings };
    }
    if (!isWellFormedApiKey(key)) throw new AuthError('unknown_key', 'Invalid API key.');
    const found = await this.store.lookup(digest);
    if (!found) throw new AuthError('unknown_key', 'Invalid API key.');
    // Same message as an unknown key: a caller holding a revoked key learns nothing new.
    if (found.record.revokedAt !== null) throw new AuthError('revoked', 'Invalid API key.');
    this.touch(digest);
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
