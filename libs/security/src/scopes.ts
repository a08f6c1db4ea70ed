import { AppError } from '@fastvlm/contracts';

/**
 * What a key may do: `infer` submits and cancels work, `jobs:read` reads jobs
 * and their events, `admin` manages keys, tenant settings and reads the audit
 * log (an operator scope: it spans every tenant).
 */
export const SCOPES = ['infer', 'jobs:read', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

/** Scopes a key gets when none are named (bootstrap keys, CLI without --scopes). */
export const DEFAULT_SCOPES: readonly Scope[] = ['infer', 'jobs:read'];

export function isScope(s: string): s is Scope {
  return (SCOPES as readonly string[]).includes(s);
}

/** Parses `infer,jobs:read` (commas or `+`); unknown or empty lists are an `invalid_request` naming `field`. */
export function parseScopes(list: string | readonly string[], field = 'scopes'): Scope[] {
  const items = (typeof list === 'string' ? list.split(/[,+]/) : list).map((s) => s.trim()).filter((s) => s.length > 0);
  const scopes: Scope[] = [];
  for (const s of items) {
    if (!isScope(s)) throw new AppError('invalid_request', `Unknown scope "${s}"; known scopes: ${SCOPES.join(', ')}.`, field);
    if (!scopes.includes(s)) scopes.push(s);
  }
  if (scopes.length === 0) throw new AppError('invalid_request', `Name at least one scope (${SCOPES.join(', ')}).`, field);
  return scopes;
}
