import type { Queue } from 'bullmq';
import type { EndpointStore, WebhookEndpoint } from './endpoint-store';
import { eventBody, isEventId, newEventId, WEBHOOK_TEST_EVENT, type DeliveredEventType, type WebhookEventType } from './events';
import type { RetryPolicy } from './retry-policy';
import { DELIVERY_JOB, deliveryJobId, deliveryJobOptions, type DeliveryJobData } from './webhook-queue';

export interface EmitInput {
  tenant: string;
  type: WebhookEventType;
  /** The id of the object the event is about (a job id, a batch id): the payload's `data.id`. */
  objectId: string;
  /**
   * `evt_…`. Pass a deterministic id (e.g. `evt_<batch id>_completed`) when the emit may be
   * repeated after a crash: a second emit with the same id enqueues nothing. Default: a random one.
   */
  eventId?: string;
  /** When it happened, epoch ms (the payload's `created_at`, in seconds). Default: now. */
  createdAt?: number;
}

export interface WebhookEventsOptions {
  retry: RetryPolicy;
  /** How long `subscribes` may answer from memory, in ms. Default 5 000. */
  subscriptionCacheMs?: number;
  now?: () => number;
}

/**
 * Where the product announces events: one durable delivery per subscribed
 * endpoint of the tenant, on the `webhooks` queue. What the API, the job
 * watcher and the batch runner call.
 */
export class WebhookEvents {
  private readonly cache = new Map<string, { at: number; endpoints: WebhookEndpoint[] }>();
  private readonly cacheMs: number;
  private readonly now: () => number;

  constructor(
    private readonly queue: Queue<DeliveryJobData>,
    private readonly endpoints: EndpointStore,
    private readonly opts: WebhookEventsOptions,
  ) {
    this.cacheMs = opts.subscriptionCacheMs ?? 5_000;
    this.now = opts.now ?? Date.now;
  }

  /**
   * Enqueues the event for each of the tenant's enabled endpoints that subscribe to its type;
   * resolves once the queue holds them (nothing when none subscribes). Rejects when Redis does:
   * the caller decides whether to retry (with the same `eventId`).
   */
  async emit(input: EmitInput): Promise<void> {
    const eventId = input.eventId ?? newEventId();
    if (!isEventId(eventId)) throw new Error(`webhook event ids are "evt_" and up to 200 of [A-Za-z0-9_.-], not ${eventId}`);
    const targets = (await this.refresh(input.tenant)).filter((e) => e.enabled && e.events.includes(input.type));
    if (targets.length === 0) return;
    await this.enqueue(targets, eventId, input.type, input.objectId, input.createdAt ?? this.now());
  }

  /** Sends a `webhook.test` ping to one endpoint, whatever it subscribes to; answers the event id. */
  async sendTest(endpoint: WebhookEndpoint): Promise<string> {
    const eventId = newEventId();
    await this.enqueue([endpoint], eventId, WEBHOOK_TEST_EVENT, endpoint.id, this.now());
    return eventId;
  }

  /**
   * Whether one of the tenant's enabled endpoints subscribes to a type starting with `typePrefix`
   * (`'job.'`: is it worth watching this tenant's jobs). On the async-job hot path, so answered from
   * memory for a few seconds: an endpoint made on another gateway counts from then on.
   */
  async subscribes(tenant: string, typePrefix: string): Promise<boolean> {
    const cached = this.cache.get(tenant);
    const endpoints = cached && this.now() - cached.at < this.cacheMs ? cached.endpoints : await this.refresh(tenant);
    return endpoints.some((e) => e.enabled && e.events.some((t) => t.startsWith(typePrefix)));
  }

  /** Drops what this process remembers of a tenant's endpoints (after an admin changed them here). */
  forget(tenant: string): void {
    this.cache.delete(tenant);
  }

  private async refresh(tenant: string): Promise<WebhookEndpoint[]> {
    const endpoints = await this.endpoints.list(tenant);
    this.remember(tenant, endpoints);
    return endpoints;
  }

  private remember(tenant: string, endpoints: WebhookEndpoint[]): void {
    // Bounded: tenants come and go; an entry past its age is worthless anyway.
    if (this.cache.size >= 10_000) this.cache.clear();
    this.cache.set(tenant, { at: this.now(), endpoints });
  }

  private async enqueue(targets: readonly WebhookEndpoint[], eventId: string, type: DeliveredEventType, objectId: string, createdAtMs: number): Promise<void> {
    const body = eventBody({ id: eventId, object: 'event', type, created_at: Math.floor(createdAtMs / 1000), data: { id: objectId } });
    const opts = deliveryJobOptions(this.opts.retry);
    await this.queue.addBulk(
      targets.map((e) => ({
        name: DELIVERY_JOB,
        data: { endpointId: e.id, eventId, type, body },
        opts: { ...opts, jobId: deliveryJobId(e.id, eventId) },
      })),
    );
  }
}
