import { posix } from 'node:path';
import type { FastifyInstance, FastifyRequest } from 'fastify';
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
    if (!isApiRequest(req)) return;
    await inSpan('authenticate', () => access.admit(req, reply));
  });
}

/**
 * Whether a request is for the /v1 API. The matched route decides: the router
 * percent-decodes the path, so `/%761/chat/completions` reaches the chat
 * handler while its raw URL does not start with `/v1/`. A request no route
 * matched (its body is still read, for the 404 handler) counts as /v1 when any
 * reading of its path does (decoded, slashes collapsed, dot segments resolved,
 * any case): a proxy in front may normalise what this router does not.
 */
export function isApiRequest(req: FastifyRequest): boolean {
  const route = req.routeOptions.url;
  if (route !== undefined && isApiPath(route)) return true;
  return isApiPath(normalisePath(req.url));
}

function isApiPath(path: string): boolean {
  return path === '/v1' || path.startsWith('/v1/');
}

/** Decodings applied at most: `%2576` is `%76` once and `v` twice. */
const MAX_DECODINGS = 3;

/** The path of `url` as the most lenient router would read it, lower-cased; a path that cannot be decoded reads as /v1 (fail closed). */
export function normalisePath(url: string): string {
  let path = url.split(/[?#]/, 1)[0] ?? '';
  for (let i = 0; i < MAX_DECODINGS && path.includes('%'); i++) {
    try {
      path = decodeURIComponent(path);
    } catch {
      return '/v1/';
    }
  }
  // `;` starts matrix parameters for some routers (find-my-way's useSemicolonDelimiter).
  path = path.split(';', 1)[0] ?? '';
  return posix.normalize(`/${path.replace(/\\/g, '/')}`).toLowerCase();
}
