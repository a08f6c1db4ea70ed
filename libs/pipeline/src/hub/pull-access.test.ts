import { cp, mkdir, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AppError } from '@fastvlm/contracts';
import { parseDtypeSpec } from '../engine/dtype';
import { resolveModel } from '../engine/model-repository';
import { pullModel } from './pull';
import { closedPort, useHubFixture } from './test-hub-server';

const fx = useHubFixture();
const fp32 = parseDtypeSpec(undefined);

async function failure(p: Promise<unknown>): Promise<AppError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(AppError);
  return e as AppError;
}

describe('offline mode', () => {
  it('makes no request and says the model is not in the cache', async () => {
    const hub = await fx.hub();
    const cacheDir = fx.cacheDir();
    const error = await failure(resolveModel('acme/vlm', cacheDir, { hub: { endpoint: hub.endpoint, offline: true } }));
    expect(error.code).toBe('model_not_found');
    expect(error.message).toContain('HF_HUB_OFFLINE');
    expect(error.message).toContain(join(cacheDir, 'hub', 'acme', 'vlm', 'main'));
    expect(hub.requests).toEqual([]);
  });

  it('names the files a partly filled cache lacks', async () => {
    const hub = await fx.hub();
    const cacheDir = fx.cacheDir();
    const dir = join(cacheDir, 'hub', 'acme', 'vlm', 'main');
    await cp(fx.served, dir, { recursive: true });
    await rm(join(dir, 'onnx', 'decoder_model_merged.onnx'));
    const error = await failure(resolveModel('acme/vlm', cacheDir, { hub: { endpoint: hub.endpoint, offline: true } }));
    expect(error.code).toBe('model_not_found');
    expect(error.message).toContain('lacks onnx/decoder_model_merged.onnx (dtype fp32)');
    expect(hub.requests).toEqual([]);
  });

  it('loads from a filled cache without a request', async () => {
    const hub = await fx.hub();
    const cacheDir = fx.cacheDir();
    const dir = join(cacheDir, 'hub', 'acme', 'vlm', 'v1');
    await mkdir(join(cacheDir, 'hub', 'acme', 'vlm'), { recursive: true });
    await cp(fx.served, dir, { recursive: true });
    expect(await resolveModel('acme/vlm@v1', cacheDir, { hub: { endpoint: hub.endpoint, offline: true } })).toMatchObject({ dir });
    expect(hub.requests).toEqual([]);
  });
});

describe('hub failures', () => {
  it('a hub that refuses connections is service_unavailable, naming the host, the repo and the ways out', async () => {
    const host = `127.0.0.1:${await closedPort()}`;
    const error = await failure(pullModel('acme/vlm', fx.cacheDir(), fp32, { endpoint: `http://${host}`, progress: 'none' }));
    expect(error.code).toBe('service_unavailable');
    for (const part of [host, 'acme/vlm', 'connection refused', 'HF_ENDPOINT', 'HF_HUB_OFFLINE']) expect(error.message).toContain(part);
  });

  it('a hub that never answers is service_unavailable once the timeout passes', async () => {
    const silent = createServer(() => undefined);
    await new Promise<void>((ok) => silent.listen(0, '127.0.0.1', ok));
    try {
      const endpoint = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
      const error = await failure(pullModel('acme/vlm', fx.cacheDir(), fp32, { endpoint, timeoutMs: 200, progress: 'none' }));
      expect(error.code).toBe('service_unavailable');
      expect(error.message).toContain('no answer within');
    } finally {
      silent.closeAllConnections();
      await new Promise<void>((ok) => silent.close(() => ok()));
    }
  });

  it('a private repo without a token is model_not_found, pointing at HF_TOKEN', async () => {
    const hub = await fx.hub({ token: 'hf_secret' });
    const error = await failure(pullModel('acme/vlm', fx.cacheDir(), fp32, { endpoint: hub.endpoint, progress: 'none' }));
    expect(error.code).toBe('model_not_found');
    expect(error.message).toContain('401');
    expect(error.message).toContain('HF_TOKEN');
    expect(error.message).toContain(new URL(hub.endpoint).host);
  });

  it('an unknown repo is model_not_found, asking to check the id', async () => {
    const hub = await fx.hub();
    const error = await failure(pullModel('acme/other', fx.cacheDir(), fp32, { endpoint: hub.endpoint, progress: 'none' }));
    expect(error.code).toBe('model_not_found');
    expect(error.message).toContain('acme/other');
    expect(error.message).toContain('check the id');
  });

  it('a dtype the repo does not export is model_not_found, naming the missing graphs', async () => {
    const hub = await fx.hub();
    const error = await failure(pullModel('acme/vlm', fx.cacheDir(), parseDtypeSpec('fp16'), { endpoint: hub.endpoint, progress: 'none' }));
    expect(error.code).toBe('model_not_found');
    expect(error.message).toContain('onnx/vision_encoder_fp16.onnx');
    expect(error.message).toContain('fp16');
  });

  it('ids and revisions that would climb out of the cache are refused before any request', async () => {
    const hub = await fx.hub();
    for (const id of ['acme/..', 'acme/vlm@../../x', 'acme/vlm@a/../b', '../x/vlm']) {
      const error = await failure(pullModel(id, fx.cacheDir(), fp32, { endpoint: hub.endpoint, progress: 'none' }));
      expect(error.code).toBe('model_not_found');
    }
    expect(hub.requests).toEqual([]);
  });
});

describe('credentials', () => {
  it('the token goes to the hub, never to the CDN on another origin that LFS files redirect to', async () => {
    const hub = await fx.hub({ token: 'hf_secret', separateCdn: true });
    await pullModel('acme/vlm', fx.cacheDir(), fp32, { endpoint: hub.endpoint, token: 'hf_secret', progress: 'none' });
    const atHub = hub.requests.filter((r) => r.server === 'hub');
    const atCdn = hub.requests.filter((r) => r.server === 'cdn');
    expect(atCdn.length).toBeGreaterThanOrEqual(4);
    expect(atHub.every((r) => r.authorization === 'Bearer hf_secret')).toBe(true);
    expect(atCdn.map((r) => r.authorization)).toEqual(atCdn.map(() => undefined));
  });
});
