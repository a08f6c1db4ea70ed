import { z } from 'zod';
import { AppError } from '@fastvlm/contracts';
import { SCOPES, type ApiKeyRecord, type BootstrapKey } from '@fastvlm/security';

export interface KeyView {
  id: string;
  object: 'api_key';
  source: 'redis' | 'bootstrap';
  tenant: string;
  name: string;
  scopes: readonly string[];
  created_at: number | null;
  last_used_at: number | null;
  revoked_at: number | null;
}

const sec = (ms: number | null): number | null => (ms === null ? null : Math.floor(ms / 1000));

export function keyView(r: ApiKeyRecord): KeyView {
  return {
    id: r.id,
    object: 'api_key',
    source: 'redis',
    tenant: r.tenant,
    name: r.name,
    scopes: r.scopes,
    created_at: sec(r.createdAt),
    last_used_at: sec(r.lastUsedAt),
    revoked_at: sec(r.revokedAt),
  };
}

export function bootstrapView(b: BootstrapKey): KeyView {
  return { id: b.keyId, object: 'api_key', source: 'bootstrap', tenant: b.tenant, name: 'FASTVLM_API_KEYS', scopes: b.scopes, created_at: null, last_used_at: null, revoked_at: null };
}

export const CreateKeyBody = z.strictObject({
  tenant: z.string(),
  name: z.string(),
  scopes: z.array(z.enum(SCOPES)).min(1),
});

/** Parses a body or query with `schema`; the first problem becomes a 400 naming its field. */
export function parseOr400<T extends z.ZodType>(schema: T, value: unknown, what: string): z.infer<T> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const param = issue?.path.join('.') ?? '';
  throw new AppError('invalid_request', `Invalid ${what}: ${param ? `${param}: ` : ''}${issue?.message ?? 'malformed'}`, param || undefined);
}
