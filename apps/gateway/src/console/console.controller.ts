import { Controller, Get, Header, Inject, UseGuards } from '@nestjs/common';
import type { Principal } from '@fastvlm/security';
import { ApiKeyGuard, Caller } from '../http/auth.guard';
import { RequireScope } from '../security/require-scope';
import { OverviewService } from './overview.service';
import type { ConsoleOverview } from './overview-types';

/** Data behind the web console's cluster view; the key decides whose jobs are listed. */
@Controller('v1/console')
@UseGuards(ApiKeyGuard)
export class ConsoleController {
  constructor(@Inject(OverviewService) private readonly overview: OverviewService) {}

  @Get('overview')
  @RequireScope('jobs:read')
  @Header('cache-control', 'no-store')
  read(@Caller() caller: Principal): Promise<ConsoleOverview> {
    return this.overview.read(caller.tenant);
  }
}
