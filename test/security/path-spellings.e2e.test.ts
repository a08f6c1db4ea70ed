import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auth } from '../support/requests';
import { cleanupPrefix, uniquePrefix } from '../support/stack';
import { startSecureGateway, type SecureGateway } from './support/gateways';

interface Answer {
  status: number;
  code: string | null;
}

/**
 * One request with its path sent byte for byte (fetch and URL would normalise
 * some spellings away). A huge body is streamed until the gateway answers;
 * the gateway may close the socket mid-upload, which is not an error here.
 */
function send(base: string, method: string, path: string, body: Buffer | string, headers: Record<string, string> = {}): Promise<Answer> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ hostname, port, method, path, headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), ...headers } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, code: errorCode(text) });
      });
      res.on('error', reject);
    });
    // A refused upload ends in EPIPE/ECONNRESET on our side once the answer is in.
    req.on('error', () => undefined);
    req.end(body);
  });
}

function errorCode(text: string): string | null {
  try {
    return (JSON.parse(text) as { error?: { code?: string } }).error?.code ?? null;
  } catch {
    return null;
  }
}

/** Spellings of `/v1/chat/completions` the router may treat as that route (or that a proxy might). */
const SPELLINGS = [
  '/v1/chat/completions',
  '/%761/chat/completions',
  '/v%31/chat/completions',
  '/v1/%63hat/completions',
  '/%76%31/%63%68%61%74/completions',
  '//v1/chat/completions',
  '/v1//chat/completions',
  '///v1///chat/completions',
  '/V1/chat/completions',
  '/V1/Chat/Completions',
  '/v1/chat/completions/',
  '/v1/chat/completions?x=1',
  '/%2Fv1/chat/completions',
];

describe('authentication comes before the body on every spelling of a /v1 path', () => {
  const prefix = uniquePrefix();
  let gw: SecureGateway;

  beforeAll(async () => {
    gw = await startSecureGateway(prefix);
  });
  afterAll(async () => {
    await gw?.close();
    await cleanupPrefix(prefix);
  });

  it('answers 401 unauthorized, not a JSON parse error, to a keyless POST with a broken body on every spelling', async () => {
    const answers: Record<string, Answer> = {};
    for (const path of SPELLINGS) answers[path] = await send(gw.url, 'POST', path, '{ this is not json');
    const expected = Object.fromEntries(SPELLINGS.map((p) => [p, { status: 401, code: 'unauthorized' }]));
    expect(answers).toEqual(expected);
  });

  it('answers 401 to a keyless body far over the size limit on every spelling, without reading it (not 413)', async () => {
    const huge = Buffer.alloc(30 * 1024 * 1024, 0x78);
    const answers: Record<string, Answer> = {};
    for (const path of SPELLINGS) answers[path] = await send(gw.url, 'POST', path, huge);
    const expected = Object.fromEntries(SPELLINGS.map((p) => [p, { status: 401, code: 'unauthorized' }]));
    expect(answers).toEqual(expected);
  });

  it('refuses keyless GETs of other /v1 routes spelt with escapes, doubled slashes or capitals', async () => {
    const paths = ['/%761/models', '//v1/models', '/V1/MODELS', '/v1/%6Dodels', '/%761/jobs/abc', '/v1//jobs/abc/events', '/%761/admin/keys'];
    const answers: Record<string, Answer> = {};
    for (const path of paths) answers[path] = await send(gw.url, 'GET', path, '');
    expect(answers).toEqual(Object.fromEntries(paths.map((p) => [p, { status: 401, code: 'unauthorized' }])));
  });

  it('still serves an escaped spelling of a route to a caller with a key', async () => {
    const models = await send(gw.url, 'GET', '/%761/models', '', auth());
    expect(models).toEqual({ status: 200, code: null });
    // With a key the request is read: a broken body is now a 400, proving the hook let it through.
    const broken = await send(gw.url, 'POST', '/%761/chat/completions', '{ broken', auth());
    expect(broken).toEqual({ status: 400, code: 'invalid_request' });
  });

  it('leaves routes outside /v1 open, however they are spelt', async () => {
    expect((await send(gw.url, 'GET', '/health/live', '')).status).toBe(200);
    expect((await send(gw.url, 'GET', '/%68ealth/live', '')).status).toBe(200);
  });
});
