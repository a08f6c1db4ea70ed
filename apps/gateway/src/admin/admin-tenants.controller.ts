import { Body, Controller, Get, Inject, Param, Patch, UseGuards } from '@nestjs/common';
import type { AuditLog, Principal, TenantOverrides, TenantSettings, TenantSettingsStore } from '@fastvlm/security';
import { ApiKeyGuard, Caller } from '../http/auth.guard';
import { RequireScope } from '../security/require-scope';
import { AUDIT_LOG, TENANT_SETTINGS } from '../security/tokens';

interface TenantView {
  object: 'tenant';
  tenant: string;
  /** What applies now: overrides over the deployment's defaults. */
  settings: TenantSettings;
  overrides: TenantOverrides;
}

/** `/v1/admin/tenants/{tenant}`: a tenant's limits and switches (admin scope). Changes apply to the next request on every pod. */
@Controller('v1/admin/tenants')
@UseGuards(ApiKeyGuard)
@RequireScope('admin')
export class AdminTenantsController {
  constructor(
    @Inject(TENANT_SETTINGS) private readonly tenants: TenantSettingsStore,
    @Inject(AUDIT_LOG) private readonly audit: AuditLog,
  ) {}

  @Get(':tenant')
  async get(@Param('tenant') tenant: string): Promise<TenantView> {
    return { object: 'tenant', tenant, ...(await this.tenants.get(tenant)) };
  }

  /** Merge patch: fields set a value, `null` returns a field to the default. */
  @Patch(':tenant')
  async patch(@Caller() caller: Principal, @Param('tenant') tenant: string, @Body() body: unknown): Promise<TenantView> {
    const next = await this.tenants.patch(tenant, body);
    await this.audit.record({ type: 'admin_action', action: 'tenant_settings_changed', actor: caller.keyId, tenant, target: Object.keys(body ?? {}).join(',') });
    return { object: 'tenant', tenant, ...next };
  }
}
