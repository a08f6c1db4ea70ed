import type { FastifyInstance } from 'fastify';
import { inSpan } from '@fastvlm/observability';
import type { AccessControl } from './access-control';

/**
 * Authenticates and rate-limits every /v1 request in `onRequest`, before
 * Fastify reads the body: an unauthenticated, forbidden or over-limit client
 * cannot make the gateway receive and parse megabytes. (ApiKeyGuard still
 * runs on each route for scopes, and authenticates anything this missed.)
 */
export function installAccessHook(fastify: FastifyInstance, access: AccessControl): void {
  fastify.addHook('onRequest', async (req, reply) => {
    if (!req.url.startsWith('/v1/')) return;
    await inSpan('authenticate', () => access.admit(req, reply));
  });
}
