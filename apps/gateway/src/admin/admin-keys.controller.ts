import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Post, Query, UseGuards } from '@nestjs/common';
import { AppError } from '@fastvlm/contracts';
import { assertTenant, type ApiKeyStore, type AuditLog, type BootstrapKeys, type Principal } from '@fastvlm/security';
import { ApiKeyGuard, Caller } from '../http/auth.guard';
import { RequireScope } from '../security/require-scope';
import { API_KEY_STORE, AUDIT_LOG, BOOTSTRAP_KEYS } from '../security/tokens';
import { CreateKeyBody, bootstrapView, keyView, parseOr400, type KeyView } from './admin-views';

/** `/v1/admin/keys`: create, list and revoke API keys (admin scope; operators, across tenants). */
@Controller('v1/admin/keys')
@UseGuards(ApiKeyGuard)
@RequireScope('admin')
export class AdminKeysController {
  constructor(
    @Inject(API_KEY_STORE) private readonly store: ApiKeyStore,
    @Inject(BOOTSTRAP_KEYS) private readonly bootstrap: BootstrapKeys,
    @Inject(AUDIT_LOG) private readonly audit: AuditLog,
  ) {}

  @Get()
  async list(@Query('tenant') tenant?: string): Promise<{ object: 'list'; data: KeyView[] }> {
    if (tenant !== undefined) assertTenant(tenant);
    const stored = (await this.store.list(tenant)).map(keyView);
    const boot = this.bootstrap.list().filter((b) => tenant === undefined || b.tenant === tenant).map(bootstrapView);
    return { object: 'list', data: [...stored, ...boot] };
  }

  /** The key is in this response only; it is stored as SHA-256 and cannot be shown again. */
  @Post()
  @HttpCode(201)
  async create(@Caller() caller: Principal, @Body() body: unknown): Promise<KeyView & { key: string }> {
    const input = parseOr400(CreateKeyBody, body, 'key');
    const { key, record } = await this.store.create({ ...input, now: Date.now() });
    await this.audit.record({ type: 'key_created', keyId: record.id, tenant: record.tenant, scopes: record.scopes, actor: caller.keyId });
    return { ...keyView(record), key };
  }

  @Get(':id')
  async get(@Param('id') id: string): Promise<KeyView> {
    const r = await this.store.get(id);
    if (!r) throw new AppError('not_found', `No API key with id ${id}.`, 'id');
    return keyView(r);
  }

  /** Revokes at once: every gateway looks keys up on each request, so the next request with it is refused. */
  @Delete(':id')
  async revoke(@Caller() caller: Principal, @Param('id') id: string): Promise<KeyView> {
    if (id.startsWith('boot_')) {
      throw new AppError('invalid_request', 'Bootstrap keys come from FASTVLM_API_KEYS; remove them there and restart the gateways.', 'id');
    }
    const r = await this.store.revoke(id, Date.now());
    if (!r) throw new AppError('not_found', `No API key with id ${id}.`, 'id');
    await this.audit.record({ type: 'key_revoked', keyId: r.id, tenant: r.tenant, actor: caller.keyId });
    return keyView(r);
  }
}
