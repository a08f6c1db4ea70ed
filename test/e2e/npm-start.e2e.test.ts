import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { KedaClient, ref } from '../scaler/harness';
import { scrape, value } from '../observability/prom';
import { chatBody, png, postJson } from '../support/requests';
import { freePort } from '../support/redis-server';
import { ROOT, testCacheDir, uniquePrefix, until } from '../support/stack';

/** `npm start` as a user runs it: scripts/start.mjs in the foreground, stopped with SIGTERM. */
function start(env: Record<string, string>) {
  const child = spawn(process.execPath, [join(ROOT, 'scripts', 'start.mjs')], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', FASTVLM_CACHE_DIR: testCacheDir(), FASTVLM_THREADS: '1', LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return { child, output: () => out, exited };
}

describe('npm start', () => {
  it('starts a gateway, a worker per model pool and the scaler on the tiny model, prints a usable key, answers, and stops everything on SIGTERM', async () => {
    const port = await freePort();
    // The workers take this port and the next one.
    const workerPort = await freePort();
    const [scalerGrpcPort, scalerHttpPort] = [await freePort(), await freePort()];
    const app = start({
      // Two pools: the same generated weights under two model ids.
      FASTVLM_MODELS: 'tiny-random,tiny-random@other',
      PORT: String(port),
      WORKER_HTTP_PORT: String(workerPort),
      SCALER_GRPC_PORT: String(scalerGrpcPort),
      SCALER_HTTP_PORT: String(scalerHttpPort),
      FASTVLM_REDIS_PREFIX: uniquePrefix(),
    });
    const scalerUrl = `http://127.0.0.1:${scalerHttpPort}`;
    try {
      const key = await until('the API key line', () => /API key: (\S+)/.exec(app.output())?.[1], 90_000);
      expect(app.output()).toContain(`http://127.0.0.1:${port}`);
      await until('readiness', async () => (await fetch(`http://127.0.0.1:${port}/health/ready`).catch(() => null))?.status === 200, 90_000).catch((e: unknown) => {
        // What the processes said is what tells why (a port taken, a worker that failed to load).
        throw new Error(`${(e as Error).message}\n--- npm start output ---\n${app.output().slice(-6000)}`);
      });
      const res = await postJson(`http://127.0.0.1:${port}/v1/chat/completions`, chatBody(await png(32, 32, 1), 'hello', { max_tokens: 3 }), {
        authorization: `Bearer ${key}`,
      });
      expect(res.status).toBe(200);
      expect(((await res.json()) as { usage: { completion_tokens: number } }).usage.completion_tokens).toBe(3);
      const second = await postJson(`http://127.0.0.1:${port}/v1/chat/completions`, chatBody(await png(32, 32, 1), 'hello', { model: 'tiny-random@other', max_tokens: 3 }), {
        authorization: `Bearer ${key}`,
      });
      expect(second.status).toBe(200);
      expect(((await second.json()) as { model: string }).model).toBe('tiny-random@other');
      expect(app.output()).toContain(`worker (tiny-random@other) http://127.0.0.1:${workerPort + 1}/metrics`);

      // The scaler, as KEDA calls it at the address printed, on the stack's Redis and prefix.
      const address = /scaler: +KEDA external scaler \(gRPC\) at (\S+)/.exec(app.output())?.[1];
      expect(address).toBe(`127.0.0.1:${scalerGrpcPort}`);
      expect(app.output()).toContain(`${scalerUrl}/metrics`);
      await until('the scaler to be ready', async () => (await fetch(`${scalerUrl}/health/ready`).catch(() => null))?.status === 200, 60_000);
      const keda = new KedaClient(address ?? '');
      try {
        const so = ref('fastvlm-workers', { strategy: 'adaptive' });
        const spec = await keda.getMetricSpec(so);
        // No queue in the metadata: the default model's pool (the first of FASTVLM_MODELS).
        expect(spec.metricSpecs).toEqual([{ metricName: 'fastvlm-inference-tiny-random-desired-replicas', targetSize: 1, targetSizeFloat: 1 }]);
        const metrics = await keda.getMetrics(so, `s0-${spec.metricSpecs[0]?.metricName ?? ''}`);
        expect(metrics.metricValues[0]?.metricValue).toBeGreaterThanOrEqual(0);
        expect(metrics.metricValues[0]?.metricValueFloat).toBe(metrics.metricValues[0]?.metricValue);
        expect(typeof (await keda.isActive(so))).toBe('boolean');
      } finally {
        keda.close();
      }
      // It counts each pool's worker among that pool's ready ones: same Redis, same prefix.
      await until(
        'the scaler to see each pool\'s ready worker',
        async () => {
          const samples = await scrape(scalerUrl);
          const ready = (queue: string) => value(samples, 'fastvlm_scaler_signal', { queue, signal: 'ready' });
          return ready('inference-tiny-random') === 1 && ready('inference-tiny-random~40other') === 1;
        },
        30_000,
      );
    } finally {
      app.child.kill('SIGTERM');
    }
    expect(await app.exited).toBe(0);
    // Nothing it started still listens.
    await expect(fetch(`http://127.0.0.1:${port}/health/live`)).rejects.toThrow();
    await expect(fetch(`${scalerUrl}/health/live`)).rejects.toThrow();
  }, 180_000);
});
