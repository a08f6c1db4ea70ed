import { lookup as dnsLookup } from 'node:dns/promises';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import { AppError } from '@fastvlm/contracts';
import { isPublicAddress } from './ip-ranges';

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/** Name resolution, replaceable in tests (a resolver that answers private addresses). */
export type Resolver = (hostname: string) => Promise<ResolvedAddress[]>;

export const systemResolver: Resolver = async (hostname) =>
  (await dnsLookup(hostname, { all: true, verbatim: true })).map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }));

export interface UrlFetchOptions {
  /** Largest body accepted, in bytes; the download stops as soon as it is passed. */
  maxBytes: number;
  /** Whole fetch, redirects included, in milliseconds. */
  timeoutMs: number;
  /** Redirects followed (each one checked like the first URL). */
  maxRedirects: number;
  resolve?: Resolver;
  /** Which addresses may be connected to. Default: public unicast only ({@link isPublicAddress}). */
  isAllowedAddress?: (ip: string) => boolean;
  signal?: AbortSignal;
}

export type FetchRejection = 'bad_url' | 'blocked_address' | 'dns' | 'connect' | 'http_status' | 'too_large' | 'timeout' | 'too_many_redirects';

/** A fetch that failed or was refused; `reason` goes to the audit log. Messages never repeat the URL (signed URLs hold secrets). */
export class ImageFetchFailed extends AppError {
  constructor(
    readonly reason: FetchRejection,
    message: string,
  ) {
    super(reason === 'too_large' ? 'payload_too_large' : 'image_fetch_failed', message, 'image_url');
  }
}

/**
 * Downloads an image for a tenant that enabled URL images, defending the
 * network the gateway sits in (SSRF): each hop's host is resolved once, every
 * address it resolves to must be allowed (public unicast by default), and the
 * connection goes to that pinned address, so a second resolution cannot
 * switch it to an internal one (DNS rebinding). Redirects are followed by
 * hand and checked the same way; size and time are bounded while downloading.
 * The bytes still go through `checkImage` afterwards.
 */
export async function fetchImageUrl(url: string, opts: UrlFetchOptions): Promise<Buffer> {
  const timeout = AbortSignal.timeout(opts.timeoutMs);
  const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;
  let current = parseUrl(url);
  try {
    for (let hop = 0; ; hop++) {
      const pinned = await pin(current, opts);
      const res = await get(current, pinned, signal);
      const status = res.statusCode ?? 0;
      if (status >= 300 && status < 400 && res.headers.location) {
        res.resume();
        if (hop >= opts.maxRedirects) throw new ImageFetchFailed('too_many_redirects', `The image URL redirected more than ${opts.maxRedirects} times.`);
        current = parseUrl(res.headers.location, current);
        continue;
      }
      if (status !== 200) {
        res.resume();
        throw new ImageFetchFailed('http_status', `Fetching the image URL answered HTTP ${status}.`);
      }
      return await readBody(res, opts.maxBytes);
    }
  } catch (e) {
    if (e instanceof ImageFetchFailed) throw e;
    if (timeout.aborted) throw new ImageFetchFailed('timeout', `Fetching the image URL took longer than ${opts.timeoutMs} ms.`);
    throw new ImageFetchFailed('connect', 'The image URL could not be fetched.');
  }
}

function parseUrl(raw: string, base?: URL): URL {
  let u: URL;
  try {
    u = new URL(raw, base);
  } catch {
    throw new ImageFetchFailed('bad_url', 'image_url is not a valid URL.');
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new ImageFetchFailed('bad_url', 'Only http and https image URLs are fetched.');
  if (u.username || u.password) throw new ImageFetchFailed('bad_url', 'Image URLs must not carry credentials.');
  if (!u.hostname) throw new ImageFetchFailed('bad_url', 'image_url has no host.');
  return u;
}

async function pin(u: URL, opts: UrlFetchOptions): Promise<ResolvedAddress> {
  const pinned = await pinAddress(u, opts);
  if (pinned.ok) return pinned.address;
  if (pinned.reason === 'dns') throw new ImageFetchFailed('dns', "The image URL's host name does not resolve.");
  throw new ImageFetchFailed('blocked_address', "The image URL's host is a private, loopback, link-local or otherwise internal address; only public addresses are fetched.");
}

/** What `pinAddress` found: the address to connect to, or why there is none. */
export type PinOutcome = { ok: true; address: ResolvedAddress } | { ok: false; reason: 'dns' | 'blocked_address' };

/**
 * The SSRF guard shared by every server-side request to a URL a tenant or an
 * admin chose: resolves the host once and allows it only when every address
 * passes `isAllowedAddress` (public unicast by default). The caller connects
 * to the returned address through {@link pinnedLookup}, so that a second
 * resolution cannot switch it to an internal one (DNS rebinding).
 */
export async function pinAddress(u: URL, opts: Pick<UrlFetchOptions, 'resolve' | 'isAllowedAddress'>): Promise<PinOutcome> {
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const allowed = opts.isAllowedAddress ?? isPublicAddress;
  let addresses: ResolvedAddress[];
  const literal = isIP(host);
  if (literal) {
    addresses = [{ address: host, family: literal === 6 ? 6 : 4 }];
  } else {
    try {
      addresses = await (opts.resolve ?? systemResolver)(host);
    } catch {
      return { ok: false, reason: 'dns' };
    }
  }
  const first = addresses[0];
  if (!first) return { ok: false, reason: 'dns' };
  // All of them, not just the first: a name that also points inside is refused outright.
  if (addresses.some((a) => !allowed(a.address))) return { ok: false, reason: 'blocked_address' };
  return { ok: true, address: first };
}

/** A `lookup` for http(s).request that answers the pinned address whatever the name resolves to now; Host and TLS SNI still carry the name. */
export function pinnedLookup(pinned: ResolvedAddress): LookupFunction {
  return (_host, options, cb) => {
    if (options.all) cb(null, [pinned]);
    else cb(null, pinned.address, pinned.family);
  };
}

function get(u: URL, pinned: ResolvedAddress, signal: AbortSignal): Promise<IncomingMessage> {
  const lookup = pinnedLookup(pinned);
  const mod = u.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.request(
      u,
      {
        method: 'GET',
        headers: { accept: 'image/jpeg, image/png, image/webp, image/gif', 'accept-encoding': 'identity', 'user-agent': 'fastvlm-gateway' },
        lookup,
        agent: false,
        signal,
      },
      resolve,
    );
    req.on('error', reject);
    req.end();
  });
}

async function readBody(res: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const declared = Number(res.headers['content-length']);
  const tooLarge = () => new ImageFetchFailed('too_large', `The image at the URL is larger than ${maxBytes} bytes.`);
  if (Number.isFinite(declared) && declared > maxBytes) {
    res.destroy();
    throw tooLarge();
  }
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of res) {
    const b = chunk as Buffer;
    total += b.length;
    if (total > maxBytes) {
      res.destroy();
      throw tooLarge();
    }
    chunks.push(b);
  }
  if (!res.complete) throw new ImageFetchFailed('connect', 'The image download was cut off.');
  return Buffer.concat(chunks, total);
}
