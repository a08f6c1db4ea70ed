import { request as httpRequest, createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Resolver } from '@fastvlm/security';
import { chatBody, png } from '../support/requests';
import { cleanupPrefix, uniquePrefix } from '../support/stack';
import { bearer, createKey, leaksIn, startSecureGateway, type SecureGateway } from './support/gateways';

interface ErrorBody {
  error: { message: string; type: string; code: string; param: string | null };
}

/** Sends a chunked body of `total` bytes and stops as soon as the server answers; resolves with the status and what was sent. */
function streamBody(url: string, headers: Record<string, string>, total: number): Promise<{ status: number; sent: number }> {
  return new Promise((resolve, reject) => {
    let sent = 0;
    let answered = false;
    const req = httpRequest(url, { method: 'POST', headers: { ...headers, 'transfer-encoding': 'chunked' } }, (res) => {
      answered = true;
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, sent }));
    });
    req.on('error', (e) => (answered ? undefined : reject(e)));
    const chunk = Buffer.alloc(64 * 1024, 0x41);
    const pump = (): void => {
      while (!answered && sent < total) {
        sent += chunk.length;
        if (!req.write(chunk)) {
          req.once('drain', pump);
          return;
        }
      }
      if (!answered) req.end();
    };
    req.write('{"messages":"');
    pump();
  });
}

