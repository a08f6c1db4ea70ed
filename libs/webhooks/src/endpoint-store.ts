import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { RedisKeys } from '@fastvlm/contracts';
import { SET_IF_UNCHANGED, UPDATE_IF_EXISTS } from './endpoint-scripts';
import { WEBHOOK_EVENT_TYPES, type WebhookEventType } from './events';
import { newSecret } from './signing';

/**
 * A signing secret. Kept as the raw `whsec_…` value: signing needs it (a hash
 * would not do, unlike API keys); the admin API shows it once, when made.
 */
export interface WebhookSecret {
  id: string;
  value: string;
  /** Epoch ms. */
  createdAt: number;
  /** Epoch ms after which it no longer signs; null: until it is rotated out or deleted. */
  expiresAt: number | null;
}

export interface WebhookEndpoint {
  id: string;
  tenant: string;
  url: string;
  events: WebhookEventType[];
  enabled: boolean;
  description: string;
  /** Epoch ms. */
  createdAt: number;
  secrets: WebhookSecret[];
  /** Consecutive failed attempts (0 after any success). */
  failures: number;
  /** Epoch ms until which deliveries wait, or null when the circuit is closed. */
  circuitOpenUntil: number | null;
}

export interface NewEndpoint {
  tenant: string;
  url: string;
  events: readonly WebhookEventType[];
  description: string;
  now: number;
}

export interface EndpointPatch {
  url?: string;
  events?: readonly WebhookEventType[];
  enabled?: boolean;
  description?: string;
}

const StoredSecrets = z.array(z.object({ id: z.string(), value: z.string(), created_at: z.number(), expires_at: z.number().nullable() }));
const StoredEvents = z.array(z.enum(WEBHOOK_EVENT_TYPES));

/** Compare-and-set rounds before a secrets change gives up (only concurrent rotations of one endpoint retry). */
const CAS_ROUNDS = 10;

export function newEndpointId(): string {
  return `whep_${randomBytes(12).toString('base64url')}`;
}

function newSecretId(): string {
  return `whsk_${randomBytes(9).toString('base64url')}`;
}

/** Whether a secret still signs at `now`. */
export function isActive(s: WebhookSecret, now: number): boolean {
  return s.expiresAt === null || s.expiresAt > now;
}

/**
 * Webhook endpoints in the queue Redis: one hash per endpoint and a set of
 * each tenant's endpoint ids, all in the shared slot (so a create or a
 * delete is one MULTI). The circuit fields live in the same hash; the
 * delivery worker moves them through `ADMIT` and `RECORD_RESULT`.
 */
