import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { percentile } from '../../bench/stats';
import { dataUrl } from '../support/requests';
import { cleanupPrefix, startWorker, stopWorker, uniquePrefix, until, type WorkerProcess } from '../support/stack';
import { hostileCorpus, type CorpusItem } from './support/corpus';
import { bearer, createKey, leaksIn, startGatewayProcess, type GatewayProcess } from './support/gateways';

const GENEROUS = '1000000';
// Declared types are chosen without regard to the bytes: the gateway must ignore them.
const DECLARED = ['image/png', 'image/jpeg', 'image/gif', 'image/webp', 'image/svg+xml', 'application/pdf', 'text/plain'];

interface Sent {
  item: CorpusItem;
  status: number;
  ms: number;
  jobId?: string;
  code?: string;
}

describe('a generated hostile corpus of images against a gateway process and a worker', () => {
  const prefix = uniquePrefix();
  let gw: GatewayProcess;
  let worker: WorkerProcess;
  let key: string;
  let corpus: CorpusItem[];
  const sent: Sent[] = [];
  let rssBefore = 0;
  let rssAfter = 0;

  beforeAll(async () => {
    const limits = { RATE_LIMIT_KEY_RPM: GENEROUS, RATE_LIMIT_TENANT_RPM: GENEROUS, TENANT_MAX_INFLIGHT_JOBS: GENEROUS, TENANT_MAX_QUEUED_JOBS: GENEROUS, TENANT_TOKENS_PER_MIN: GENEROUS };
    // The worker starts after the measured runs, so that rejection times measure the gateway, not a CPU shared with a decoder.
    [gw, corpus, { key }] = await Promise.all([startGatewayProcess(prefix, limits), hostileCorpus(1000), createKey(prefix, 'acme', ['infer', 'jobs:read'])]);
  }, 120_000);
  afterAll(async () => {
    await gw?.stop();
    if (worker) await stopWorker(worker);
    await cleanupPrefix(prefix);
  });

  it('answers every input with 202 or a 4xx, accepts the valid ones, and rejects each hostile one in under 200 ms', async () => {
    expect(corpus.length).toBeGreaterThanOrEqual(1000);
    const post = async (item: CorpusItem, i: number): Promise<Sent> => {
      const body = {
        model: 'tiny-random',
        max_tokens: 1,
        messages: [{ role: 'user', content: [{ type: 'text', text: `corpus question ${i}` }, { type: 'image_url', image_url: { url: dataUrl(item.bytes, DECLARED[i % DECLARED.length]) } }] }],
      };
      const t = performance.now();
      const res = await fetch(`${gw.url}/v1/jobs`, { method: 'POST', headers: { ...bearer(key), 'content-type': 'application/json' }, body: JSON.stringify(body) });
      const json = (await res.json()) as { id?: string; error?: { code: string } };
      return { item, status: res.status, ms: performance.now() - t, ...(json.id ? { jobId: json.id } : {}), ...(json.error ? { code: json.error.code } : {}) };
    };
    // A first run warms the gateway up (code paths, V8 heap sizing); growth is measured across the second.
    for (let i = 0; i < corpus.length; i++) sent.push(await post(corpus[i] as CorpusItem, i));
    rssBefore = gw.rss();
    for (let i = 0; i < corpus.length; i++) sent.push(await post(corpus[i] as CorpusItem, i));
    rssAfter = gw.rss();

    const byStatus = sent.reduce<Record<number, number>>((m, s) => ({ ...m, [s.status]: (m[s.status] ?? 0) + 1 }), {});
    expect(sent.filter((s) => s.status >= 500).map((s) => s.item.name)).toEqual([]);
    expect(sent.filter((s) => s.status !== 202 && (s.status < 400 || s.status >= 500))).toEqual([]);
    expect(sent.filter((s) => s.item.expect === 'accept' && s.status !== 202).map((s) => `${s.item.name}: ${s.status} ${s.code}`)).toEqual([]);
    expect(sent.filter((s) => s.item.expect === 'reject' && s.status === 202).map((s) => s.item.name)).toEqual([]);
    const rejections = sent.filter((s) => s.status >= 400).map((s) => s.ms);
    console.log(`corpus: ${corpus.length} inputs sent twice, statuses ${JSON.stringify(byStatus)}; rejection ms p50 ${percentile(rejections, 50).toFixed(1)} p99 ${percentile(rejections, 99).toFixed(1)} max ${Math.max(...rejections).toFixed(1)}; gateway RSS ${(rssBefore / 2 ** 20).toFixed(0)} → ${(rssAfter / 2 ** 20).toFixed(0)} MiB`);
    // Every hostile input is rejected in under 200 ms. Each was sent twice; an input slow both times is
    // measured again, alone: on a shared 2-core CI machine another test file may hold the CPU for a moment,
    // but an input that is slow to reject (a decode, a hang) is slow every time and fails here.
    expect(percentile(rejections, 99)).toBeLessThan(200);
    expect(sent.filter((s) => s.status >= 400 && s.ms >= 1000).map((s) => `${s.item.name}: ${s.ms.toFixed(0)} ms`)).toEqual([]);
    const fastest = new Map<number, number>();
    sent.forEach((s, n) => {
      const i = n % corpus.length;
      if (s.status >= 400) fastest.set(i, Math.min(fastest.get(i) ?? Infinity, s.ms));
    });
    for (const [i, ms] of fastest) {
      for (let again = 0; again < 3 && (fastest.get(i) ?? ms) >= 200; again++) {
        const r = await post(corpus[i] as CorpusItem, i);
        fastest.set(i, Math.min(fastest.get(i) ?? ms, r.ms));
      }
    }
    expect([...fastest].filter(([, ms]) => ms >= 200).map(([i, ms]) => `${(corpus[i] as CorpusItem).name}: ${ms.toFixed(0)} ms`)).toEqual([]);
  }, 300_000);

  it("keeps the gateway's memory growth under 100 MB across the run", () => {
    expect(rssAfter - rssBefore).toBeLessThan(100 * 1024 * 1024);
  });

  it('lets the worker finish every accepted job without crashing: valid images succeed, damaged ones fail as invalid_image', async () => {
    worker = await startWorker(prefix);
    const accepted = sent.filter((s) => s.jobId);
    const states = new Map<string, { status: string; error: { code: string } | null }>();
    await until('every accepted job to finish', async () => {
      for (const s of accepted) {
        const id = s.jobId as string;
        if (states.has(id)) continue;
        const job = (await (await fetch(`${gw.url}/v1/jobs/${id}`, { headers: bearer(key) })).json()) as { status: string; error: { code: string } | null };
        if (job.status === 'succeeded' || job.status === 'failed') states.set(id, job);
      }
      return states.size === accepted.length;
    }, 240_000);
    expect(worker.child.exitCode).toBeNull();
    const failures = accepted.filter((s) => states.get(s.jobId as string)?.status === 'failed');
    expect(failures.filter((s) => states.get(s.jobId as string)?.error?.code !== 'invalid_image').map((s) => s.item.name)).toEqual([]);
    expect(failures.filter((s) => s.item.expect === 'accept').map((s) => s.item.name)).toEqual([]);
  }, 300_000);

  it('leaves no key, Authorization header or question text in the gateway and worker logs', () => {
    const questions = corpus.map((_, i) => `corpus question ${i}`).filter((q) => q.length >= 17);
    expect(leaksIn(gw.output() + worker.output(), { keys: [key], questions })).toEqual([]);
  });
});
