import { keyDigest } from './api-key-format';
import { DEFAULT_SCOPES, parseScopes, type Scope } from './scopes';
import { TENANT_PATTERN } from './tenant-settings';

export interface BootstrapKey {
  tenant: string;
  /** `boot_` + the first 8 hex digits of the key's SHA-256 (not secret). */
  keyId: string;
  scopes: readonly Scope[];
}

/**
 * Keys from `FASTVLM_API_KEYS`, the development bootstrap:
 * `tenant:key[:scope+scope]` entries separated by commas (keys at least 16
 * characters, without `:` or `,`; scopes default to `infer+jobs:read`). They
 * live in process memory as SHA-256 digests only, cannot be revoked through
 * the API (remove them from the environment and restart), and need no Redis
 * round trip to find.
 */
export class BootstrapKeys {
  private readonly byDigest = new Map<string, BootstrapKey>();

  constructor(spec: string) {
    for (const raw of spec.split(',')) {
      const entry = raw.trim();
      if (!entry) continue;
      const first = entry.indexOf(':');
      const second = first < 0 ? -1 : entry.indexOf(':', first + 1);
      const tenant = first > 0 ? entry.slice(0, first) : '';
      const key = first < 0 ? '' : second < 0 ? entry.slice(first + 1) : entry.slice(first + 1, second);
      if (!TENANT_PATTERN.test(tenant) || key.length < 16) {
        throw new Error(
          'FASTVLM_API_KEYS must be comma-separated tenant:key[:scopes] entries; tenants are [A-Za-z0-9_.-] and keys at least 16 characters',
        );
      }
      let scopes: readonly Scope[] = DEFAULT_SCOPES;
      if (second >= 0) {
        try {
          scopes = parseScopes(entry.slice(second + 1));
        } catch (e) {
          throw new Error(`FASTVLM_API_KEYS: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
        }
      }
      const digest = keyDigest(key);
      this.byDigest.set(digest, { tenant, keyId: `boot_${digest.slice(0, 8)}`, scopes });
    }
  }

  get size(): number {
    return this.byDigest.size;
  }

  find(digest: string): BootstrapKey | undefined {
    return this.byDigest.get(digest);
  }

  /** For listings: what each bootstrap key is, without the key. */
  list(): BootstrapKey[] {
    return [...this.byDigest.values()];
  }
}
