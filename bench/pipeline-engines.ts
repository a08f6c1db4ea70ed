import sharp from 'sharp';
import { AutoModelForImageTextToText, AutoProcessor, BaseStreamer, RawImage, env, type TextStreamer } from '@huggingface/transformers';
import { FastVlmPipeline } from '@fastvlm/pipeline';

export type EngineName = 'engine' | 'transformers.js';

export interface Measurements {
  ttftP50Ms: number;
  decodeTps: number;
  aggregateTps: Record<1 | 4 | 8, number>;
  repeatTtftMs: number;
  peakRssMb: number;
}

/** One request: the time its first token arrived and when it ended. */
type Run = (image: Buffer, question: string, maxTokens: number) => Promise<{ firstMs: number; totalMs: number; tokens: number }>;

let imageSeed = 0;
/** A new, distinct image each call (noise: no two alike), so no cache of either engine helps. */
async function freshImage(): Promise<Buffer> {
  const seed = ++imageSeed;
  const w = 640;
  const h = 480;
  const raw = Buffer.alloc(w * h * 3);
  let s = seed * 2654435761;
  for (let i = 0; i < raw.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    raw[i] = s >>> 24;
  }
  return sharp(raw, { raw: { width: w, height: h, channels: 3 } }).jpeg({ quality: 85 }).toBuffer();
}

async function engineRunner(dir: string, dtype: string): Promise<Run> {
  const p = await FastVlmPipeline.load({ model: dir, dtype, maxBatchSize: 8, batchWindowMs: 5 });
  await p.warmup();
  return async (image, question, maxTokens) => {
    const t0 = performance.now();
    let first = 0;
    const r = await p.generate({ image, question, params: { maxTokens, temperature: 0, topP: 1, stop: [] }, onToken: () => (first ||= performance.now()) });
    return { firstMs: (first || performance.now()) - t0, totalMs: performance.now() - t0, tokens: r.usage.completionTokens };
  };
}

class FirstToken extends BaseStreamer {
  private puts = 0;
  at = 0;
  // The first put is the prompt; the second is the first generated token.
  override put(): void {
    if (++this.puts === 2) this.at = performance.now();
  }
  override end(): void {}
}

async function transformersRunner(dir: string, dtype: string): Promise<Run> {
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  const processor = await AutoProcessor.from_pretrained(dir);
  const model = await AutoModelForImageTextToText.from_pretrained(dir, { dtype: dtype as 'fp32', device: 'cpu' });
  const run: Run = async (image, question, maxTokens) => {
    const t0 = performance.now();
    const prompt: unknown = processor.apply_chat_template([{ role: 'user', content: `<image>\n${question}` }], { add_generation_prompt: true });
    const inputs: unknown = await processor(await RawImage.fromBlob(new Blob([new Uint8Array(image)])), prompt);
    const streamer = new FirstToken();
    const out = (await model.generate({ ...(inputs as Record<string, unknown>), max_new_tokens: maxTokens, do_sample: false, streamer: streamer as unknown as TextStreamer })) as { dims: number[] };
    const promptLen = ((inputs as { input_ids: { dims: number[] } }).input_ids.dims[1] ?? 0);
    return { firstMs: (streamer.at || performance.now()) - t0, totalMs: performance.now() - t0, tokens: (out.dims[1] ?? 0) - promptLen };
  };
  await run(await freshImage(), 'warm-up', 2);
  return run;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

export async function measure(engine: EngineName, dir: string, dtype: string, tokens: number): Promise<Measurements> {
  const run = engine === 'engine' ? await engineRunner(dir, dtype) : await transformersRunner(dir, dtype);
  const ttfts: number[] = [];
  const decode: number[] = [];
  for (let i = 0; i < 3; i++) {
    const r = await run(await freshImage(), 'What is in this picture?', tokens);
    ttfts.push(r.firstMs);
    decode.push((r.tokens - 1) / ((r.totalMs - r.firstMs) / 1000));
  }
  const aggregateTps = { 1: 0, 4: 0, 8: 0 };
  for (const c of [1, 4, 8] as const) {
    const images = await Promise.all(Array.from({ length: c }, () => freshImage()));
    const t0 = performance.now();
    const rs = await Promise.all(images.map((img, i) => run(img, `Question number ${i}: describe it.`, tokens)));
    aggregateTps[c] = rs.reduce((n, r) => n + r.tokens, 0) / ((performance.now() - t0) / 1000);
  }
  const image = await freshImage();
  await run(image, 'What colour dominates?', 1);
  const repeat = await run(image, 'And what shapes are there?', 1);
  return {
    ttftP50Ms: median(ttfts),
    decodeTps: median(decode),
    aggregateTps,
    repeatTtftMs: repeat.firstMs,
    peakRssMb: process.resourceUsage().maxRSS / 1024,
  };
}
