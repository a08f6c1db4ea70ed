import { z } from 'zod';
import { AppError } from '@fastvlm/contracts';

export const DEFAULT_ENDPOINT = 'https://huggingface.co';

export interface HubClientOptions {
  endpoint: string;
  token?: string | undefined;
  /** Milliseconds to wait for an answer, and between two chunks of a body. */
  timeoutMs: number;
}

/** What the hub says about one file of a revision. */
export interface RemoteFile {
  path: string;
  size: number | undefined;
  /** Lowercase hex SHA-256 of the content when the hub states it (LFS files). */
  sha256: string | undefined;
  /** The commit the revision resolved to. */
  commit: string | undefined;
}

/**
 * Aborts its signal when `arm()` is not called again in time: a stalled
 * connection is noticed while a multi-gigabyte body, which may rightly take
 * an hour, keeps its connection as long as bytes flow.
 */
export class IdleTimer {
  private readonly controller = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  fired = false;

  constructor(private readonly ms: number) {}

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  arm(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.fired = true;
      this.controller.abort();
    }, this.ms);
  }

  clear(): void {
    clearTimeout(this.timer);
  }
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 5;
const SHA256 = /^[0-9a-f]{64}$/;

const RevisionListing = z.object({
  sha: z.string().optional(),
  siblings: z.array(z.object({ rfilename: z.string() })),
});

/** HTTP side of the hub: URL layout, credentials, redirects and turning failures into `AppError`s. */
export class HubClient {
  private readonly endpoint: URL;

  constructor(private readonly opts: HubClientOptions) {
    this.endpoint = new URL(opts.endpoint.endsWith('/') ? opts.endpoint : `${opts.endpoint}/`);
  }

  get host(): string {
    return this.endpoint.host;
  }

  fileUrl(repo: string, revision: string, path: string): URL {
    const file = path.split('/').map(encodeURIComponent).join('/');
    return new URL(`${repo}/resolve/${encodeURIComponent(revision)}/${file}`, this.endpoint);
  }

  /**
   * The revision's file list and commit from the hub's API, or undefined when
   * the endpoint has no such API (mirrors, plain file servers): the caller then
   * asks for each file with HEAD.
   */
  async listFiles(repo: string, revision: string): Promise<{ commit: string | undefined; files: Set<string> } | undefined> {
    const url = new URL(`api/models/${repo}/revision/${encodeURIComponent(revision)}`, this.endpoint);
    const idle = new IdleTimer(this.opts.timeoutMs);
    idle.arm();
    try {
      const res = await this.send(url, 'GET', {}, idle.signal);
      if (res.status !== 200) {
        await res.body?.cancel();
        return undefined;
      }
      const parsed = RevisionListing.safeParse(await res.json().catch(() => undefined));
      if (!parsed.success) return undefined;
      return { commit: parsed.data.sha, files: new Set(parsed.data.siblings.map((s) => s.rfilename)) };
    } catch (e) {
      throw this.networkError(e, url, repo, idle.fired);
    } finally {
      idle.clear();
    }
  }

