import { Controller, Get, Header, Inject, Query, UseGuards } from '@nestjs/common';
import type { Principal } from '@fastvlm/security';
import { ApiKeyGuard, Caller } from '../http/auth.guard';
import { RequireScope } from '../security/require-scope';
import type { UsageListView } from './usage-query';
import { UsageService } from './usage.service';

/**
 * `GET /v1/usage`: the caller's tenant's metered usage. Scope `jobs:read`: usage
 * is a read of the tenant's own work, like its jobs; another tenant's is never
 * reachable here (a `tenant` parameter is refused).
 */
@Controller('v1/usage')
@UseGuards(ApiKeyGuard)
export class UsageController {
  constructor(@Inject(UsageService) private readonly usage: UsageService) {}

  @Get()
  @RequireScope('jobs:read')
  @Header('cache-control', 'no-store')
  read(@Caller() caller: Principal, @Query() query: unknown): Promise<UsageListView> {
    return this.usage.read(query, { tenant: caller.tenant });
  }
}

/** `GET /v1/admin/usage`: any tenant's usage, or every tenant's when `tenant` is left out (admin scope). */
@Controller('v1/admin/usage')
@UseGuards(ApiKeyGuard)
@RequireScope('admin')
export class AdminUsageController {
  constructor(@Inject(UsageService) private readonly usage: UsageService) {}

  @Get()
  @Header('cache-control', 'no-store')
  read(@Query() query: unknown): Promise<UsageListView> {
    return this.usage.read(query, { admin: true });
  }
}
