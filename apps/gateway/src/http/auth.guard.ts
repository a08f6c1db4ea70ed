import { Inject, Injectable, createParamDecorator, type CanActivate, type ExecutionContext } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import type { Principal, StaticApiKeys } from '@fastvlm/security';
import { API_KEYS } from '../infra/tokens';

type AuthedRequest = FastifyRequest & { principal?: Principal };

/** Authenticates `Authorization: Bearer <key>` and attaches the tenant to the request. */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  constructor(@Inject(API_KEYS) private readonly keys: StaticApiKeys) {}

  canActivate(ctx: ExecutionContext): boolean {
    const req = ctx.switchToHttp().getRequest<AuthedRequest>();
    req.principal = this.keys.authenticate(req.headers.authorization);
    return true;
  }
}

/** The authenticated principal (only on routes behind ApiKeyGuard). */
export const Caller = createParamDecorator((_: unknown, ctx: ExecutionContext): Principal => {
  const p = ctx.switchToHttp().getRequest<AuthedRequest>().principal;
  if (!p) throw new Error('Caller used on a route without ApiKeyGuard');
  return p;
});