  /** Size, checksum and commit of one file; undefined when the revision has no such file. */
  async head(repo: string, revision: string, path: string): Promise<RemoteFile | undefined> {
    let url = this.fileUrl(repo, revision, path);
    const idle = new IdleTimer(this.opts.timeoutMs);
    idle.arm();
    try {
      for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
        const res = await this.send(url, 'HEAD', {}, idle.signal);
        const commit = res.headers.get('x-repo-commit') ?? undefined;
        const linked = res.headers.get('x-linked-etag');
        // LFS files answer with a redirect to their storage; the hub states their
        // hash and size on that redirect, so there is no need to follow it.
        if (REDIRECTS.has(res.status) && linked) {
          return { path, size: toSize(res.headers.get('x-linked-size')), sha256: sha256Of(linked), commit };
        }
        const location = res.headers.get('location');
        if (REDIRECTS.has(res.status) && location) {
          url = new URL(location, url);
          continue;
        }
        if (res.status === 404 && !isRepoLevel404(res)) return undefined;
        if (!res.ok) throw this.refused(res.status, url, repo);
        return { path, size: toSize(res.headers.get('content-length')), sha256: sha256Of(res.headers.get('etag')), commit };
      }
      throw new AppError('service_unavailable', `The hub at ${this.host} redirected ${path} of ${repo} more than ${MAX_REDIRECTS} times.`);
    } catch (e) {
      throw this.networkError(e, url, repo, idle.fired);
    } finally {
      idle.clear();
    }
  }

  /**
   * GET following redirects. The token goes only to the hub's own origin: LFS
   * files redirect to a CDN, which must never see it. Answers other than
   * 2xx/416 become errors; the caller reads the body under `signal`.
   */
  async get(url: URL, headers: Record<string, string>, signal: AbortSignal, repo: string): Promise<Response> {
    let current = url;
    for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
      const res = await this.send(current, 'GET', headers, signal);
      const location = res.headers.get('location');
      if (REDIRECTS.has(res.status) && location) {
        await res.body?.cancel();
        current = new URL(location, current);
        continue;
      }
      if (res.ok || res.status === 416) return res;
      await res.body?.cancel();
      throw this.refused(res.status, current, repo);
    }
    throw new AppError('service_unavailable', `The hub at ${this.host} redirected ${url.pathname} more than ${MAX_REDIRECTS} times.`);
  }

  /** Maps a failed request (connection refused, DNS, timeout, reset) to `service_unavailable`; AppErrors pass through. */
  networkError(e: unknown, url: URL, repo: string, timedOut: boolean): AppError {
    if (e instanceof AppError) return e;
    const reason = timedOut ? `no answer within ${this.opts.timeoutMs / 1000} s` : describeCause(e);
    return new AppError(
      'service_unavailable',
      `Could not reach the Hugging Face hub at ${url.host} to pull ${repo} (${reason}). ` +
        `Check the network and HF_ENDPOINT, or fill the model cache where the hub is reachable ` +
        `(npm run model:pull -- ${repo}) and set HF_HUB_OFFLINE=1.`,
      undefined,
      { cause: e },
    );
  }

  private refused(status: number, url: URL, repo: string): AppError {
    const where = `The hub at ${url.host} answered ${status} for ${url.pathname}`;
    if (status === 401 || status === 403) {
      return new AppError(
        'model_not_found',
        `${where}: ${repo} is private, gated or does not exist. Check the id, and set HF_TOKEN to a token that may read it ` +
          `(gated models also need their terms accepted on the hub).`,
      );
    }
    if (status === 404) {
      return new AppError('model_not_found', `${where}: check the id and revision of ${repo}.`);
    }
    return new AppError('service_unavailable', `${where} while pulling ${repo}; try again later.`);
  }

  private send(url: URL, method: 'GET' | 'HEAD', headers: Record<string, string>, signal: AbortSignal): Promise<Response> {
    const auth = this.opts.token && url.origin === this.endpoint.origin ? { authorization: `Bearer ${this.opts.token}` } : {};
    // Compressed transfers would make Content-Length and byte ranges refer to
    // other bytes than the file's.
    return fetch(url, {
      method,
      headers: { 'accept-encoding': 'identity', 'user-agent': 'fastvlm-serving', ...headers, ...auth },
      redirect: 'manual',
      signal,
    });
  }
}

/** The hub marks 404s for a missing repo or revision, which no other file of it can fix. */
function isRepoLevel404(res: Response): boolean {
  const code = res.headers.get('x-error-code');
  return code === 'RepoNotFound' || code === 'RevisionNotFound';
}

function sha256Of(etag: string | null): string | undefined {
  const value = (etag ?? '').replace(/^W\//, '').replace(/"/g, '').toLowerCase();
  return SHA256.test(value) ? value : undefined;
}

function toSize(header: string | null): number | undefined {
  const n = Number(header ?? NaN);
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

export function describeCause(e: unknown): string {
  const cause: unknown = e instanceof Error && e.cause !== undefined ? e.cause : e;
  const code = typeof cause === 'object' && cause !== null && 'code' in cause ? String(cause.code) : '';
  if (code === 'ECONNREFUSED') return 'connection refused';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'DNS lookup failed';
  if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET') return 'connection reset';
  if (code.includes('TIMEOUT')) return 'timed out';
  return cause instanceof Error ? cause.message : String(cause);
}
