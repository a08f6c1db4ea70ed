import type { Redis } from 'ioredis';
import type { RedisKeys } from '@fastvlm/contracts';
import { LuaScript } from '@fastvlm/jobs';

/** `batch`: uploaded input; `batch_output`: a batch's output or error file (OpenAI's names). */
export type FilePurpose = 'batch' | 'batch_output';

/** One stored blob of a file; a batch's output is the concatenation of the segments it flushed. */
export interface FilePart {
  key: string;
  bytes: number;
}

export interface FileRecord {
  id: string;
  tenant: string;
  purpose: FilePurpose;
  filename: string;
  bytes: number;
  /** Epoch ms. */
  createdAt: number;
  /** Epoch ms after which the sweeper deletes it; null: kept until deleted. */
  expiresAt: number | null;
  parts: FilePart[];
}

/**
 * KEYS: record, tenant index, expiry index. ARGV: id, created ms, expires ms (0: never), fields…
 */
const CREATE = new LuaScript(`
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
if ARGV[3] ~= '0' then redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1]) end
return 1
`);

/** KEYS: record, tenant index, expiry index. ARGV: id. Reply: the parts JSON when this call removed the record, else false. */
const REMOVE = new LuaScript(`
local parts = redis.call('HGET', KEYS[1], 'parts')
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
if not parts then return false end
redis.call('DEL', KEYS[1])
return parts
`);

export interface Page<T> {
  data: T[];
  hasMore: boolean;
}

/** File metadata in Redis (the bytes live in a `BlobStore`). */
export class FileRecords {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
  ) {}

  async create(r: FileRecord): Promise<void> {
    await CREATE.run(
      this.redis,
      [this.keys.file(r.id), this.keys.tenantFiles(r.tenant), this.keys.fileExpiry()],
      [
        r.id,
        r.createdAt,
        r.expiresAt ?? 0,
        'id', r.id,
        'tenant', r.tenant,
        'purpose', r.purpose,
        'filename', r.filename,
        'bytes', r.bytes,
        'created_at', r.createdAt,
        'expires_at', r.expiresAt ?? 0,
        'parts', JSON.stringify(r.parts),
      ],
    );
  }

  async get(id: string): Promise<FileRecord | null> {
    const h = await this.redis.hgetall(this.keys.file(id));
    if (!h.id || !h.tenant || !h.parts) return null;
    const expires = Number(h.expires_at ?? 0);
    return {
      id: h.id,
      tenant: h.tenant,
      purpose: h.purpose === 'batch_output' ? 'batch_output' : 'batch',
      filename: h.filename ?? '',
      bytes: Number(h.bytes ?? 0),
      createdAt: Number(h.created_at ?? 0),
      expiresAt: expires > 0 ? expires : null,
      parts: JSON.parse(h.parts) as FilePart[],
    };
  }

  /**
   * Removes the record and its index entries; the parts it had when this call removed it
   * (the caller deletes their blobs), or null when it was already gone.
   */
  async remove(id: string, tenant: string): Promise<FilePart[] | null> {
    const parts = await REMOVE.run(this.redis, [this.keys.file(id), this.keys.tenantFiles(tenant), this.keys.fileExpiry()], [id]);
    return typeof parts === 'string' ? (JSON.parse(parts) as FilePart[]) : null;
  }

  /**
   * A tenant's files, newest first (`desc`) or oldest first, after the file `after` (cursor pagination
   * as OpenAI's lists do). Ids whose record was removed meanwhile are skipped.
   */
  async list(tenant: string, opts: { after?: string; limit: number; order: 'asc' | 'desc'; purpose?: FilePurpose }): Promise<Page<FileRecord>> {
    const index = this.keys.tenantFiles(tenant);
    const rank = async (id: string) => (opts.order === 'desc' ? this.redis.zrevrank(index, id) : this.redis.zrank(index, id));
    let start = 0;
    if (opts.after !== undefined) {
      const r = await rank(opts.after);
      if (r === null) return { data: [], hasMore: false };
      start = r + 1;
    }
    const out: FileRecord[] = [];
    const chunk = Math.max(opts.limit + 1, 50);
    for (;;) {
      const ids = opts.order === 'desc' ? await this.redis.zrevrange(index, start, start + chunk - 1) : await this.redis.zrange(index, String(start), String(start + chunk - 1));
      for (const id of ids) {
        const rec = await this.get(id);
        if (!rec) continue;
        if (opts.purpose !== undefined && rec.purpose !== opts.purpose) continue;
        if (out.length === opts.limit) return { data: out, hasMore: true };
        out.push(rec);
      }
      if (ids.length < chunk) return { data: out, hasMore: false };
      start += chunk;
    }
  }

  /** Ids of files whose expiry passed (at most `n`). */
  async expired(now: number, n: number): Promise<string[]> {
    return this.redis.zrangebyscore(this.keys.fileExpiry(), 0, now, 'LIMIT', 0, n);
  }

  /** Drops an expiry entry whose record is gone (its tenant is unknown, so `remove` cannot be used). */
  async forgetExpiry(id: string): Promise<void> {
    await this.redis.zrem(this.keys.fileExpiry(), id);
  }
}