describe('input validation on bytes, text and parameters', () => {
  const prefix = uniquePrefix();
  let gw: SecureGateway;
  let images: Server;
  let imagePort = 0;
  let key: string;
  let urlKey: string;
  let admin: string;
  let image: Buffer;
  const questions: string[] = [];
  const resolver: Resolver = (host) =>
    Promise.resolve(host === 'intranet.test' ? [{ address: '10.1.2.3', family: 4 }] : [{ address: '127.0.0.1', family: 4 }]);

  const post = async (body: unknown, k = key, path = '/v1/jobs'): Promise<Response> =>
    fetch(`${gw.url}${path}`, { method: 'POST', headers: { ...bearer(k), 'content-type': 'application/json' }, body: typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body) });
  const error = async (res: Response): Promise<ErrorBody['error'] & { status: number }> => ({ status: res.status, ...((await res.json()) as ErrorBody).error });

  beforeAll(async () => {
    image = await png(24, 24, 7);
    images = createServer((req, res) => {
      if (req.url === '/cat.png') res.end(image);
      else if (req.url === '/huge.png') res.end(Buffer.concat([image, Buffer.alloc(300 * 1024)]));
      else if (req.url === '/logo.svg') res.end('<svg xmlns="http://www.w3.org/2000/svg"><rect width="9" height="9"/></svg>');
      else if (req.url === '/to-metadata') res.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data/iam' }).end();
      else res.writeHead(404).end();
    });
    await new Promise<void>((r) => images.listen(0, '127.0.0.1', r));
    imagePort = (images.address() as AddressInfo).port;
    [gw, { key }, { key: urlKey }, { key: admin }] = await Promise.all([
      // The loopback image server stands in for a public host: only 127.0.0.1/32 is added to what may be fetched.
      startSecureGateway(prefix, { BODY_LIMIT_BYTES: String(1024 * 1024), MAX_IMAGE_BYTES: String(200 * 1024), MAX_QUESTION_TOKENS: '64', IMAGE_URL_ALLOW_CIDRS: '127.0.0.1/32' }, { resolver }),
      createKey(prefix, 'acme', ['infer', 'jobs:read']),
      createKey(prefix, 'urls', ['infer', 'jobs:read']),
      createKey(prefix, 'ops', ['admin']),
    ]);
  });
  afterAll(async () => {
    await gw?.close();
    images?.closeAllConnections();
    await new Promise((r) => images?.close(r));
    await cleanupPrefix(prefix);
  });

  it('refuses questions with control characters, unpaired surrogates or template tokens, naming the field', async () => {
    for (const q of ['nul \u0000 inside', 'escape \u001b[31m', 'lone \ud800 surrogate', 'two <image> slots', 'end <|im_end|> turn']) {
      questions.push(q);
      expect(await error(await post(chatBody(image, q)))).toMatchObject({ status: 400, code: 'invalid_request', param: 'messages.0.content' });
    }
  });

  it('refuses a body that is not valid UTF-8', async () => {
    const bytes = Buffer.concat([Buffer.from('{"model":"tiny-random","messages":[{"role":"user","content":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}]}')]);
    const e = await error(await post(bytes));
    expect(e).toMatchObject({ status: 400, code: 'invalid_request' });
    expect(e.message).toMatch(/UTF-8/);
  });

  it('bounds the question in bytes and in tokens', async () => {
    const long = 'x'.repeat(16_385);
    expect(await error(await post(chatBody(image, long)))).toMatchObject({ status: 400, param: 'messages.0.content' });
    const wordy = Array.from({ length: 120 }, (_, i) => `word${i}`).join(' ');
    questions.push(wordy);
    const e = await error(await post(chatBody(image, wordy)));
    expect(e).toMatchObject({ status: 400, param: 'messages.0.content' });
    expect(e.message).toMatch(/tokens/);
    expect((await post(chatBody(image, 'short enough question'))).status).toBe(202);
  });

  it('bounds decoding parameters, naming each field', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ max_tokens: 0 }, 'max_tokens'],
      [{ max_tokens: 100_000 }, 'max_tokens'],
      [{ temperature: 2.5 }, 'temperature'],
      [{ top_p: 0 }, 'top_p'],
      [{ stop: ['a', 'b', 'c', 'd', 'e'] }, 'stop'],
      [{ stop: ['x'.repeat(65)] }, 'stop.0'],
      [{ stop: ['ok', 'bell\u0007'] }, 'stop.1'],
      [{ seed: -1 }, 'seed'],
    ];
    for (const [extra, param] of cases) expect(await error(await post(chatBody(image, 'param check', extra)))).toMatchObject({ status: 400, param });
  });

  it('answers 413 for a streamed body over the limit before it has all arrived', async () => {
    const r = await streamBody(`${gw.url}/v1/chat/completions`, { ...bearer(key), 'content-type': 'application/json' }, 16 * 1024 * 1024);
    expect(r.status).toBe(413);
    expect(r.sent).toBeLessThan(16 * 1024 * 1024);
  });

  it('bounds multipart uploads: one file, its size, the fields', async () => {
    const form = (parts: [string, Blob | string][]): FormData => {
      const f = new FormData();
      for (const [k, v] of parts) f.append(k, v);
      return f;
    };
    const send = (f: FormData) => fetch(`${gw.url}/v1/jobs`, { method: 'POST', headers: bearer(key), body: f });
    expect((await send(form([['image', new Blob([image])], ['question', 'multipart ok']]))).status).toBe(202);
    expect(await error(await send(form([['image', new Blob([Buffer.alloc(300 * 1024, 1)])], ['question', 'q']])))).toMatchObject({ status: 413 });
    // A second file trips the parser's one-file limit while streaming.
    expect((await send(form([['image', new Blob([image])], ['image', new Blob([image])], ['question', 'q']]))).status).toBe(413);
    expect(await error(await send(form([['image', new Blob([image])], ['question', 'bad\u0000q']])))).toMatchObject({ status: 400, param: 'question' });
    // Form text is UTF-8: non-ASCII passes, bytes that are not UTF-8 are refused naming the field.
    expect((await send(form([['image', new Blob([image])], ['question', '¿qué hay en la foto? 写真']]))).status).toBe(202);
    const boundary = 'fastvlm-test-boundary';
    const raw = Buffer.concat([
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="i.png"\r\nContent-Type: image/png\r\n\r\n`),
      image,
      Buffer.from(`\r\n--${boundary}\r\nContent-Disposition: form-data; name="question"\r\n\r\nwhat \xff\xfe is it`, 'latin1'),
      Buffer.from(`\r\n--${boundary}--\r\n`),
    ]);
    const notUtf8 = await fetch(`${gw.url}/v1/jobs`, { method: 'POST', headers: { ...bearer(key), 'content-type': `multipart/form-data; boundary=${boundary}` }, body: raw });
    expect(await error(notUtf8)).toMatchObject({ status: 400, code: 'invalid_request', param: 'question' });
    const many: [string, string][] = Array.from({ length: 12 }, () => ['question', 'q']);
    expect((await send(form([['image', new Blob([image])], ...many]))).status).toBe(413);
  });

  it('fetches http(s) image URLs only for tenants that enabled them, and never from internal addresses', async () => {
    const url = (path: string, host = 'images.test') => `http://${host}:${imagePort}${path}`;
    expect(await error(await post(chatBody(url('/cat.png'), 'url q'), urlKey))).toMatchObject({ status: 400, code: 'image_url_not_enabled' });
    const patch = await fetch(`${gw.url}/v1/admin/tenants/urls`, { method: 'PATCH', headers: { ...bearer(admin), 'content-type': 'application/json' }, body: '{"imageUrls":true}' });
    expect(patch.status).toBe(200);
    expect((await post(chatBody(url('/cat.png'), 'url q'), urlKey)).status).toBe(202);
    expect(await error(await post(chatBody(url('/cat.png', 'intranet.test'), 'url q'), urlKey))).toMatchObject({ status: 400, code: 'image_fetch_failed', param: 'image_url' });
    expect(await error(await post(chatBody(url('/to-metadata'), 'url q'), urlKey))).toMatchObject({ status: 400, code: 'image_fetch_failed' });
    expect(await error(await post(chatBody('http://[::ffff:10.0.0.1]/x.png', 'url q'), urlKey))).toMatchObject({ status: 400, code: 'image_fetch_failed' });
    expect(await error(await post(chatBody(url('/huge.png'), 'url q'), urlKey))).toMatchObject({ status: 413 });
    expect(await error(await post(chatBody(url('/logo.svg'), 'url q'), urlKey))).toMatchObject({ status: 400, code: 'invalid_image' });
    expect(await error(await post(chatBody(url('/cat.png'), 'url q'), key))).toMatchObject({ code: 'image_url_not_enabled' });
  });

  it('audits rejected inputs by reason, and logs none of their text', async () => {
    const audit = (await (await fetch(`${gw.url}/v1/admin/audit?type=input_rejected&limit=500`, { headers: bearer(admin) })).json()) as { data: { reason: string }[] };
    const reasons = new Set(audit.data.map((e) => e.reason));
    for (const r of ['control_character', 'invalid_unicode', 'template_token', 'too_long', 'blocked_address', 'image_url_not_enabled', 'unsupported_format']) expect(reasons).toContain(r);
    expect(leaksIn(gw.logs(), { keys: [key, urlKey, admin], questions })).toEqual([]);
  });
});
