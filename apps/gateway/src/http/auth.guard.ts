import { Inject, Injectable, createParamDecorator, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { FastifyReply } from 'fastify';
import { inSpan } from '@fastvlm/observability';
import type { Principal, Scope } from '@fastvlm/security';
import { AccessControl, type AuthedRequest } from '../security/access-control';
import { REQUIRED_SCOPE } from '../security/require-scope';

/**
 * Authenticates `Authorization: Bearer <key>`, attaches the principal (tenant,
 * key id, scopes, limits) and enforces the route's `@RequireScope`. Requests
 * under /v1 were already authenticated and rate-limited by the onRequest hook,
 * before their body was read; other routes are authenticated here.
 */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  constructor(
    @Inject(Reflector) private readonly reflector: Reflector,
    @Inject(AccessControl) private readonly access: AccessControl,
  ) {}

  async canActivate(ctx: ExecutionContext): Promise<boolean> {
    const http = ctx.switchToHttp();
    const req = http.getRequest<AuthedRequest>();
    const p = req.principal ?? (await inSpan('authenticate', () => this.access.admit(req, http.getResponse<FastifyReply>())));
    const scope = this.reflector.getAllAndOverride<Scope | undefined>(REQUIRED_SCOPE, [ctx.getHandler(), ctx.getClass()]);
    if (scope) this.access.requireScope(req, p, scope);
    return true;
  }
}

/** The authenticated principal (only on routes behind ApiKeyGuard). */
export const Caller = createParamDecorator((_: unknown, ctx: ExecutionContext): Principal => {
  const p = ctx.switchToHttp().getRequest<AuthedRequest>().principal;
  if (!p) throw new Error('Caller used on a route without ApiKeyGuard');
  return p;
});
