import { readFile, stat, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AppError } from '@fastvlm/contracts';
import { parseDtypeSpec } from '../engine/dtype';
import { pullModel, type HubOptions } from './pull';
import { useHubFixture } from './test-hub-server';

const fx = useHubFixture();
const fp32 = parseDtypeSpec(undefined);
const BIG = 'tokenizer.json';
const GRAPH = 'onnx/vision_encoder.onnx';

const quick = (endpoint: string, more: HubOptions = {}): HubOptions => ({ endpoint, progress: 'none', retryDelayMs: 0, ...more });

async function failure(p: Promise<unknown>): Promise<AppError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(AppError);
  return e as AppError;
}

const exists = (path: string): Promise<boolean> =>
  stat(path).then(
    () => true,
    () => false,
  );

describe('interrupted downloads', () => {
  it('a connection cut midway is resumed with a byte range, and the file is byte-identical', async () => {
    const hub = await fx.hub();
    hub.cutAfter(BIG, 1_000_000);
    const { dir } = await pullModel('acme/vlm', fx.cacheDir(), fp32, quick(hub.endpoint));
    const [first, second, ...more] = hub.downloads(BIG);
    expect(more).toEqual([]);
    expect(first?.range).toBeUndefined();
    const start = Number(/^bytes=(\d+)-$/.exec(second?.range ?? '')?.[1]);
    expect(start).toBeGreaterThan(0);
    expect(start).toBeLessThanOrEqual(1_000_000);
    expect((await readFile(join(dir, BIG))).equals(await readFile(join(fx.served, BIG)))).toBe(true);
    expect(await exists(join(dir, `${BIG}.incomplete`))).toBe(false);
  });

  it('a partial file left by a failed pull is continued by the next pull', async () => {
    const hub = await fx.hub();
    const cacheDir = fx.cacheDir();
    hub.cutAfter(BIG, 700_000);
    const error = await failure(pullModel('acme/vlm', cacheDir, fp32, quick(hub.endpoint, { attempts: 1 })));
    expect(error.code).toBe('service_unavailable');
    expect(error.message).toContain(BIG);
    const dir = join(cacheDir, 'hub', 'acme', 'vlm', 'main');
    expect(await exists(join(dir, BIG))).toBe(false);
    const kept = (await stat(join(dir, `${BIG}.incomplete`))).size;
    expect(kept).toBeGreaterThan(0);

    await pullModel('acme/vlm', cacheDir, fp32, quick(hub.endpoint));
    expect(hub.downloads(BIG).map((r) => r.range)).toEqual([undefined, `bytes=${kept}-`]);
    expect((await readFile(join(dir, BIG))).equals(await readFile(join(fx.served, BIG)))).toBe(true);
  });

  it('a failed pull leaves the folder unusable rather than half-published', async () => {
    const hub = await fx.hub();
    const cacheDir = fx.cacheDir();
    hub.cutAfter(GRAPH, 1000, 5);
    await failure(pullModel('acme/vlm', cacheDir, fp32, quick(hub.endpoint, { attempts: 2 })));
    const offline = await failure(pullModel('acme/vlm', cacheDir, fp32, { offline: true }));
    expect(offline.code).toBe('model_not_found');
    expect(offline.message).toContain(GRAPH);
  });
});

describe('verification', () => {
  it('a file whose bytes do not match the SHA-256 the hub states is rejected, and nothing of it is kept', async () => {
    const hub = await fx.hub();
    const cacheDir = fx.cacheDir();
    hub.corrupt(GRAPH);
    const error = await failure(pullModel('acme/vlm', cacheDir, fp32, quick(hub.endpoint)));
    expect(error.code).toBe('model_load_failed');
    expect(error.message).toContain(GRAPH);
    expect(error.message).toContain('acme/vlm');
    const dir = join(cacheDir, 'hub', 'acme', 'vlm', 'main');
    expect(await exists(join(dir, GRAPH))).toBe(false);
    expect(await exists(join(dir, `${GRAPH}.incomplete`))).toBe(false);
    // A fresh download is never retried for a mismatch: the same bytes would come back.
    expect(hub.downloads(GRAPH)).toHaveLength(1);
  });

  it('a corrupt partial from an earlier run is downloaded again whole before the file is judged', async () => {
    const hub = await fx.hub();
    const cacheDir = fx.cacheDir();
    const dir = join(cacheDir, 'hub', 'acme', 'vlm', 'main');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, `${BIG}.incomplete`), Buffer.alloc(4096, 7));
    await pullModel('acme/vlm', cacheDir, fp32, quick(hub.endpoint));
    expect(hub.downloads(BIG).map((r) => r.range)).toEqual(['bytes=4096-', undefined]);
    expect((await readFile(join(dir, BIG))).equals(await readFile(join(fx.served, BIG)))).toBe(true);
  });

  it('small files without a SHA-256 are never resumed from a partial of unknown origin', async () => {
    const hub = await fx.hub();
    const cacheDir = fx.cacheDir();
    const dir = join(cacheDir, 'hub', 'acme', 'vlm', 'main');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'config.json.incomplete'), '{"stale": ');
    await pullModel('acme/vlm', cacheDir, fp32, quick(hub.endpoint));
    expect(hub.downloads('config.json').map((r) => r.range)).toEqual([undefined]);
    expect((await readFile(join(dir, 'config.json'))).equals(await readFile(join(fx.served, 'config.json')))).toBe(true);
  });
});
