/**
 * soak — `npm run soak -- --minutes N [--concurrency C]`. Starts the whole
 * stack on its own (a private redis-server with AOF, a gateway process, a
 * worker process, the tiny random model), drives mixed traffic at 127.0.0.1
 * for N minutes with C requests in flight, and checks that nothing leaks:
 * no 5xx, process RSS flat after warm-up, and every kind of Redis key either
 * expiring (TTL) or bounded. Prints a report and exits 1 when a check fails.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { generateModel } from '../libs/pipeline/src/generator/index';
import { isAlive, rssBytes, startGatewayProcess, stopProcess } from '../test/support/processes';
import { PrivateRedis } from '../test/support/redis-server';
import { auth, chatBody, dataUrl, png } from '../test/support/requests';
import { streamSse } from '../test/support/sse-client';
import { ROOT, startWorker, uniquePrefix, testCacheDir } from '../test/support/stack';
import { keySnapshot, type KeySnapshot } from './soak-keys';
import { percentile, table } from './stats';
import { runMain } from './run-main';

const { values: args } = parseArgs({
  options: { minutes: { type: 'string', default: '2' }, concurrency: { type: 'string', default: '6' } },
  allowPositionals: false,
});
const MINUTES = Number(args.minutes);
const CONCURRENCY = Number(args.concurrency);
if (!(MINUTES > 0) || !(CONCURRENCY >= 1)) {
  console.error('usage: npm run soak -- --minutes N [--concurrency C]');
  process.exit(2);
}
const TOTAL_MS = MINUTES * 60_000;
/**
 * Traffic before the first snapshot: model warm, caches filled, allocators settled. The gateway's
 * V8 heap grows for about its first minute under this load (to ~280 MB, then a compaction takes it
 * back under 200 MB), so the baseline is taken after half the run, at most one minute in.
 */
const WARMUP_MS = Math.min(60_000, Math.max(15_000, TOTAL_MS * 0.5));
/** Finished records live this long (the minimum), so that key counts reach their plateau within the run. */
const JOB_TTL_S = 60;

/** Deliberately bad requests: each must be refused with this 4xx, never a 5xx. */
const BAD_INPUTS: { name: string; expect: number; body: () => Promise<string> }[] = [
  { name: 'malformed image', expect: 400, body: () => Promise.resolve(JSON.stringify(chatBody('data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAAB', 'broken png'))) },
  { name: 'wrong types', expect: 400, body: async () => JSON.stringify({ ...chatBody(await png(16, 16, 1), 'types'), max_tokens: 'many', temperature: 'hot' }) },
  { name: 'oversized', expect: 413, body: () => Promise.resolve(JSON.stringify(chatBody(dataUrl(Buffer.alloc(24 * 1024 * 1024, 7)), 'too big'))) },
  { name: 'not json', expect: 400, body: () => Promise.resolve('{"model": "tiny-random", "messages": [') },
];

/** Status recorded for a request whose connection the server closed while the body was still being sent. */
const CLOSED_WHILE_SENDING = -413;

interface Sample {
  route: string;
  status: number;
  ms: number;
}

class Recorder {
  readonly samples: Sample[] = [];
  unexpected: string[] = [];
  add(route: string, status: number, ms: number): void {
    this.samples.push({ route, status, ms });
  }
  /**
   * `closedIsRefusal`: for a body over the limit, the gateway answers 413 and closes the connection
   * while the client may still be sending; the client then sees the reset, not the 413 (status "closed").
   */
  async timed(route: string, call: () => Promise<Response>, closedIsRefusal = false): Promise<Response | null> {
    const t = performance.now();
    try {
      const res = await call();
      this.add(route, res.status, performance.now() - t);
      return res;
    } catch (e) {
      if (closedIsRefusal) {
        this.add(route, CLOSED_WHILE_SENDING, performance.now() - t);
        return null;
      }
      this.add(route, 0, performance.now() - t);
      this.unexpected.push(`${route}: ${e instanceof Error ? e.message : String(e)}`);
      return null;
    }
  }
}

