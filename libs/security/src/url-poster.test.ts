import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Resolver } from './url-fetcher';
import { checkUrlTarget, postToUrl, type UrlPostOptions } from './url-poster';

describe('postToUrl', () => {
  let server: Server;
  let port = 0;
  const seen: { url: string; host: string; headers: IncomingHttpHeaders; body: string }[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        seen.push({ url: req.url ?? '', host: req.headers.host ?? '', headers: req.headers, body: Buffer.concat(chunks).toString() });
        if (req.url === '/ok') res.writeHead(200).end('thanks');
        else if (req.url === '/moved') res.writeHead(301, { location: '/ok' }).end();
        else if (req.url === '/chatty') res.end(Buffer.alloc(200_000));
        // '/slow' never answers.
        else if (req.url !== '/slow') res.writeHead(500).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  const resolver: Resolver = (host) => Promise.resolve(host === 'intranet.example' ? [{ address: '10.0.0.7', family: 4 }] : [{ address: '127.0.0.1', family: 4 }]);
  // Only the test server's address stands in for "public"; everything else keeps the real policy.
  const opts = (extra: Partial<UrlPostOptions> = {}): UrlPostOptions => ({ timeoutMs: 2000, resolve: resolver, isAllowedAddress: (ip) => ip === '127.0.0.1', ...extra });

  it('POSTs the body and headers to the pinned address, keeping the host name in the Host header', async () => {
    const out = await postToUrl(`http://hooks.example:${port}/ok`, '{"a":1}', { 'content-type': 'application/json', 'x-sig': 'v1,abc' }, opts());
    expect(out).toEqual({ kind: 'answered', status: 200 });
    const req = seen.at(-1);
    expect(req).toMatchObject({ url: '/ok', host: `hooks.example:${port}`, body: '{"a":1}' });
    expect(req?.headers['x-sig']).toBe('v1,abc');
    expect(req?.headers['content-length']).toBe('7');
  });

  it('answers a redirect or an error with its status, without following it', async () => {
    const before = seen.length;
    expect(await postToUrl(`http://hooks.example:${port}/moved`, 'x', {}, opts())).toEqual({ kind: 'answered', status: 301 });
    expect(await postToUrl(`http://hooks.example:${port}/nope`, 'x', {}, opts())).toEqual({ kind: 'answered', status: 500 });
    expect(seen.slice(before).map((r) => r.url)).toEqual(['/moved', '/nope']);
    expect(await postToUrl(`http://hooks.example:${port}/chatty`, 'x', {}, opts({ maxResponseBytes: 1024 }))).toEqual({ kind: 'answered', status: 200 });
  });

  it('refuses internal addresses and bad URLs before connecting, and gives up at its deadline', async () => {
    const before = seen.length;
    expect(await postToUrl(`http://127.0.0.1:${port}/ok`, 'x', {}, opts({ isAllowedAddress: undefined }))).toMatchObject({ kind: 'failed', reason: 'blocked_address' });
    expect(await postToUrl('http://intranet.example/ok', 'x', {}, opts())).toMatchObject({ kind: 'failed', reason: 'blocked_address' });
    expect(await postToUrl('https://u:p@hooks.example/', 'x', {}, opts())).toMatchObject({ kind: 'failed', reason: 'bad_url' });
    expect(await postToUrl('gopher://hooks.example/', 'x', {}, opts())).toMatchObject({ kind: 'failed', reason: 'bad_url' });
    expect(seen.length).toBe(before);
    expect(await postToUrl(`http://hooks.example:${port}/slow`, 'x', {}, opts({ timeoutMs: 200 }))).toMatchObject({ kind: 'failed', reason: 'timeout' });
    expect(await postToUrl('http://hooks.example:1/', 'x', {}, opts())).toMatchObject({ kind: 'failed', reason: 'connect' });
  });

  it('checks a target without connecting', async () => {
    expect(await checkUrlTarget('https://hooks.example/x', opts())).toBeNull();
    expect(await checkUrlTarget('https://intranet.example/x', opts())).toMatchObject({ reason: 'blocked_address' });
    expect(await checkUrlTarget('https://10.1.1.1/x', {})).toMatchObject({ reason: 'blocked_address' });
  });
});
