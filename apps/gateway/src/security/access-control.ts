import { Inject, Injectable } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { BlockList } from 'node:net';
import { AppError, type RedisKeys } from '@fastvlm/contracts';
import {
  AuthError,
  LimitExceeded,
  inList,
  normalizeClientIp,
  parseCidrList,
  type Authenticator,
  type AuditLog,
  type Principal,
  type Scope,
  type WindowLimiter,
} from '@fastvlm/security';
import { CONFIG, type GatewayConfig } from '../config';
import { KEYS } from '../infra/tokens';
import { rateLimitHeaders } from '../limits/rate-limit-headers';
import { AUDIT_LOG, AUTHENTICATOR, WINDOW_LIMITER } from './tokens';

/** The caller's address is outside its tenant's allowlist. */
class NetworkRefused extends AppError {
  constructor() {
    super('forbidden', 'This API key may not be used from your network address.');
  }
}

export type AuthedRequest = FastifyRequest & { principal?: Principal };

const MINUTE_MS = 60_000;
/** Addresses remembered as blocked per process; more are forgotten (they are re-learnt on their next failure). */
const MAX_BLOCKED_ADDRESSES = 10_000;

/** `POST /v1/jobs/:id`: the route pattern, never the URL (which may hold ids or query strings). */
export function routeOf(req: FastifyRequest): string {
  return `${req.method} ${req.routeOptions.url ?? '(unmatched)'}`;
}

/**
 * Who may call: authentication, the tenant's network allowlist, scopes, and
 * the per-key and per-tenant request rates. Runs in an `onRequest` hook, so
 * an unauthenticated or over-limit request is refused before its body is read.
 */
@Injectable()
export class AccessControl {
  private readonly allowlists = new Map<string, BlockList>();
  /** Client addresses over their failed-authentication limit, until when (ms). */
  private readonly blocked = new Map<string, number>();

  constructor(
    @Inject(CONFIG) private readonly cfg: GatewayConfig,
    @Inject(AUTHENTICATOR) private readonly auth: Authenticator,
    @Inject(WINDOW_LIMITER) private readonly limiter: WindowLimiter,
    @Inject(AUDIT_LOG) private readonly audit: AuditLog,
    @Inject(KEYS) private readonly keys: RedisKeys,
  ) {}

  async admit(req: AuthedRequest, reply: FastifyReply): Promise<Principal> {
    const route = routeOf(req);
    const ip = normalizeClientIp(req.ip);
    this.refuseBlocked(ip);
    // The caller, once known: a refusal by a limit is audited under its tenant and key.
    const seen: { p: Principal | null } = { p: null };
    try {
      const { principal, limits } = await this.auth.admit(req.headers.authorization, this.limiter, {
        check: (p) => {
          seen.p = p;
          if (p.settings.ipAllowlist.length > 0 && !inList(this.allowlist(p.settings.ipAllowlist), ip)) throw new NetworkRefused();
        },
        limits: (p) => [
          { name: 'key_requests', key: `${this.keys.shared}:rl:key:${p.keyId}`, cost: 1, max: p.settings.keyRequestsPerMinute, windowMs: MINUTE_MS },
          { name: 'tenant_requests', key: `${this.keys.shared}:rl:tenant:${p.tenant}`, cost: 1, max: p.settings.requestsPerMinute, windowMs: MINUTE_MS },
        ],
      });
      void reply.headers(rateLimitHeaders(limits));
      req.principal = principal;
      return principal;
    } catch (e) {
      if (e instanceof AuthError) {
        this.audit.emit({ type: 'auth_failed', reason: e.reason, ip, route });
        await this.countFailure(ip, route);
      }
      const p = seen.p;
      if (e instanceof LimitExceeded && p) this.audit.emit({ type: 'limit_hit', limit: e.state.name, tenant: p.tenant, keyId: p.keyId, ip, route });
      if (e instanceof NetworkRefused && p) this.audit.emit({ type: 'forbidden', reason: 'ip_not_allowed', tenant: p.tenant, keyId: p.keyId, ip, route });
      throw e;
    }
  }

  /** 429 while `ip` is over its failed-authentication limit (known to this process). */
  private refuseBlocked(ip: string): void {
    const until = this.blocked.get(ip);
    if (until === undefined) return;
    const left = until - Date.now();
    if (left <= 0) {
      this.blocked.delete(ip);
      return;
    }
    throw new LimitExceeded(
      'rate_limited',
      'Too many failed authentication attempts from your address; retry after the Retry-After delay.',
      { name: 'auth_failures', limit: this.cfg.AUTH_FAILURES_PER_IP_PER_MIN, remaining: 0, resetMs: left },
      left,
    );
  }

  /**
   * Counts a failed authentication against the address, across pods. Past the
   * limit this request gets 429 instead of 401, and this process refuses the
   * address without reading Redis until the window ends (other pods learn it
   * at the address's next failure there). Guessing keys is hopeless anyway
   * (192 random bits); this keeps a misbehaving client from filling the
   * audit log and costing a key lookup per request.
   */
  private async countFailure(ip: string, route: string): Promise<void> {
    const max = this.cfg.AUTH_FAILURES_PER_IP_PER_MIN;
    if (max === 0) return;
    try {
      await this.limiter.consume([{ name: 'auth_failures', key: `${this.keys.shared}:rl:authfail:${ip}`, cost: 1, max, windowMs: MINUTE_MS }]);
    } catch (e) {
      // Without Redis the 401 stands: an outage must not turn into refusing everyone.
      if (!(e instanceof LimitExceeded)) return;
      if (this.blocked.size >= MAX_BLOCKED_ADDRESSES) this.blocked.clear();
      this.blocked.set(ip, Date.now() + e.retryAfterMs);
      this.audit.emit({ type: 'limit_hit', limit: 'auth_failures', ip, route });
      throw e;
    }
  }

  /** 403 unless the key holds `scope`. */
  requireScope(req: FastifyRequest, p: Principal, scope: Scope): void {
    if (p.scopes.includes(scope)) return;
    this.audit.emit({ type: 'forbidden', reason: 'scope', tenant: p.tenant, keyId: p.keyId, ip: normalizeClientIp(req.ip), route: routeOf(req), scope });
    throw new AppError('forbidden', `This API key lacks the "${scope}" scope this route needs.`);
  }

  private allowlist(entries: readonly string[]): BlockList {
    const cacheKey = entries.join(',');
    let list = this.allowlists.get(cacheKey);
    if (!list) {
      if (this.allowlists.size > 1_000) this.allowlists.clear();
      list = parseCidrList(entries, 'ipAllowlist');
      this.allowlists.set(cacheKey, list);
    }
    return list;
  }
}
