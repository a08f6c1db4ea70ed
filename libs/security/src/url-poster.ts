import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { pinAddress, pinnedLookup, type ResolvedAddress, type Resolver } from './url-fetcher';

export interface UrlPostOptions {
  /** The whole request, connection and response headers included, in milliseconds. */
  timeoutMs: number;
  /** Response bytes read before the connection is dropped (the answer is drained, not kept). Default 64 KiB. */
  maxResponseBytes?: number;
  resolve?: Resolver;
  /** Which addresses may be connected to. Default: public unicast only (`isPublicAddress`). */
  isAllowedAddress?: (ip: string) => boolean;
  signal?: AbortSignal;
}

export type PostFailure = 'bad_url' | 'dns' | 'blocked_address' | 'connect' | 'timeout';

/**
 * What a POST came to: the receiver's HTTP status (whatever it is: 3xx
 * included, redirects are never followed), or why no answer came. Messages
 * never repeat the URL (it may carry a token).
 */
export type PostOutcome = { kind: 'answered'; status: number } | { kind: 'failed'; reason: PostFailure; message: string };

/** Why `url` cannot be a server-side request's target, or null when it can (the checks `postToUrl` makes before connecting). */
export async function checkUrlTarget(url: string, opts: Pick<UrlPostOptions, 'resolve' | 'isAllowedAddress'>): Promise<{ reason: Exclude<PostFailure, 'connect' | 'timeout'>; message: string } | null> {
  const parsed = parseTarget(url);
  if (typeof parsed === 'string') return { reason: 'bad_url', message: parsed };
  const pinned = await pinAddress(parsed, opts);
  return pinned.ok ? null : refusal(pinned.reason);
}

/**
 * POSTs `body` to a URL an admin registered (webhooks), through the same SSRF
 * guard as image URLs: the host is resolved once, every address must be
 * allowed, and the socket connects to that pinned address. Never throws: a
 * refusal, a connection error or the deadline is an outcome like a status.
 */
export async function postToUrl(url: string, body: string | Buffer, headers: Record<string, string>, opts: UrlPostOptions): Promise<PostOutcome> {
  const timeout = AbortSignal.timeout(opts.timeoutMs);
  const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;
  const parsed = parseTarget(url);
  if (typeof parsed === 'string') return { kind: 'failed', reason: 'bad_url', message: parsed };
  try {
    const pinned = await pinAddress(parsed, opts);
    if (!pinned.ok) return { kind: 'failed', ...refusal(pinned.reason) };
    const res = await post(parsed, pinned.address, body, headers, signal);
    await drain(res, opts.maxResponseBytes ?? 64 * 1024);
    return { kind: 'answered', status: res.statusCode ?? 0 };
  } catch (e) {
    if (timeout.aborted) return { kind: 'failed', reason: 'timeout', message: `No answer within ${opts.timeoutMs} ms.` };
    const code = (e as { code?: unknown }).code;
    return { kind: 'failed', reason: 'connect', message: `The connection failed${typeof code === 'string' ? ` (${code})` : ''}.` };
  }
}

function parseTarget(raw: string): URL | string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return 'Not a valid URL.';
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return 'Only http and https URLs are allowed.';
  if (u.username || u.password) return 'URLs must not carry credentials.';
  if (!u.hostname) return 'The URL has no host.';
  return u;
}

function refusal(reason: 'dns' | 'blocked_address'): { reason: 'dns' | 'blocked_address'; message: string } {
  return reason === 'dns'
    ? { reason, message: "The URL's host name does not resolve." }
    : { reason, message: "The URL's host is a private, loopback, link-local or otherwise internal address; only public addresses are allowed." };
}

function post(u: URL, pinned: ResolvedAddress, body: string | Buffer, headers: Record<string, string>, signal: AbortSignal): Promise<IncomingMessage> {
  const mod = u.protocol === 'https:' ? https : http;
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  return new Promise((resolve, reject) => {
    const req = mod.request(
      u,
      {
        method: 'POST',
        headers: { ...headers, 'content-length': String(bytes.length) },
        lookup: pinnedLookup(pinned),
        agent: false,
        signal,
      },
      resolve,
    );
    req.on('error', reject);
    req.end(bytes);
  });
}

/** Reads and drops the answer so that the socket closes cleanly; a receiver that keeps talking is cut off. */
async function drain(res: IncomingMessage, maxBytes: number): Promise<void> {
  let total = 0;
  for await (const chunk of res) {
    total += (chunk as Buffer).length;
    if (total > maxBytes) {
      res.destroy();
      return;
    }
  }
}
