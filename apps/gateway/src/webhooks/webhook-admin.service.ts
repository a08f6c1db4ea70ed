import { Inject, Injectable } from '@nestjs/common';
import { AppError } from '@fastvlm/contracts';
import { assertTenant } from '@fastvlm/security';
import {
  DEFAULT_WEBHOOK_EVENTS,
  assertWebhookUrl,
  type DeliveryLog,
  type DeliveryLogEntry,
  type EndpointPatch,
  type EndpointStore,
  type WebhookEndpoint,
  type WebhookEventType,
  type WebhookEvents,
} from '@fastvlm/webhooks';
import { WEBHOOK_ADDRESS_POLICY, WEBHOOK_DELIVERY_LOG, WEBHOOK_ENDPOINTS, WEBHOOK_EVENTS } from './tokens';

/** Default time the previous secrets keep signing after a rotation: a day to deploy the new one. */
const DEFAULT_OVERLAP_S = 86_400;

export interface NewEndpointInput {
  tenant: string;
  url: string;
  events?: WebhookEventType[];
  description?: string;
}

/** The admin API's use cases on webhook endpoints; the controller maps HTTP onto these. */
@Injectable()
export class WebhookAdmin {
  constructor(
    @Inject(WEBHOOK_ENDPOINTS) private readonly store: EndpointStore,
    @Inject(WEBHOOK_DELIVERY_LOG) private readonly deliveries: DeliveryLog,
    @Inject(WEBHOOK_EVENTS) private readonly events: WebhookEvents,
    @Inject(WEBHOOK_ADDRESS_POLICY) private readonly isAllowedAddress: (ip: string) => boolean,
  ) {}

  async create(input: NewEndpointInput): Promise<{ endpoint: WebhookEndpoint; secret: string }> {
    assertTenant(input.tenant);
    await assertWebhookUrl(input.url, this.isAllowedAddress);
    const made = await this.store.create({
      tenant: input.tenant,
      url: input.url,
      events: dedupe(input.events ?? DEFAULT_WEBHOOK_EVENTS),
      description: input.description ?? '',
      now: Date.now(),
    });
    this.events.forget(input.tenant);
    return made;
  }

  async list(tenant: string | undefined): Promise<WebhookEndpoint[]> {
    if (tenant === undefined) throw new AppError('invalid_request', 'Name the tenant whose webhook endpoints to list: ?tenant=…', 'tenant');
    assertTenant(tenant);
    return this.store.list(tenant);
  }

  async get(id: string): Promise<WebhookEndpoint> {
    return orNotFound(id, await this.store.get(knownShape(id)));
  }

  async update(id: string, patch: EndpointPatch): Promise<WebhookEndpoint> {
    if (patch.url !== undefined) await assertWebhookUrl(patch.url, this.isAllowedAddress);
    const e = orNotFound(id, await this.store.update(knownShape(id), patch.events ? { ...patch, events: dedupe(patch.events) } : patch));
    this.events.forget(e.tenant);
    return e;
  }

  async delete(id: string): Promise<WebhookEndpoint> {
    const e = orNotFound(id, await this.store.delete(knownShape(id)));
    this.events.forget(e.tenant);
    return e;
  }

  async rotateSecret(id: string, expirePreviousInSeconds: number | undefined): Promise<{ endpoint: WebhookEndpoint; secret: string }> {
    const made = await this.store.rotateSecret(knownShape(id), Date.now(), (expirePreviousInSeconds ?? DEFAULT_OVERLAP_S) * 1000);
    if (!made) throw notFound(id);
    return made;
  }

  async removeSecret(id: string, secretId: string): Promise<WebhookEndpoint> {
    const r = await this.store.removeSecret(knownShape(id), secretId, Date.now());
    switch (r.outcome) {
      case 'removed':
        return r.endpoint;
      case 'no_endpoint':
        throw notFound(id);
      case 'no_secret':
        throw new AppError('not_found', `Webhook endpoint ${id} has no secret ${secretId}.`, 'secret_id');
      case 'last':
        throw new AppError('invalid_request', 'This is the only secret that still signs; rotate first (POST …/secrets), then delete it.', 'secret_id');
    }
  }

  async deliveryLog(id: string, limit: number): Promise<DeliveryLogEntry[]> {
    await this.get(id);
    return this.deliveries.read(id, limit);
  }

  /** Enqueues a `webhook.test` ping; answers its event id. */
  async sendTest(id: string): Promise<string> {
    return this.events.sendTest(await this.get(id));
  }
}

function dedupe(events: readonly WebhookEventType[]): WebhookEventType[] {
  return [...new Set(events)];
}

/** Ids this API makes; anything else names no endpoint (and never reaches Redis as a key). */
function knownShape(id: string): string {
  if (!/^whep_[A-Za-z0-9_-]{8,64}$/.test(id)) throw notFound(id);
  return id;
}

function notFound(id: string): AppError {
  return new AppError('not_found', `No webhook endpoint with id ${id}.`, 'id');
}

function orNotFound(id: string, e: WebhookEndpoint | null): WebhookEndpoint {
  if (!e) throw notFound(id);
  return e;
}
