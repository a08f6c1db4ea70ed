import { createHash, randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { AppError } from '@fastvlm/contracts';
import { LuaScript } from '@fastvlm/jobs';
import { generateApiKey, keyDigest } from './api-key-format';
import { isScope, type Scope } from './scopes';
import { firstControlCharacter } from './text-check';
import { assertTenant } from './tenant-settings';

/** What is known about a key; never the key itself. */
export interface ApiKeyRecord {
  /** Public identifier (`key_…`), used to list and revoke. */
  id: string;
  tenant: string;
  name: string;
  scopes: Scope[];
  createdAt: number;
  lastUsedAt: number | null;
  revokedAt: number | null;
}

/** A key record with its tenant's stored settings, fetched in one round trip. */
export interface KeyLookup {
  record: ApiKeyRecord;
  tenantSettingsJson: string | null;
  /** What authorization depends on, hashed: see KEY_GUARD_LUA. */
  fingerprint: string;
}

/** The stored fields a principal is built from; `last_used_at` is not one (it changes without changing access). */
const GUARDED_FIELDS = ['id', 'tenant', 'scopes', 'revoked_at'] as const;

/**
 * Lua that ends the script with {-1} unless the key record (KEYS[1]) and its
 * tenant's settings (KEYS[2]) still hash to ARGV[1]. It lets a gateway act on
 * a principal it built earlier while Redis checks, atomically with what
 * follows, that the key was not revoked, deleted or re-scoped and the
 * tenant's limits did not change since. `keyFingerprint` computes the same hash.
 */
export const KEY_GUARD_LUA = `
local g = redis.call('HMGET', KEYS[1], ${GUARDED_FIELDS.map((f) => `'${f}'`).join(', ')})
local parts = {}
for i = 1, ${GUARDED_FIELDS.length} do parts[i] = g[i] or '' end
parts[${GUARDED_FIELDS.length + 1}] = redis.call('GET', KEYS[2]) or ''
if redis.sha1hex(table.concat(parts, '\\n')) ~= ARGV[1] then return {-1} end
`;

/** The hash KEY_GUARD_LUA compares, from the raw stored values. */
export function keyFingerprint(h: Record<string, string>, tenantSettingsJson: string | null): string {
  const parts = GUARDED_FIELDS.map((f) => h[f] ?? '');
  parts.push(tenantSettingsJson ?? '');
  return createHash('sha1').update(parts.join('\n')).digest('hex');
}

/** Sets a field only on a record that exists (a touch must never resurrect a key). KEYS: record. ARGV: field, value. */
const SET_IF_EXISTS = new LuaScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
`);

function toRecord(h: Record<string, string>): ApiKeyRecord | null {
  if (!h.id || !h.tenant || h.created_at === undefined) return null;
  return {
    id: h.id,
    tenant: h.tenant,
    name: h.name ?? '',
    scopes: (h.scopes ?? '').split(',').filter(isScope),
    createdAt: Number(h.created_at),
    lastUsedAt: h.last_used_at ? Number(h.last_used_at) : null,
    revokedAt: h.revoked_at ? Number(h.revoked_at) : null,
  };
}

/**
 * API keys in Redis, stored only as SHA-256 and looked up by it:
 * `<prefix>:apikey:<sha256>` holds the record, `<prefix>:apikey-ids` maps
 * public ids to digests. Revoked keys keep their record (for listing and
 * audit) with `revoked_at` set; authentication refuses them at once, on every
 * gateway, because nothing caches a lookup.
 */
export class ApiKeyStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  /** Where a key's record lives (KEYS[1] of KEY_GUARD_LUA). */
  recordKey(digest: string): string {
    return `${this.prefix}:apikey:${digest}`;
  }
  /** Where a tenant's stored settings live (KEYS[2] of KEY_GUARD_LUA). */
  tenantSettingsKey(tenant: string): string {
    return `${this.tenantPrefix()}${tenant}`;
  }
  private idsKey(): string {
    return `${this.prefix}:apikey-ids`;
  }
  private tenantPrefix(): string {
    return `${this.prefix}:tenant:`;
  }

  /** Creates a key; the plaintext is returned once and never stored. */
  async create(input: { tenant: string; name: string; scopes: Scope[]; now: number }): Promise<{ key: string; record: ApiKeyRecord }> {
    assertTenant(input.tenant);
    const name = input.name.trim();
    if (name.length < 1 || name.length > 64 || firstControlCharacter(name) !== null) {
      throw new AppError('invalid_request', 'A key name is 1 to 64 printable characters.', 'name');
    }
    if (input.scopes.length === 0) throw new AppError('invalid_request', 'A key needs at least one scope.', 'scopes');
    const key = generateApiKey();
    const digest = keyDigest(key);
    const record: ApiKeyRecord = {
      id: `key_${randomBytes(8).toString('hex')}`,
      tenant: input.tenant,
      name,
      scopes: [...input.scopes],
      createdAt: input.now,
      lastUsedAt: null,
      revokedAt: null,
    };
    await this.redis
      .multi()
      .hset(this.recordKey(digest), { id: record.id, tenant: record.tenant, name: record.name, scopes: record.scopes.join(','), created_at: record.createdAt })
      .hset(this.idsKey(), record.id, digest)
      .exec();
    return { key, record };
  }

  /** The record and tenant settings for a key digest, or null for an unknown key. */
  async lookup(digest: string): Promise<KeyLookup | null> {
    // Two reads, not one script: the settings key is named by the record, and a script must declare its keys.
    // A change between them is harmless: every request's limit script compares both to this lookup's
    // fingerprint, atomically, and a mismatch makes the gateway look the key up again.
    const raw = await this.redis.hgetall(this.recordKey(digest));
    const record = toRecord(raw);
    if (!record) return null;
    const tenantSettingsJson = await this.redis.get(this.tenantSettingsKey(record.tenant));
    return { record, tenantSettingsJson, fingerprint: keyFingerprint(raw, tenantSettingsJson) };
  }

  async get(id: string): Promise<ApiKeyRecord | null> {
    const digest = await this.redis.hget(this.idsKey(), id);
    if (!digest) return null;
    return toRecord(await this.redis.hgetall(this.recordKey(digest)));
  }

  /** Every key (optionally of one tenant), newest first. */
  async list(tenant?: string): Promise<ApiKeyRecord[]> {
    const digests = await this.redis.hvals(this.idsKey());
    const pipe = this.redis.pipeline();
    for (const d of digests) pipe.hgetall(this.recordKey(d));
    const rows = (await pipe.exec()) ?? [];
    const records: ApiKeyRecord[] = [];
    for (const [err, h] of rows) {
      if (err) throw err;
      const rec = toRecord(h as Record<string, string>);
      if (rec && (tenant === undefined || rec.tenant === tenant)) records.push(rec);
    }
    return records.sort((a, b) => b.createdAt - a.createdAt);
  }

  /** Marks a key revoked; returns its record (null for an unknown id). Revoking twice keeps the first time. */
  async revoke(id: string, now: number): Promise<ApiKeyRecord | null> {
    const digest = await this.redis.hget(this.idsKey(), id);
    if (!digest) return null;
    await this.redis.hsetnx(this.recordKey(digest), 'revoked_at', now);
    return toRecord(await this.redis.hgetall(this.recordKey(digest)));
  }

  /** Records a use of the key (callers throttle this: it is a write). */
  async touch(digest: string, now: number): Promise<void> {
    await SET_IF_EXISTS.run(this.redis, [this.recordKey(digest)], ['last_used_at', now]);
  }
}
