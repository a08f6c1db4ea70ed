/**
 * A loopback stand-in for the Hugging Face hub, for the hub client's tests:
 * the hub's URL layout and headers (ETag, X-Repo-Commit, X-Linked-Etag/-Size
 * on the 302 that sends LFS files to a CDN), byte ranges, a token check, the
 * revision API, and faults on demand (cut connections, wrong bytes). Every
 * request is recorded. Test-only: nothing in the product imports this file.
 */
import { createHash } from 'node:crypto';
import { cp, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { generateModel } from '../generator/index';

export interface FakeHubOptions {
  /** Folder whose files are the repo's. */
  dir: string;
  repo: string;
  /** When set, hub routes answer 401 without `Authorization: Bearer <token>`. */
  token?: string;
  /** Serve `/api/models/{repo}/revision/{rev}` (otherwise 404, as on a plain mirror). */
  api?: boolean;
  /** Serve LFS bytes from a second server, so the redirect crosses origins. */
  separateCdn?: boolean;
}

export interface RecordedRequest {
  server: 'hub' | 'cdn';
  route: 'resolve' | 'cdn' | 'api' | 'other';
  method: string;
  /** The repo file asked for (resolve and CDN routes), else the URL path. */
  file: string;
  /** The revision in a resolve URL. */
  rev: string | undefined;
  range: string | undefined;
  authorization: string | undefined;
}

export interface FakeHub {
  endpoint: string;
  commit: string;
  requests: RecordedRequest[];
  /** GETs that served `file`'s bytes (from the CDN for LFS files, from the hub otherwise). */
  downloads(file: string): RecordedRequest[];
  /** The next `times` GETs of `file`'s bytes stop after `bytes` bytes by destroying the connection. */
  cutAfter(file: string, bytes: number, times?: number): void;
  /** Serve other bytes (same size) for `file` while still stating its real SHA-256. */
  corrupt(file: string): void;
  /** Requests for `file`'s bytes wait (headers unsent) until the returned function is called. */
  hold(file: string): () => void;
  close(): Promise<void>;
}

interface Entry {
  data: Buffer;
  sha256: string;
  gitSha1: string;
  lfs: boolean;
}

const isLfs = (path: string): boolean => path.endsWith('.onnx') || /\.onnx_data(_\d+)?$/.test(path) || path === 'tokenizer.json';

async function loadRepo(dir: string): Promise<Map<string, Entry>> {
  const files = new Map<string, Entry>();
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const full = join(e.parentPath, e.name);
    const path = relative(dir, full).split(sep).join('/');
    const data = await readFile(full);
    const gitSha1 = createHash('sha1').update(`blob ${data.length}\0`).update(data).digest('hex');
    files.set(path, { data, sha256: createHash('sha256').update(data).digest('hex'), gitSha1, lfs: isLfs(path) });
  }
  return files;
}

