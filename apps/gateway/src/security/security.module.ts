import { Global, Module, type DynamicModule } from '@nestjs/common';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { RedisKeys } from '@fastvlm/contracts';
import {
  ApiKeyStore,
  AuditLog,
  Authenticator,
  BootstrapKeys,
  JobQuota,
  QwenTokenCounter,
  TenantSettingsStore,
  WindowLimiter,
  type Resolver,
} from '@fastvlm/security';
import { CONFIG, type GatewayConfig } from '../config';
import { LOGGER } from '../http/logger';
import { KEYS, REDIS } from '../infra/tokens';
import { Admission } from '../limits/admission.service';
import { BacklogGate } from '../limits/backlog';
import { IMAGE_URL_RESOLVER, ImageIntake } from '../intake/image-intake';
import { RequestGate } from '../intake/request-gate';
import { AccessControl } from './access-control';
import { RejectionAudit } from './rejection-audit';
import { tenantDefaults } from './security-config';
import * as S from './tokens';

type C = GatewayConfig;

/**
 * Keys, tenants, limits and the audit log, all in the queue Redis (which
 * never evicts: an evicted key record or counter would silently change who
 * may do what).
 */
@Global()
@Module({
  providers: [
    { provide: S.API_KEY_STORE, inject: [REDIS, KEYS], useFactory: (r: Redis, k: RedisKeys) => new ApiKeyStore(r, k.shared) },
    { provide: S.BOOTSTRAP_KEYS, inject: [CONFIG], useFactory: (c: C) => new BootstrapKeys(c.FASTVLM_API_KEYS) },
    { provide: S.TENANT_SETTINGS, inject: [REDIS, KEYS, CONFIG], useFactory: (r: Redis, k: RedisKeys, c: C) => new TenantSettingsStore(r, k.shared, tenantDefaults(c)) },
    {
      provide: S.AUTHENTICATOR,
      inject: [S.API_KEY_STORE, S.BOOTSTRAP_KEYS, S.TENANT_SETTINGS, REDIS, LOGGER],
      useFactory: (store: ApiKeyStore, boot: BootstrapKeys, t: TenantSettingsStore, r: Redis, l: Logger) =>
        new Authenticator(store, boot, {
          defaults: t.defaultSettings,
          tenantSettingsJson: (tenant) => r.get(t.key(tenant)),
          onTouchError: (e) => l.warn({ err: e instanceof Error ? e.message : String(e) }, 'could not record key use'),
        }),
    },
    { provide: S.WINDOW_LIMITER, inject: [REDIS], useFactory: (r: Redis) => new WindowLimiter(r) },
    { provide: S.JOB_QUOTA, inject: [REDIS, KEYS, CONFIG], useFactory: (r: Redis, k: RedisKeys, c: C) => new JobQuota(r, k.shared, (id) => k.job(id), { setTtlMs: c.JOB_TTL_S * 1000 }) },
    {
      provide: S.AUDIT_LOG,
      inject: [REDIS, KEYS, CONFIG, LOGGER],
      useFactory: (r: Redis, k: RedisKeys, c: C, l: Logger) =>
        new AuditLog(r, k.shared, {
          maxEntries: c.AUDIT_MAX_ENTRIES,
          maxAgeMs: c.AUDIT_RETENTION_DAYS * 86_400_000,
          sink: (e) => l.info({ audit: e }, 'audit'),
          onError: (e) => l.warn({ err: e instanceof Error ? e.message : String(e) }, 'could not write the audit log'),
        }),
    },
    { provide: S.TOKEN_COUNTER, useFactory: () => new QwenTokenCounter() },
    BacklogGate,
    AccessControl,
    Admission,
    ImageIntake,
    RejectionAudit,
    RequestGate,
  ],
  exports: [
    S.API_KEY_STORE, S.BOOTSTRAP_KEYS, S.TENANT_SETTINGS, S.AUTHENTICATOR, S.WINDOW_LIMITER, S.JOB_QUOTA, S.AUDIT_LOG, S.TOKEN_COUNTER,
    BacklogGate, AccessControl, Admission, ImageIntake, RejectionAudit, RequestGate,
  ],
})
export class SecurityModule {
  /** `imageUrlResolver` replaces DNS for image URLs (tests); null uses the system resolver. */
  static forRoot(imageUrlResolver: Resolver | null): DynamicModule {
    return { module: SecurityModule, providers: [{ provide: IMAGE_URL_RESOLVER, useValue: imageUrlResolver }], exports: [IMAGE_URL_RESOLVER] };
  }
}
