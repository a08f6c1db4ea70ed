import type { Redis } from 'ioredis';
import { z } from 'zod';

/**
 * Security events. By construction they hold identifiers and reasons only:
 * never a key, an Authorization header, an image, or question text.
 */
export type AuditEvent =
  | { type: 'auth_failed'; reason: string; ip: string; route: string }
  | { type: 'forbidden'; reason: 'scope' | 'ip_not_allowed'; tenant: string; keyId: string; ip: string; route: string; scope?: string }
  /** Without tenant and key for limits on anonymous callers (failed authentications per address). */
  | { type: 'limit_hit'; limit: string; tenant?: string; keyId?: string; ip?: string; route?: string }
  | { type: 'input_rejected'; reason: string; code: string; param: string | null; tenant: string; keyId: string; route: string }
  | { type: 'key_created'; keyId: string; tenant: string; scopes: string[]; actor: string }
  | { type: 'key_revoked'; keyId: string; tenant: string; actor: string }
  | { type: 'admin_action'; action: string; actor: string; tenant?: string; target?: string };

export type AuditType = AuditEvent['type'];
export const AUDIT_TYPES = ['auth_failed', 'forbidden', 'limit_hit', 'input_rejected', 'key_created', 'key_revoked', 'admin_action'] as const satisfies readonly AuditType[];

export interface AuditEntry {
  /** Stream entry id (`<ms>-<seq>`), usable as `before` to page back. */
  id: string;
  at: number;
  event: AuditEvent;
}

export interface AuditLogOptions {
  /** Entries kept (approximately: trimming is amortised). Default 100 000. */
  maxEntries?: number;
  /** Entries older than this are trimmed, in milliseconds. Default 30 days. */
  maxAgeMs?: number;
  /** Every event also goes here (the structured log). */
  sink?: (e: AuditEvent) => void;
  /** Failures to write the stream (never thrown at the request that caused the event). */
  onError?: (e: unknown) => void;
  now?: () => number;
}

const StoredEvent = z.object({ type: z.enum(AUDIT_TYPES) }).passthrough();

/**
 * The audit log: a Redis stream with bounded retention (count and age), plus
 * the structured log. Writes are fire-and-forget: a request is never failed
 * or slowed down because its audit entry could not be written.
 */
export class AuditLog {
  private readonly maxEntries: number;
  private readonly maxAgeMs: number;
  private readonly now: () => number;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly opts: AuditLogOptions = {},
  ) {
    this.maxEntries = opts.maxEntries ?? 100_000;
    this.maxAgeMs = opts.maxAgeMs ?? 30 * 86_400_000;
    this.now = opts.now ?? Date.now;
  }

  key(): string {
    return `${this.prefix}:audit`;
  }

  /** Records an event; resolves when the stream has it (callers may ignore the promise). */
  async record(event: AuditEvent): Promise<void> {
    this.opts.sink?.(event);
    const minId = Math.max(0, this.now() - this.maxAgeMs);
    try {
      const results = await this.redis
        .pipeline()
        .xadd(this.key(), 'MAXLEN', '~', this.maxEntries, '*', 'e', JSON.stringify(event))
        .xtrim(this.key(), 'MINID', '~', minId)
        .exec();
      // A pipeline reports command failures in its results, not by rejecting.
      const failed = results?.find(([err]) => err !== null)?.[0];
      if (failed) throw failed;
    } catch (e) {
      this.opts.onError?.(e);
    }
  }

  /** Fire-and-forget form for request paths. */
  emit(event: AuditEvent): void {
    void this.record(event);
  }

  /** Newest first; `before` pages back from an entry id; filters apply to the page read. */
  async read(opts: { limit: number; before?: string; type?: AuditType; tenant?: string }): Promise<AuditEntry[]> {
    const end = opts.before ? `(${opts.before}` : '+';
    const filtered = opts.type !== undefined || opts.tenant !== undefined;
    // Filters look at a bounded window of entries so that a read stays cheap.
    const scan = filtered ? Math.min(opts.limit * 20, 10_000) : opts.limit;
    const rows = await this.redis.xrevrange(this.key(), end, '-', 'COUNT', scan);
    const out: AuditEntry[] = [];
    for (const [id, fields] of rows) {
      const raw = fields[fields.indexOf('e') + 1];
      if (raw === undefined) continue;
      const parsed = StoredEvent.safeParse(JSON.parse(raw));
      if (!parsed.success) continue;
      const event = parsed.data as unknown as AuditEvent;
      if (opts.type !== undefined && event.type !== opts.type) continue;
      if (opts.tenant !== undefined && !('tenant' in event && event.tenant === opts.tenant)) continue;
      out.push({ id, at: Number(id.split('-')[0]), event });
      if (out.length >= opts.limit) break;
    }
    return out;
  }
}