async function listen(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ server: Server; origin: string }> {
  const server = createServer(handler);
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  return { server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

export async function startFakeHub(opts: FakeHubOptions): Promise<FakeHub> {
  const files = await loadRepo(opts.dir);
  const commit = createHash('sha1').update(opts.repo).digest('hex');
  const requests: RecordedRequest[] = [];
  const cuts = new Map<string, { bytes: number; times: number }>();
  const corrupted = new Set<string>();
  const held = new Map<string, Promise<void>>();

  const record = (server: RecordedRequest['server'], route: RecordedRequest['route'], req: IncomingMessage, file: string, rev?: string): void => {
    const { range, authorization } = req.headers;
    requests.push({ server, route, method: req.method ?? '', file, rev, range, authorization });
  };

  const serveBytes = (req: IncomingMessage, res: ServerResponse, file: string, entry: Entry, headers: Record<string, string>): void => {
    const gate = req.method === 'GET' ? held.get(file) : undefined;
    if (gate) {
      void gate.then(() => send(req, res, file, entry, headers));
      return;
    }
    send(req, res, file, entry, headers);
  };

  const send = (req: IncomingMessage, res: ServerResponse, file: string, entry: Entry, headers: Record<string, string>): void => {
    let data = entry.data;
    if (corrupted.has(file)) data = Buffer.from(data.map((b) => b ^ 0xff));
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const start = m ? Number(m[1]) : 0;
    if (start >= data.length && m) {
      res.writeHead(416, { 'content-range': `bytes */${data.length}` }).end();
      return;
    }
    const body = data.subarray(start);
    res.writeHead(m ? 206 : 200, {
      ...headers,
      'accept-ranges': 'bytes',
      'content-length': String(body.length),
      ...(m ? { 'content-range': `bytes ${start}-${data.length - 1}/${data.length}` } : {}),
    });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    const cut = cuts.get(file);
    if (cut && cut.times > 0) {
      cut.times -= 1;
      res.write(body.subarray(0, cut.bytes), () => res.destroy());
      return;
    }
    res.end(body);
  };

  const cdn = (req: IncomingMessage, res: ServerResponse, server: 'hub' | 'cdn', path: string): void => {
    const m = /^\/cdn\/([0-9a-f]{64})\/(.+)$/.exec(path);
    const file = m ? decodeURIComponent(m[2] ?? '') : path;
    record(server, 'cdn', req, file);
    const entry = files.get(file);
    if (!m || !entry || entry.sha256 !== m[1]) {
      res.writeHead(404).end();
      return;
    }
    serveBytes(req, res, file, entry, { etag: `"${entry.sha256}"` });
  };

  let cdnOrigin = '';
  const hub = (req: IncomingMessage, res: ServerResponse): void => {
    const path = decodeURI(new URL(req.url ?? '/', 'http://x').pathname);
    if (path.startsWith('/cdn/') && !opts.separateCdn) return cdn(req, res, 'hub', path);
    const resolve = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(path);
    const api = /^\/api\/models\/([^/]+\/[^/]+)\/revision\/([^/]+)$/.exec(path);
    const [, repo = '', rev = '', file = path] = resolve ?? api ?? [];
    record('hub', resolve ? 'resolve' : api ? 'api' : 'other', req, resolve ? file : path, resolve ? rev : undefined);
    if (opts.token && req.headers.authorization !== `Bearer ${opts.token}`) {
      res.writeHead(401, { 'x-error-code': 'RepoNotFound' }).end();
      return;
    }
    if ((!resolve && !api) || (api && !opts.api) || repo !== opts.repo) {
      res.writeHead(404, { 'x-error-code': 'RepoNotFound' }).end();
      return;
    }
    if (rev !== 'main' && rev !== commit) {
      res.writeHead(404, { 'x-error-code': 'RevisionNotFound' }).end();
      return;
    }
    if (api) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ id: repo, sha: commit, siblings: [...files.keys()].map((rfilename) => ({ rfilename })) }));
      return;
    }
    const entry = files.get(file);
    if (!entry) {
      res.writeHead(404, { 'x-error-code': 'EntryNotFound', 'x-repo-commit': commit }).end();
      return;
    }
    if (!entry.lfs) {
      serveBytes(req, res, file, entry, { etag: `"${entry.gitSha1}"`, 'x-repo-commit': commit });
      return;
    }
    res.writeHead(302, {
      location: `${cdnOrigin}/cdn/${entry.sha256}/${encodeURIComponent(file)}`,
      etag: `"${entry.sha256}"`,
      'x-linked-etag': `"${entry.sha256}"`,
      'x-linked-size': String(entry.data.length),
      'x-repo-commit': commit,
    });
    res.end();
  };

  const main = await listen(hub);
  const other = opts.separateCdn ? await listen((req, res) => cdn(req, res, 'cdn', new URL(req.url ?? '/', 'http://x').pathname)) : undefined;
  cdnOrigin = other?.origin ?? main.origin;

  return {
    endpoint: main.origin,
    commit,
    requests,
    downloads: (file) => requests.filter((r) => r.method === 'GET' && r.file === file && r.route === (files.get(file)?.lfs ? 'cdn' : 'resolve')),
    cutAfter: (file, bytes, times = 1) => {
      cuts.set(file, { bytes, times });
    },
    corrupt: (file) => {
      corrupted.add(file);
    },
    hold: (file) => {
      let open = (): void => undefined;
      held.set(
        file,
        new Promise<void>((ok) => {
          open = ok;
        }),
      );
      return () => {
        held.delete(file);
        open();
      };
    },
    close: async () => {
      for (const s of [main.server, other?.server]) {
        if (!s) continue;
        s.closeAllConnections();
        await new Promise<void>((ok) => s.close(() => ok()));
      }
    },
  };
}

/** A port nothing listens on: connections to it are refused. */
export async function closedPort(): Promise<number> {
  const { server, origin } = await listen(() => undefined);
  await new Promise<void>((ok) => server.close(() => ok()));
  return Number(new URL(origin).port);
}

export interface HubFixture {
  /** Temp folder of the test file. */
  root: string;
  /** The generated tiny model, as the hub serves it. */
  served: string;
  /** A fresh, empty cache folder. */
  cacheDir(): string;
  /** A copy of the served model with extra files (e.g. other dtypes), for a hub that serves more. */
  variant(name: string, extra: Record<string, string>): Promise<string>;
  /** A fake hub serving `served` as acme/vlm (unless told otherwise), closed after the test. */
  hub(opts?: Partial<FakeHubOptions>): Promise<FakeHub>;
}

/** Generates the tiny model once for the test file and closes the hubs each test starts. */
export function useHubFixture(): HubFixture {
  const open: FakeHub[] = [];
  let caches = 0;
  const fx: HubFixture = {
    root: '',
    served: '',
    cacheDir: () => join(fx.root, `cache-${++caches}`),
    variant: async (name, extra) => {
      const dir = join(fx.root, name);
      await cp(fx.served, dir, { recursive: true });
      for (const [to, from] of Object.entries(extra)) await cp(join(fx.served, from), join(dir, to));
      return dir;
    },
    hub: async (opts = {}) => {
      const hub = await startFakeHub({ dir: fx.served, repo: 'acme/vlm', ...opts });
      open.push(hub);
      return hub;
    },
  };
  beforeAll(async () => {
    fx.root = await mkdtemp(join(tmpdir(), 'fastvlm-hub-'));
    fx.served = join(fx.root, 'served');
    await generateModel({ preset: 'tiny', outDir: fx.served, seed: 3 });
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((h) => h.close()));
  });
  afterAll(async () => {
    if (fx.root) await rm(fx.root, { recursive: true, force: true });
  });
  return fx;
}
