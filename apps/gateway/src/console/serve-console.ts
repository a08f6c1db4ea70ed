import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';

/**
 * The console as `npm run build` writes it: next to the gateway bundle
 * (dist/apps/gateway/console), or, when the gateway runs from source (tests),
 * in the repository's dist folder.
 */
export function consoleDir(explicit?: string): string | null {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = explicit ? [explicit] : [join(here, 'console'), resolve(here, '..', '..', '..', '..', 'dist', 'apps', 'gateway', 'console')];
  return candidates.find((d) => existsSync(join(d, 'index.html'))) ?? null;
}

/** Only this origin's files and API; no inline code, no framing. */
const CONTENT_SECURITY_POLICY =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/** Serves the web console's static files at /console/ (no CDN: everything it needs is in the build). */
export async function serveConsole(app: NestFastifyApplication, dir: string | null): Promise<void> {
  if (!dir) {
    app.getHttpAdapter().getInstance().get('/console/*', (_req, reply) => {
      void reply.code(404).type('text/plain').send('The console is not built: run `npm run build`.');
    });
    return;
  }
  await app.register(fastifyStatic, {
    root: dir,
    prefix: '/console/',
    redirect: true,
    decorateReply: false,
    setHeaders: (reply) => {
      void reply.header('content-security-policy', CONTENT_SECURITY_POLICY).header('x-content-type-options', 'nosniff').header('referrer-policy', 'no-referrer');
    },
  });
}
