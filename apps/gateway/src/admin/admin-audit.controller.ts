import { Controller, Get, Inject, Query, UseGuards } from '@nestjs/common';
import { z } from 'zod';
import { AUDIT_TYPES, type AuditEvent, type AuditLog } from '@fastvlm/security';
import { ApiKeyGuard } from '../http/auth.guard';
import { RequireScope } from '../security/require-scope';
import { AUDIT_LOG } from '../security/tokens';
import { parseOr400 } from './admin-views';

const AuditQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  before: z.string().regex(/^\d+-\d+$/).optional(),
  type: z.enum(AUDIT_TYPES).optional(),
  tenant: z.string().max(64).optional(),
});

/** `/v1/admin/audit`: security events, newest first (admin scope). Page back with `before=<id of the last entry>`. */
@Controller('v1/admin/audit')
@UseGuards(ApiKeyGuard)
@RequireScope('admin')
export class AdminAuditController {
  constructor(@Inject(AUDIT_LOG) private readonly audit: AuditLog) {}

  @Get()
  async list(@Query() query: unknown): Promise<{ object: 'list'; data: (AuditEvent & { id: string; at: number })[]; next_before: string | null }> {
    const q = parseOr400(AuditQuery, query, 'query');
    const entries = await this.audit.read({ limit: q.limit, ...(q.before ? { before: q.before } : {}), ...(q.type ? { type: q.type } : {}), ...(q.tenant ? { tenant: q.tenant } : {}) });
    return { object: 'list', data: entries.map((e) => ({ id: e.id, at: e.at, ...e.event })), next_before: entries.length === q.limit ? (entries.at(-1)?.id ?? null) : null };
  }
}
