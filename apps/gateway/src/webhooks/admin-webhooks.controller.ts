import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Patch, Post, Query, UseGuards } from '@nestjs/common';
import type { AuditLog, Principal } from '@fastvlm/security';
import type { DeliveryLogEntry } from '@fastvlm/webhooks';
import { parseOr400 } from '../admin/admin-views';
import { ApiKeyGuard, Caller } from '../http/auth.guard';
import { RequireScope } from '../security/require-scope';
import { AUDIT_LOG } from '../security/tokens';
import { WebhookAdmin } from './webhook-admin.service';
import { CreateEndpointBody, DeliveriesQuery, PatchEndpointBody, RotateSecretBody, endpointView, type EndpointView } from './webhook-views';

type WithSecret = EndpointView & { secret: string };

/**
 * `/v1/admin/webhooks`: tenants' webhook endpoints (admin scope). A secret's
 * value is in the answer that made it only; every change is audited.
 */
@Controller('v1/admin/webhooks')
@UseGuards(ApiKeyGuard)
@RequireScope('admin')
export class AdminWebhooksController {
  constructor(
    @Inject(WebhookAdmin) private readonly admin: WebhookAdmin,
    @Inject(AUDIT_LOG) private readonly audit: AuditLog,
  ) {}

  @Post()
  @HttpCode(201)
  async create(@Caller() caller: Principal, @Body() body: unknown): Promise<WithSecret> {
    const { endpoint, secret } = await this.admin.create(parseOr400(CreateEndpointBody, body, 'webhook endpoint'));
    await this.audit.record({ type: 'admin_action', action: 'webhook_created', actor: caller.keyId, tenant: endpoint.tenant, target: endpoint.id });
    return { ...endpointView(endpoint, Date.now()), secret };
  }

  @Get()
  async list(@Query('tenant') tenant?: string): Promise<{ object: 'list'; data: EndpointView[] }> {
    const now = Date.now();
    return { object: 'list', data: (await this.admin.list(tenant)).map((e) => endpointView(e, now)) };
  }

  @Get(':id')
  async get(@Param('id') id: string): Promise<EndpointView> {
    return endpointView(await this.admin.get(id), Date.now());
  }

  @Patch(':id')
  async patch(@Caller() caller: Principal, @Param('id') id: string, @Body() body: unknown): Promise<EndpointView> {
    const patch = parseOr400(PatchEndpointBody, body, 'webhook endpoint change');
    const e = await this.admin.update(id, patch);
    await this.audit.record({ type: 'admin_action', action: 'webhook_changed', actor: caller.keyId, tenant: e.tenant, target: `${id}:${Object.keys(patch).join(',')}` });
    return endpointView(e, Date.now());
  }

  @Delete(':id')
  async delete(@Caller() caller: Principal, @Param('id') id: string): Promise<{ id: string; object: 'webhook_endpoint.deleted'; deleted: true }> {
    const e = await this.admin.delete(id);
    await this.audit.record({ type: 'admin_action', action: 'webhook_deleted', actor: caller.keyId, tenant: e.tenant, target: id });
    return { id, object: 'webhook_endpoint.deleted', deleted: true };
  }

  /** Rotation: a new secret (in this answer only); the previous ones keep signing for `expire_previous_in_seconds` (default a day). */
  @Post(':id/secrets')
  @HttpCode(201)
  async rotate(@Caller() caller: Principal, @Param('id') id: string, @Body() body: unknown): Promise<WithSecret> {
    const input = parseOr400(RotateSecretBody, body, 'secret rotation');
    const { endpoint, secret } = await this.admin.rotateSecret(id, input?.expire_previous_in_seconds);
    await this.audit.record({ type: 'admin_action', action: 'webhook_secret_rotated', actor: caller.keyId, tenant: endpoint.tenant, target: id });
    return { ...endpointView(endpoint, Date.now()), secret };
  }

  @Delete(':id/secrets/:secretId')
  async removeSecret(@Caller() caller: Principal, @Param('id') id: string, @Param('secretId') secretId: string): Promise<EndpointView> {
    const e = await this.admin.removeSecret(id, secretId);
    await this.audit.record({ type: 'admin_action', action: 'webhook_secret_deleted', actor: caller.keyId, tenant: e.tenant, target: `${id}:${secretId}` });
    return endpointView(e, Date.now());
  }

  /** The endpoint's recent attempts, newest first. */
  @Get(':id/deliveries')
  async deliveries(@Param('id') id: string, @Query() query: unknown): Promise<{ object: 'list'; data: DeliveryLogEntry[] }> {
    const { limit } = parseOr400(DeliveriesQuery, query, 'query');
    return { object: 'list', data: await this.admin.deliveryLog(id, limit) };
  }

  /** Sends a `webhook.test` event to this endpoint (whatever it subscribes to), through the queue like any other. */
  @Post(':id/test')
  @HttpCode(202)
  async test(@Param('id') id: string): Promise<{ object: 'webhook_test'; event_id: string }> {
    return { object: 'webhook_test', event_id: await this.admin.sendTest(id) };
  }
}
