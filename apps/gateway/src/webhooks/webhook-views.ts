import { z } from 'zod';
import { WEBHOOK_EVENT_TYPES, type WebhookEndpoint } from '@fastvlm/webhooks';

export interface SecretView {
  id: string;
  /** Unix seconds. */
  created_at: number;
  /** Unix seconds after which it no longer signs; null: until rotated out. */
  expires_at: number | null;
}

/** An endpoint as the admin API shows it: never a secret's value (that is shown once, at creation or rotation). */
export interface EndpointView {
  id: string;
  object: 'webhook_endpoint';
  tenant: string;
  url: string;
  events: string[];
  enabled: boolean;
  description: string;
  created_at: number;
  /** The secrets that still sign, oldest first. */
  secrets: SecretView[];
  /** Consecutive failed attempts. */
  failures: number;
  /** Unix seconds: deliveries wait until then (past: the next attempt is the probe); null when the circuit is closed. */
  circuit_open_until: number | null;
}

const sec = (ms: number): number => Math.floor(ms / 1000);

export function endpointView(e: WebhookEndpoint, now: number): EndpointView {
  return {
    id: e.id,
    object: 'webhook_endpoint',
    tenant: e.tenant,
    url: e.url,
    events: [...e.events],
    enabled: e.enabled,
    description: e.description,
    created_at: sec(e.createdAt),
    secrets: e.secrets
      .filter((s) => s.expiresAt === null || s.expiresAt > now)
      .map((s) => ({ id: s.id, created_at: sec(s.createdAt), expires_at: s.expiresAt === null ? null : sec(s.expiresAt) })),
    failures: e.failures,
    circuit_open_until: e.circuitOpenUntil === null ? null : sec(e.circuitOpenUntil),
  };
}

const Events = z.array(z.enum(WEBHOOK_EVENT_TYPES)).min(1).max(WEBHOOK_EVENT_TYPES.length);
const Description = z.string().max(512);

export const CreateEndpointBody = z.strictObject({
  tenant: z.string(),
  url: z.string().min(1),
  /** Default: the batch events; job events must be named. */
  events: Events.optional(),
  description: Description.optional(),
});

export const PatchEndpointBody = z
  .strictObject({ url: z.string().min(1).optional(), events: Events.optional(), enabled: z.boolean().optional(), description: Description.optional() })
  .refine((b) => Object.keys(b).length > 0, { message: 'name at least one of url, events, enabled, description' });

/** Seconds the previous secrets keep signing (default one day; 0 retires them at once). */
export const RotateSecretBody = z.strictObject({ expire_previous_in_seconds: z.number().int().min(0).max(7 * 86_400).optional() }).nullish();

export const DeliveriesQuery = z.object({ limit: z.coerce.number().int().min(1).max(1_000).default(100) });
