import { parseArgs } from 'node:util';
import { AppError } from '@fastvlm/contracts';
import type { AuditLog } from './audit-log';
import type { ApiKeyRecord, ApiKeyStore } from './key-store';
import type { LayoutMigration } from './layout-migration';
import { DEFAULT_SCOPES, parseScopes } from './scopes';

export const KEYS_USAGE = `usage:
  npm run keys -- create --tenant <tenant> --name <name> [--scopes infer,jobs:read,admin] [--json]
  npm run keys -- list [--tenant <tenant>] [--json]
  npm run keys -- revoke <key id>
  npm run keys -- migrate-layout   (once, when upgrading from the layout before Redis Cluster support)
Environment: REDIS_URL (or REDIS_SENTINELS / REDIS_CLUSTER_NODES), FASTVLM_REDIS_PREFIX (as for the gateway).`;

export interface KeysCliDeps {
  store: ApiKeyStore;
  audit: AuditLog;
  out: (line: string) => void;
  now?: () => number;
  /** Moves the old layout's keys (see `migrateKeyLayout`). */
  migrateLayout?: () => Promise<LayoutMigration>;
}

const iso = (ms: number | null): string => (ms === null ? '-' : new Date(ms).toISOString());

function row(r: ApiKeyRecord): string {
  return [r.id, r.tenant, r.name, r.scopes.join(','), `created ${iso(r.createdAt)}`, `last used ${iso(r.lastUsedAt)}`, r.revokedAt ? `REVOKED ${iso(r.revokedAt)}` : 'active'].join('  ');
}

/** The `keys` command; returns the exit code. Every change is written to the audit log with actor `cli`. */
export async function runKeysCli(argv: string[], deps: KeysCliDeps): Promise<number> {
  const now = deps.now ?? Date.now;
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { tenant: { type: 'string' }, name: { type: 'string' }, scopes: { type: 'string' }, json: { type: 'boolean', default: false } },
  });
  const [command, arg] = positionals;
  try {
    switch (command) {
      case 'create': {
        if (!values.tenant || !values.name) throw new AppError('invalid_request', 'create needs --tenant and --name');
        const scopes = values.scopes ? parseScopes(values.scopes) : [...DEFAULT_SCOPES];
        const { key, record } = await deps.store.create({ tenant: values.tenant, name: values.name, scopes, now: now() });
        await deps.audit.record({ type: 'key_created', keyId: record.id, tenant: record.tenant, scopes: record.scopes, actor: 'cli' });
        if (values.json) deps.out(JSON.stringify({ ...record, key }));
        else {
          deps.out(row(record));
          deps.out(`key: ${key}`);
          deps.out('Store it now: only its SHA-256 is kept, it cannot be shown again.');
        }
        return 0;
      }
      case 'list': {
        const records = await deps.store.list(values.tenant);
        if (values.json) deps.out(JSON.stringify(records));
        else for (const r of records) deps.out(row(r));
        return 0;
      }
      case 'revoke': {
        if (!arg) throw new AppError('invalid_request', 'revoke needs a key id (see list)');
        const r = await deps.store.revoke(arg, now());
        if (!r) {
          deps.out(`no key with id ${arg}`);
          return 1;
        }
        await deps.audit.record({ type: 'key_revoked', keyId: r.id, tenant: r.tenant, actor: 'cli' });
        deps.out(row(r));
        return 0;
      }
      case 'migrate-layout': {
        if (!deps.migrateLayout) throw new AppError('invalid_request', 'migrate-layout is not available here');
        const r = await deps.migrateLayout();
        deps.out(`moved ${r.moved} keys into the shared slot`);
        for (const k of r.kept) deps.out(`kept ${k}: its new name exists already (compare the two and delete one)`);
        return r.kept.length === 0 ? 0 : 1;
      }
      default:
        deps.out(KEYS_USAGE);
        return 2;
    }
  } catch (e) {
    if (e instanceof AppError) {
      deps.out(`error: ${e.message}`);
      return 2;
    }
    throw e;
  }
}
