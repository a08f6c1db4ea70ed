import { readdir, readFile } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { parseDtypeSpec } from '../engine/dtype';
import { resolveModel } from '../engine/model-repository';
import { loadPipeline } from '../engine/pipeline';
import { pullModel } from './pull';
import { useHubFixture } from './test-hub-server';

const fx = useHubFixture();
const fp32 = parseDtypeSpec(undefined);
const GRAPHS = ['onnx/vision_encoder.onnx', 'onnx/embed_tokens.onnx', 'onnx/decoder_model_merged.onnx'];

async function filesIn(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)).split(sep).join('/'))
    .sort();
}

describe('pulling a model from the hub', () => {
  it('writes exactly the files the model needs, and the pipeline answers from them', async () => {
    const hub = await fx.hub();
    const cacheDir = fx.cacheDir();
    const lines: string[] = [];
    const pipeline = await loadPipeline({
      model: 'acme/vlm',
      cacheDir,
      threads: 1,
      hub: { endpoint: hub.endpoint, progress: 'log', log: (l) => lines.push(l) },
    });
    try {
      const dir = join(cacheDir, 'hub', 'acme', 'vlm', 'main');
      expect(pipeline.info.dir).toBe(dir);
      const served = await filesIn(fx.served);
      expect(await filesIn(dir)).toEqual(['.commit', ...served].sort());
      for (const f of served) expect((await readFile(join(dir, f))).equals(await readFile(join(fx.served, f)))).toBe(true);
      expect((await readFile(join(dir, '.commit'), 'utf8')).trim()).toBe(hub.commit);

      const image = await sharp({ create: { width: 48, height: 40, channels: 3, background: '#3a7' } }).png().toBuffer();
      const answer = await pipeline.generate({ image, question: 'What is this?', params: { maxTokens: 2, temperature: 0, topP: 1, stop: [] } });
      expect(answer.usage.completionTokens).toBeGreaterThan(0);
      expect(answer.usage.completionTokens).toBeLessThanOrEqual(2);
    } finally {
      await pipeline.dispose();
    }
    expect(lines.some((l) => l.startsWith('downloading onnx/decoder_model_merged.onnx'))).toBe(true);
    expect(lines.some((l) => l.startsWith('downloaded onnx/decoder_model_merged.onnx'))).toBe(true);
    // Each file's bytes were fetched once; LFS ones from the CDN the hub redirected to.
    for (const f of await filesIn(fx.served)) expect(hub.downloads(f)).toHaveLength(1);
    expect(hub.downloads('tokenizer.json')[0]?.route).toBe('cdn');
  });

  it('asks for every file at the commit the first answer named, so a moving branch cannot mix commits', async () => {
    const hub = await fx.hub();
    await pullModel('acme/vlm', fx.cacheDir(), fp32, { endpoint: hub.endpoint, progress: 'none' });
    const [first, ...rest] = hub.requests.filter((r) => r.route === 'resolve');
    expect(first?.rev).toBe('main');
    expect(rest.length).toBeGreaterThan(5);
    expect(rest.every((r) => r.rev === hub.commit)).toBe(true);
  });

  it('finds a complete cache without a single request', async () => {
    const hub = await fx.hub();
    const cacheDir = fx.cacheDir();
    const options = { hub: { endpoint: hub.endpoint, progress: 'none' as const } };
    const first = await resolveModel('acme/vlm', cacheDir, options);
    const before = hub.requests.length;
    expect(await resolveModel('acme/vlm', cacheDir, options)).toEqual(first);
    expect(hub.requests.length).toBe(before);
  });

  it('fetches only the graphs of the chosen dtype, with their external weights', async () => {
    const dir = await fx.variant('served-q4', {
      'onnx/vision_encoder_q4.onnx': 'onnx/vision_encoder.onnx',
      'onnx/embed_tokens_q4.onnx': 'onnx/embed_tokens.onnx',
      'onnx/decoder_model_merged_q4.onnx': 'onnx/decoder_model_merged.onnx',
      'onnx/decoder_model_merged_q4.onnx_data': 'onnx/embed_tokens.onnx',
      'onnx/decoder_model_merged.onnx_data': 'onnx/embed_tokens.onnx',
    });
    const hub = await fx.hub({ dir });
    const result = await pullModel('acme/vlm', fx.cacheDir(), parseDtypeSpec('q4'), { endpoint: hub.endpoint, progress: 'none' });
    expect(result.downloaded.filter((f) => f.startsWith('onnx/'))).toEqual([
      'onnx/vision_encoder_q4.onnx',
      'onnx/embed_tokens_q4.onnx',
      'onnx/decoder_model_merged_q4.onnx_data',
      'onnx/decoder_model_merged_q4.onnx',
    ]);
    expect(await filesIn(join(result.dir, 'onnx'))).toEqual([
      'decoder_model_merged_q4.onnx',
      'decoder_model_merged_q4.onnx_data',
      'embed_tokens_q4.onnx',
      'vision_encoder_q4.onnx',
    ]);
    const fp32Asked = hub.requests.filter((r) => GRAPHS.some((g) => r.file.startsWith(g)));
    expect(fp32Asked).toEqual([]);
  });

  it('uses the revision listing when the hub has one, asking nothing about files the repo lacks', async () => {
    const hub = await fx.hub({ api: true });
    const result = await pullModel('acme/vlm', fx.cacheDir(), fp32, { endpoint: hub.endpoint, progress: 'none' });
    expect(result.commit).toBe(hub.commit);
    expect(hub.requests.filter((r) => r.route === 'api')).toHaveLength(1);
    // The generated model has no chat_template.jinja, special_tokens_map.json or external weights.
    expect(hub.requests.filter((r) => r.route === 'resolve' && r.method === 'HEAD')).toHaveLength((await filesIn(fx.served)).length);
  });

  it('adds another dtype to a pulled folder from the commit recorded there', async () => {
    const dir = await fx.variant('served-fp16', {
      'onnx/vision_encoder_fp16.onnx': 'onnx/vision_encoder.onnx',
      'onnx/embed_tokens_fp16.onnx': 'onnx/embed_tokens.onnx',
      'onnx/decoder_model_merged_fp16.onnx': 'onnx/decoder_model_merged.onnx',
    });
    const hub = await fx.hub({ dir });
    const cacheDir = fx.cacheDir();
    await pullModel('acme/vlm', cacheDir, fp32, { endpoint: hub.endpoint, progress: 'none' });
    const before = hub.requests.length;
    const second = await pullModel('acme/vlm', cacheDir, parseDtypeSpec('fp16'), { endpoint: hub.endpoint, progress: 'none' });
    expect(second.downloaded).toEqual(['onnx/vision_encoder_fp16.onnx', 'onnx/embed_tokens_fp16.onnx', 'onnx/decoder_model_merged_fp16.onnx']);
    const later = hub.requests.slice(before).filter((r) => r.route === 'resolve');
    expect(later.every((r) => r.rev === hub.commit)).toBe(true);
  });
});
