import { createHash } from 'node:crypto';
import { AppError } from '@fastvlm/contracts';

export interface Principal {
  tenant: string;
  /** Short, non-secret identifier of the key (for logs): the first 8 hex digits of its SHA-256. */
  keyId: string;
}

const TENANT = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

function sha256(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

/**
 * Static API keys from `FASTVLM_API_KEYS` (`tenant:key,tenant:key`), the
 * development bootstrap. Keys are held only as SHA-256 digests and looked up
 * by digest: neither a memory dump nor comparison timing reveals a key.
 */
export class StaticApiKeys {
  private readonly byDigest = new Map<string, Principal>();

  constructor(spec: string) {
    for (const raw of spec.split(',')) {
      const entry = raw.trim();
      if (!entry) continue;
      const colon = entry.indexOf(':');
      const tenant = colon > 0 ? entry.slice(0, colon) : '';
      const key = colon > 0 ? entry.slice(colon + 1) : '';
      if (!TENANT.test(tenant) || key.length < 16) {
        throw new Error(
          'FASTVLM_API_KEYS must be comma-separated tenant:key pairs; tenants are [A-Za-z0-9_.-] and keys at least 16 characters',
        );
      }
      const digest = sha256(key);
      this.byDigest.set(digest.toString('hex'), { tenant, keyId: digest.toString('hex').slice(0, 8) });
    }
    if (this.byDigest.size === 0) throw new Error('FASTVLM_API_KEYS holds no keys');
  }

  get size(): number {
    return this.byDigest.size;
  }

  /** The principal for an `Authorization` header value, or an `unauthorized` AppError. */
  authenticate(header: string | undefined): Principal {
    if (!header) throw new AppError('unauthorized', 'Missing API key: send "Authorization: Bearer <key>".');
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!m?.[1]) throw new AppError('unauthorized', 'Malformed Authorization header: expected "Bearer <key>".');
    const found = this.byDigest.get(sha256(m[1]).toString('hex'));
    if (!found) throw new AppError('unauthorized', 'Invalid API key.');
    return found;
  }
}