export class EndpointStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
  ) {}

  /** Creates an endpoint with its first secret; the secret's value is in this answer only. */
  async create(e: NewEndpoint): Promise<{ endpoint: WebhookEndpoint; secret: string }> {
    const id = newEndpointId();
    const secret: WebhookSecret = { id: newSecretId(), value: newSecret(), createdAt: e.now, expiresAt: null };
    const endpoint: WebhookEndpoint = {
      id,
      tenant: e.tenant,
      url: e.url,
      events: [...e.events],
      enabled: true,
      description: e.description,
      createdAt: e.now,
      secrets: [secret],
      failures: 0,
      circuitOpenUntil: null,
    };
    const results = await this.redis
      .multi()
      .hset(this.keys.webhookEndpoint(id), {
        id,
        tenant: e.tenant,
        url: e.url,
        events: JSON.stringify(endpoint.events),
        enabled: '1',
        description: e.description,
        created_at: String(e.now),
        secrets: secretsJson(endpoint.secrets),
        failures: '0',
        open_until: '0',
        open_ms: '0',
        probe_until: '0',
      })
      .sadd(this.keys.tenantWebhooks(e.tenant), id)
      .exec();
    failOnError(results);
    return { endpoint, secret: secret.value };
  }

  async get(id: string): Promise<WebhookEndpoint | null> {
    return parseEndpoint(await this.redis.hgetall(this.keys.webhookEndpoint(id)));
  }

  /** A tenant's endpoints, oldest first. */
  async list(tenant: string): Promise<WebhookEndpoint[]> {
    const ids = await this.redis.smembers(this.keys.tenantWebhooks(tenant));
    if (ids.length === 0) return [];
    const pipe = this.redis.pipeline();
    for (const id of ids) pipe.hgetall(this.keys.webhookEndpoint(id));
    const found: WebhookEndpoint[] = [];
    for (const [err, h] of (await pipe.exec()) ?? []) {
      if (err) throw err;
      const e = parseEndpoint(h as Record<string, string>);
      if (e && e.tenant === tenant) found.push(e);
    }
    return found.sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id));
  }

  /**
   * Changes an endpoint; null when it does not exist. A new URL or a re-enabled endpoint
   * starts with a closed circuit: the failures were another target's, or are an operator's to forgive.
   */
  async update(id: string, patch: EndpointPatch): Promise<WebhookEndpoint | null> {
    const fields: string[] = [];
    if (patch.url !== undefined) fields.push('url', patch.url);
    if (patch.events !== undefined) fields.push('events', JSON.stringify([...patch.events]));
    if (patch.enabled !== undefined) fields.push('enabled', patch.enabled ? '1' : '0');
    if (patch.description !== undefined) fields.push('description', patch.description);
    if (patch.url !== undefined || patch.enabled === true) fields.push('failures', '0', 'open_until', '0', 'open_ms', '0', 'probe_until', '0');
    if (fields.length > 0 && (await UPDATE_IF_EXISTS.run(this.redis, [this.keys.webhookEndpoint(id)], fields)) !== 1) return null;
    return this.get(id);
  }

  /** Deletes an endpoint with its delivery log; its pending deliveries are dropped when they come up. */
  async delete(id: string): Promise<WebhookEndpoint | null> {
    const e = await this.get(id);
    if (!e) return null;
    const results = await this.redis
      .multi()
      .del(this.keys.webhookEndpoint(id), this.keys.webhookDeliveries(id))
      .srem(this.keys.tenantWebhooks(e.tenant), id)
      .exec();
    failOnError(results);
    return e;
  }

  /**
   * Adds a secret; the ones that still sign keep signing until `now + expirePreviousMs`
   * (0: they stop at once), so receivers can switch without missing a delivery.
   * Secrets already expired are dropped. Null when the endpoint does not exist.
   */
  async rotateSecret(id: string, now: number, expirePreviousMs: number): Promise<{ endpoint: WebhookEndpoint; secret: string } | null> {
    const secret: WebhookSecret = { id: newSecretId(), value: newSecret(), createdAt: now, expiresAt: null };
    const until = now + expirePreviousMs;
    const endpoint = await this.changeSecrets(id, (current) => [
      ...current.filter((s) => isActive(s, now)).map((s) => ({ ...s, expiresAt: s.expiresAt === null ? until : Math.min(s.expiresAt, until) })),
      secret,
    ]);
    return endpoint ? { endpoint, secret: secret.value } : null;
  }

  /** Deletes one secret; refused (`last`) when no other one would still sign. */
  async removeSecret(id: string, secretId: string, now: number): Promise<{ outcome: 'removed'; endpoint: WebhookEndpoint } | { outcome: 'no_endpoint' | 'no_secret' | 'last' }> {
    // Set by the last round of the compare-and-set (a round may see another list than the one before).
    const refused: { why: 'no_secret' | 'last' | null } = { why: null };
    const endpoint = await this.changeSecrets(id, (current) => {
      refused.why = null;
      if (!current.some((s) => s.id === secretId)) refused.why = 'no_secret';
      else if (!current.some((s) => s.id !== secretId && isActive(s, now))) refused.why = 'last';
      return refused.why ? null : current.filter((s) => s.id !== secretId);
    });
    if (!endpoint) return { outcome: 'no_endpoint' };
    if (refused.why) return { outcome: refused.why };
    return { outcome: 'removed', endpoint };
  }

  /** Rewrites the secrets list through compare-and-set; `change` returns null to leave it as it is. */
  private async changeSecrets(id: string, change: (current: WebhookSecret[]) => WebhookSecret[] | null): Promise<WebhookEndpoint | null> {
    const key = this.keys.webhookEndpoint(id);
    for (let round = 0; round < CAS_ROUNDS; round++) {
      const raw = await this.redis.hget(key, 'secrets');
      if (raw === null) return null;
      const next = change(parseSecrets(raw));
      if (next === null) return this.get(id);
      const set = await SET_IF_UNCHANGED.run(this.redis, [key], ['secrets', raw, secretsJson(next)]);
      if (set === -1) return null;
      if (set === 1) return this.get(id);
    }
    throw new Error(`the secrets of webhook endpoint ${id} kept changing; try again`);
  }
}

function secretsJson(secrets: readonly WebhookSecret[]): string {
  return JSON.stringify(secrets.map((s) => ({ id: s.id, value: s.value, created_at: s.createdAt, expires_at: s.expiresAt })));
}

/** The secrets as stored (also what the delivery worker reads at each attempt). */
export function parseSecrets(raw: string): WebhookSecret[] {
  return StoredSecrets.parse(JSON.parse(raw)).map((s) => ({ id: s.id, value: s.value, createdAt: s.created_at, expiresAt: s.expires_at }));
}

function parseEndpoint(h: Record<string, string>): WebhookEndpoint | null {
  if (!h.id || !h.tenant || !h.url || !h.events || !h.secrets) return null;
  const openUntil = Number(h.open_until ?? 0);
  return {
    id: h.id,
    tenant: h.tenant,
    url: h.url,
    events: StoredEvents.parse(JSON.parse(h.events)),
    enabled: h.enabled === '1',
    description: h.description ?? '',
    createdAt: Number(h.created_at),
    secrets: parseSecrets(h.secrets),
    failures: Number(h.failures ?? 0),
    circuitOpenUntil: openUntil > 0 ? openUntil : null,
  };
}

function failOnError(results: [Error | null, unknown][] | null): void {
  if (!results) throw new Error('a webhook transaction was aborted');
  const failed = results.find(([err]) => err !== null)?.[0];
  if (failed) throw failed;
}
