import { Inject, Injectable } from '@nestjs/common';
import { AppError } from '@fastvlm/contracts';
import { TooMuchUsage, groupUsage, type UsageStore } from '@fastvlm/jobs';
import { MAX_ALL_TENANT_KEYS, parseUsageQuery, usageView, type UsageListView } from './usage-query';
import { USAGE_STORE } from './tokens';

/** Reads metered usage for the two routes: one tenant's (its own keys), or any or every tenant's (admin). */
@Injectable()
export class UsageService {
  constructor(@Inject(USAGE_STORE) private readonly store: UsageStore) {}

  async read(rawQuery: unknown, scope: { tenant: string } | { admin: true }): Promise<UsageListView> {
    const admin = 'admin' in scope;
    const q = parseUsageQuery(rawQuery, { admin, now: Date.now() });
    const tenant = admin ? q.tenant : scope.tenant;
    try {
      const cells = await this.store.read({ tenant, fromHour: q.fromHour, toHour: q.toHour, maxKeys: MAX_ALL_TENANT_KEYS });
      return usageView(q, groupUsage(cells, q.grouping, q.fromHour, q.toHour));
    } catch (e) {
      if (e instanceof TooMuchUsage) {
        throw new AppError('invalid_request', `The range holds usage of ${e.keys} tenant-hours, more than ${e.max} read at once: name a tenant or shorten the range.`, 'tenant');
      }
      throw e;
    }
  }
}
