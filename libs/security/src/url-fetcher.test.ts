import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ImageFetchFailed, fetchImageUrl, type Resolver, type UrlFetchOptions } from './url-fetcher';

const IMAGE = Buffer.from('not really an image, the fetcher does not look');

describe('fetchImageUrl', () => {
  let server: Server;
  let port = 0;
  const hosts: string[] = [];
  const handlers: Record<string, (req: IncomingMessage, res: ServerResponse) => void> = {
    '/img': (_req, res) => res.end(IMAGE),
    '/big': (_req, res) => res.end(Buffer.alloc(5000)),
    '/big-chunked': (_req, res) => {
      res.write(Buffer.alloc(3000));
      res.end(Buffer.alloc(3000));
    },
    '/slow': (_req, res) => {
      res.write('x');
      // Never ends: the fetch must give up on its own deadline.
    },
    '/to-metadata': (_req, res) => res.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data/' }).end(),
    '/to-private-name': (_req, res) => res.writeHead(301, { location: `http://intranet.example:${port}/img` }).end(),
    '/to-img': (_req, res) => res.writeHead(307, { location: '/img' }).end(),
    '/loop': (_req, res) => res.writeHead(302, { location: '/loop' }).end(),
    '/missing': (_req, res) => res.writeHead(404).end(),
  };

  beforeAll(async () => {
    server = createServer((req, res) => {
      hosts.push(req.headers.host ?? '');
      (handlers[req.url ?? ''] ?? handlers['/missing'])?.(req, res);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  /** Public names resolve to the loopback server; "intranet" names to private space. */
  const resolver: Resolver = (host) =>
    Promise.resolve(
      host === 'intranet.example' ? [{ address: '10.0.0.7', family: 4 }]
      : host === 'split.example' ? [{ address: '127.0.0.1', family: 4 }, { address: 'fd00::1', family: 6 }]
      : host === 'mapped.example' ? [{ address: '::ffff:169.254.169.254', family: 6 }]
      : [{ address: '127.0.0.1', family: 4 }],
    );
  // Only the test server's address stands in for "public" here; everything else keeps the real policy.
  const opts = (extra: Partial<UrlFetchOptions> = {}): UrlFetchOptions => ({
    maxBytes: 4096,
    timeoutMs: 2000,
    maxRedirects: 3,
    resolve: resolver,
    isAllowedAddress: (ip) => ip === '127.0.0.1',
    ...extra,
  });
  const reason = async (url: string, o: UrlFetchOptions = opts()): Promise<string> => {
    try {
      await fetchImageUrl(url, o);
      return 'ok';
    } catch (e) {
      return e instanceof ImageFetchFailed ? e.reason : `other: ${String(e)}`;
    }
  };

  it('connects to the pinned address, keeping the host name in the Host header', async () => {
    expect(await fetchImageUrl(`http://images.example:${port}/img`, opts())).toEqual(IMAGE);
    expect(hosts.at(-1)).toBe(`images.example:${port}`);
    expect(await fetchImageUrl(`http://images.example:${port}/to-img`, opts())).toEqual(IMAGE);
  });

  it('refuses loopback, private, metadata, unique-local and IPv4-mapped addresses with the default policy', async () => {
    const strict = opts({ isAllowedAddress: undefined });
    expect(await reason(`http://127.0.0.1:${port}/img`, strict)).toBe('blocked_address');
    expect(await reason(`http://[::1]:${port}/img`, strict)).toBe('blocked_address');
    expect(await reason('http://169.254.169.254/latest/meta-data/', strict)).toBe('blocked_address');
    expect(await reason(`http://[::ffff:127.0.0.1]:${port}/img`, strict)).toBe('blocked_address');
    expect(await reason(`http://intranet.example:${port}/img`, strict)).toBe('blocked_address');
    expect(await reason(`http://mapped.example:${port}/img`, strict)).toBe('blocked_address');
    expect(await reason(`http://[fd12::1]:${port}/img`, strict)).toBe('blocked_address');
    expect(hosts.every((h) => h.startsWith('images.example'))).toBe(true);
  });

  it('refuses a name when any of its addresses is internal, and redirects to internal targets', async () => {
    expect(await reason(`http://split.example:${port}/img`)).toBe('blocked_address');
    expect(await reason(`http://images.example:${port}/to-metadata`)).toBe('blocked_address');
    expect(await reason(`http://images.example:${port}/to-private-name`)).toBe('blocked_address');
    expect(await reason(`http://images.example:${port}/loop`)).toBe('too_many_redirects');
  });

  it('bounds size (declared or streamed) and time, and reports HTTP errors', async () => {
    expect(await reason(`http://images.example:${port}/big`)).toBe('too_large');
    expect(await reason(`http://images.example:${port}/big-chunked`)).toBe('too_large');
    expect(await reason(`http://images.example:${port}/slow`, opts({ timeoutMs: 300 }))).toBe('timeout');
    expect(await reason(`http://images.example:${port}/missing`)).toBe('http_status');
  });

  it('refuses other schemes and URLs with credentials', async () => {
    expect(await reason('file:///etc/passwd')).toBe('bad_url');
    expect(await reason('gopher://images.example/x')).toBe('bad_url');
    expect(await reason(`http://user:pw@images.example:${port}/img`)).toBe('bad_url');
  });
});
