import { randomBytes } from 'node:crypto';

/** Events an endpoint may subscribe to. Job events are opt-in: a busy tenant has many jobs. */
export const WEBHOOK_EVENT_TYPES = [
  'job.succeeded',
  'job.failed',
  'job.cancelled',
  'batch.completed',
  'batch.failed',
  'batch.expired',
  'batch.cancelled',
] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

/** What an endpoint gets when it names no events: the batch events (job events must be named). */
export const DEFAULT_WEBHOOK_EVENTS: readonly WebhookEventType[] = ['batch.completed', 'batch.failed', 'batch.expired', 'batch.cancelled'];

/** The ping `POST /v1/admin/webhooks/{id}/test` sends to one endpoint, whatever it subscribes to. */
export const WEBHOOK_TEST_EVENT = 'webhook.test';

/** Every type a delivery can carry. */
export type DeliveredEventType = WebhookEventType | typeof WEBHOOK_TEST_EVENT;

/**
 * The thin payload, as OpenAI's webhooks send it: what happened to which
 * object; the receiver reads the object itself through the API.
 */
export interface WebhookEvent {
  id: string;
  object: 'event';
  type: DeliveredEventType;
  /** Unix seconds. */
  created_at: number;
  data: { id: string };
}

/** Event ids go into BullMQ job ids and the `webhook-id` header: no `:` (BullMQ refuses it), nothing a header cannot carry. */
const EVENT_ID = /^evt_[A-Za-z0-9_.-]{1,200}$/;

export function isEventId(id: string): boolean {
  return EVENT_ID.test(id);
}

/** A random event id (callers that may emit twice after a crash pass a deterministic one instead). */
export function newEventId(): string {
  return `evt_${randomBytes(16).toString('base64url')}`;
}

/** The bytes every attempt of a delivery sends: serialized once, so retries carry exactly what the first attempt signed. */
export function eventBody(e: WebhookEvent): string {
  return JSON.stringify({ id: e.id, object: e.object, type: e.type, created_at: e.created_at, data: { id: e.data.id } });
}