async function main(): Promise<boolean> {
  const { execFileSync } = await import('node:child_process');
  execFileSync(process.execPath, [join(ROOT, 'scripts', 'build.mjs')], { cwd: ROOT, stdio: 'inherit' });
  const modelDir = join(testCacheDir(), 'tiny-random');
  if (!existsSync(join(modelDir, 'config.json'))) await generateModel({ preset: 'tiny', outDir: modelDir, seed: 0 });

  const server = await PrivateRedis.start();
  cleanups.push(() => server.dispose());
  const redis = new Redis(server.url);
  cleanups.push(() => Promise.resolve(redis.disconnect()));
  const prefix = uniquePrefix();
  const limits = {
    RATE_LIMIT_KEY_RPM: '1000000',
    RATE_LIMIT_TENANT_RPM: '1000000',
    TENANT_TOKENS_PER_MIN: '100000000',
    TENANT_MAX_INFLIGHT_JOBS: '256',
    TENANT_MAX_QUEUED_JOBS: '256',
  };
  const gateway = await startGatewayProcess(prefix, server.url, { ...limits, JOB_TTL_S: String(JOB_TTL_S), LOG_LEVEL: 'warn', JOB_DEADLINE_S: '120' });
  cleanups.push(async () => void (await stopProcess(gateway, 'SIGKILL')));
  const worker = await startWorker(prefix, { JOB_TTL_S: String(JOB_TTL_S), FASTVLM_THREADS: '1' }, server.url);
  cleanups.push(async () => void (await stopProcess(worker, 'SIGKILL')));
  const redisPid = Number(/process_id:(\d+)/.exec(await redis.info('server'))?.[1]);
  const processes = { gateway: gateway.child.pid ?? 0, worker: worker.child.pid ?? 0, redis: redisPid };
  const rec = new Recorder();
  const url = gateway.url;
  const images = await Promise.all([0, 1, 2, 3].map((s) => png(48, 40, s)));
  const badBodies = await Promise.all(BAD_INPUTS.map(async (b) => ({ ...b, text: await b.body() })));
  let n = 0;
  const post = (path: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> =>
    fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...auth(), ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const fresh = (maxTokens: number, extra: Record<string, unknown> = {}): Record<string, unknown> =>
    chatBody(images[n % images.length] ?? Buffer.alloc(0), `soak question ${n++}`, { max_tokens: maxTokens, ...extra });

  const kinds: [number, string, () => Promise<void>][] = [
    [20, 'sync', async () => {
      const res = await rec.timed('POST /v1/chat/completions', () => post('/v1/chat/completions', fresh(8)));
      await res?.arrayBuffer();
    }],
    [15, 'stream', async () => {
      const res = await rec.timed('POST /v1/chat/completions (stream)', () => post('/v1/chat/completions', fresh(12, { stream: true, temperature: 0.8 })));
      if (res?.status === 200) await streamSse(res, () => undefined);
      else await res?.arrayBuffer();
    }],
    [15, 'async', async () => {
      const res = await rec.timed('POST /v1/jobs', () => post('/v1/jobs', fresh(8), n % 3 === 0 ? { 'idempotency-key': `soak-${n}` } : {}));
      if (res?.status !== 202) return void (await res?.arrayBuffer());
      const { id } = (await res.json()) as { id: string };
      if (n % 2 === 0) {
        const ev = await rec.timed('GET /v1/jobs/{id}/events', () => fetch(`${url}/v1/jobs/${id}/events`, { headers: auth() }));
        if (ev?.status === 200) await streamSse(ev, () => undefined);
        else await ev?.arrayBuffer();
        return;
      }
      for (let i = 0; i < 600; i++) {
        const g = await rec.timed('GET /v1/jobs/{id}', () => fetch(`${url}/v1/jobs/${id}`, { headers: auth() }));
        const view = g?.status === 200 ? ((await g.json()) as { status: string }) : (await g?.arrayBuffer(), null);
        if (!view || ['succeeded', 'failed', 'cancelled'].includes(view.status)) return;
        await new Promise((r) => setTimeout(r, 50));
      }
    }],
    [25, 'cache hit', async () => {
      const body = chatBody(images[0] ?? Buffer.alloc(0), `a popular question ${n++ % 5}`, { max_tokens: 8 });
      const res = await rec.timed('POST /v1/chat/completions (cache)', () => post('/v1/chat/completions', body));
      await res?.arrayBuffer();
    }],
    [15, 'bad input', async () => {
      const bad = badBodies[n++ % badBodies.length];
      if (!bad) return;
      const route = `bad: ${bad.name}`;
      const res = await rec.timed(route, () => post('/v1/chat/completions', bad.text), bad.expect === 413);
      if (res && res.status !== bad.expect) rec.unexpected.push(`bad input "${bad.name}" got ${res.status}, expected ${bad.expect}`);
      await res?.arrayBuffer();
    }],
    [10, 'cancel', async () => {
      const res = await rec.timed('POST /v1/jobs', () => post('/v1/jobs', fresh(400)));
      if (res?.status !== 202) return void (await res?.arrayBuffer());
      const { id } = (await res.json()) as { id: string };
      const del = await rec.timed('DELETE /v1/jobs/{id}', () => fetch(`${url}/v1/jobs/${id}`, { method: 'DELETE', headers: auth() }));
      await del?.arrayBuffer();
    }],
  ];
  const weight = kinds.reduce((a, [w]) => a + w, 0);
  const pick = (): (() => Promise<void>) => {
    let r = Math.random() * weight;
    for (const [w, , run] of kinds) if ((r -= w) < 0) return run;
    return kinds[0]?.[2] ?? (() => Promise.resolve());
  };

  const started = Date.now();
  const rss = (): Record<string, number> => Object.fromEntries(Object.entries(processes).map(([k, pid]) => [k, rssBytes(pid)]));
  // RSS is sampled every second; start and end are medians over 10 s windows, so one GC or one 20 MB body does not decide.
  const rssSamples: { at: number; rss: Record<string, number> }[] = [];
  const sampler = setInterval(() => rssSamples.push({ at: Date.now() - started, rss: rss() }), 1000);
  const windowMedian = (from: number, to: number): Record<string, number> =>
    Object.fromEntries(Object.keys(processes).map((p) => [p, percentile(rssSamples.filter((s) => s.at >= from && s.at <= to).map((s) => s.rss[p] ?? 0), 50)]));
  let startKeys: KeySnapshot | null = null;
  let midKeys: KeySnapshot | null = null;
  let measuredFrom = started;
  const snapshots = (async () => {
    while (Date.now() - started < WARMUP_MS) await new Promise((r) => setTimeout(r, 250));
    startKeys = await keySnapshot(redis, prefix);
    measuredFrom = Date.now();
    console.log(`warm-up done after ${((measuredFrom - started) / 1000).toFixed(0)} s; measuring for ${((TOTAL_MS - WARMUP_MS) / 1000).toFixed(0)} s`);
    while (Date.now() - started < WARMUP_MS + (TOTAL_MS - WARMUP_MS) / 2) await new Promise((r) => setTimeout(r, 250));
    midKeys = await keySnapshot(redis, prefix);
  })();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (Date.now() - started < TOTAL_MS) await pick()();
    }),
  );
  await snapshots;
  const endedAt = Date.now();
  clearInterval(sampler);
  const startRss = windowMedian(WARMUP_MS - 10_000, WARMUP_MS);
  const endRss = windowMedian(endedAt - started - 10_000, endedAt - started);
  const peakRss = Object.fromEntries(Object.keys(processes).map((p) => [p, Math.max(...rssSamples.filter((s) => s.at >= WARMUP_MS).map((s) => s.rss[p] ?? 0))]));
  const endKeys = await keySnapshot(redis, prefix);
  const alive = { gateway: isAlive(gateway), worker: isAlive(worker) };

  // Report.
  const measured = rec.samples.length;
  const seconds = (endedAt - started) / 1000;
  const byRoute = new Map<string, Sample[]>();
  for (const s of rec.samples) byRoute.set(s.route, [...(byRoute.get(s.route) ?? []), s]);
  const routeRows = [...byRoute.entries()].map(([route, ss]) => {
    const statuses: Record<number, number> = {};
    for (const s of ss) statuses[s.status] = (statuses[s.status] ?? 0) + 1;
    return {
      route,
      requests: ss.length,
      statuses: Object.entries(statuses).map(([k, v]) => `${k}:${v}`).join(' '),
      p50_ms: percentile(ss.map((s) => s.ms), 50),
      p99_ms: percentile(ss.map((s) => s.ms), 99),
    };
  });
  console.log(`\nsoak: ${MINUTES} min, ${CONCURRENCY} in flight, ${measured} requests, ${(measured / seconds).toFixed(1)} req/s\n`);
  console.log(table(routeRows));
  const statusTotals: Record<number, number> = {};
  for (const s of rec.samples) statusTotals[s.status] = (statusTotals[s.status] ?? 0) + 1;
  console.log(`\nstatuses: ${Object.entries(statusTotals).map(([k, v]) => `${k}:${v}`).join(' ')}`);
  const mb = (b: number | undefined): number => Math.round(((b ?? 0) / 1048576) * 10) / 10;
  const rssRows = Object.keys(processes).map((p) => ({
    process: p,
    start_mb: mb(startRss[p]),
    end_mb: mb(endRss[p]),
    peak_mb: mb(peakRss[p]),
    growth_pct: Math.round((((endRss[p] ?? 0) - (startRss[p] ?? 1)) / (startRss[p] ?? 1)) * 1000) / 10,
  }));
  console.log(`\nRSS (MB): median of the last 10 s of warm-up (start) and of the run (end), peak after warm-up\n${table(rssRows)}`);
  const kindRows = endKeys.kinds.map((k) => {
    const s = startKeys?.kinds.find((x) => x.kind === k.kind);
    const m = midKeys?.kinds.find((x) => x.kind === k.kind);
    return { kind: k.kind, start: s?.count ?? 0, mid: m?.count ?? 0, end: k.count, without_ttl: k.withoutTtl, bounded: k.bounded ? 'yes' : `NO (${k.why})` };
  });
  console.log(`\nRedis keys by kind\n${table(kindRows)}`);

  const fiveXx = rec.samples.filter((s) => s.status >= 500 || s.status === 0).length;
  const timeline = rssSamples.filter((_, i) => i % 15 === 0).map((s) => ({ at_s: Math.round(s.at / 1000), ...Object.fromEntries(Object.entries(s.rss).map(([p, b]) => [`${p}_mb`, mb(b)])) }));
  console.log(`\nRSS every 15 s (MB)\n${table(timeline)}`);
  console.log(`(status ${CLOSED_WHILE_SENDING}: the gateway closed the connection of an oversized body before the client finished sending it; counted as refused, not as an error)`);
  const checks = [
    { check: 'no 5xx (or dropped connection)', pass: fiveXx === 0, detail: `${fiveXx}` },
    { check: 'bad inputs refused with their 4xx', pass: rec.unexpected.length === 0, detail: rec.unexpected.slice(0, 3).join('; ') || 'ok' },
    ...rssRows
      .filter((r) => r.process !== 'redis')
      .map((r) => ({ check: `${r.process} RSS growth < 10%`, pass: r.growth_pct < 10, detail: `${r.growth_pct}%` })),
    { check: 'every key kind expires or is bounded', pass: endKeys.kinds.every((k) => k.bounded), detail: endKeys.kinds.filter((k) => !k.bounded).map((k) => k.kind).join(', ') || 'ok' },
    { check: 'gateway and worker still running', pass: alive.gateway && alive.worker, detail: JSON.stringify(alive) },
  ];
  console.log(`\nchecks\n${table(checks.map((c) => ({ check: c.check, result: c.pass ? 'PASS' : 'FAIL', detail: c.detail })))}`);
  console.log('(redis RSS is reported, not checked: its allocator keeps pages as keys accumulate up to their TTL plateau)');

  await Promise.all([stopProcess(gateway, 'SIGTERM'), stopProcess(worker, 'SIGTERM')]);
  return checks.every((c) => c.pass);
}

/** What to stop, newest first, whether the run ends normally or not: no process outlives the soak. */
const cleanups: (() => Promise<void>)[] = [];

async function cleanUp(): Promise<void> {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
}

runMain(main, cleanUp);
