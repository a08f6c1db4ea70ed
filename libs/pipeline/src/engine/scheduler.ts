import type * as ort from 'onnxruntime-node';
import type { GenerateResult } from '../types';
import { KvBatch, type KvShape } from './kv-batch';
import type { ModelConfig } from './model-config';
import { DeviceMeter, Sequence, timeoutError, type SequenceRequest, type TextSide } from './sequence';
import type { ModelSessions } from './sessions';
import { PrefixCache } from './prefix-cache';
import { floatTensor, i64, inputType, releaseNow, toFloat32, type FloatType, type KvArray } from './tensors';
import type { VisionCache } from './vision-cache';

/** An image ready for the model: features from the cache, or pixels for the vision encoder. */
export type Prepared =
  | { kind: 'features'; features: Float32Array }
  | { kind: 'pixels'; pixels: Float32Array; width: number; height: number; preprocessMs: number };

export interface SchedulerOptions {
  /** Sequences decoded together at most. */
  maxBatch: number;
  /** Milliseconds an idle engine waits after a request arrives for others to batch with it. */
  windowMs: number;
  /** Called after every decode step with the number of sequences in it. */
  onStep?: ((rows: number) => void) | undefined;
  /** Bytes of image-prefix KV cache kept (0 disables prefix caching). */
  prefixCacheBytes: number;
  /** Milliseconds clock that times model runs for device-time accounting (tests); default `performance.now`. */
  clock?: (() => number) | undefined;
}

export interface SchedulerStats {
  visionRuns: number;
  visionImages: number;
  prefills: number;
  steps: number;
  /** Sum of batch sizes over steps: `stepRows / steps` is the mean batch size. */
  stepRows: number;
  /** Prefills that reused the image's cached prompt prefix. */
  prefixHits: number;
  /** Wall time of every model run (vision, prefill, decode steps): what the requests' `deviceMs` shares add up to. */
  deviceMs: number;
}

interface Waiting {
  req: SequenceRequest;
  imageSha: string;
  prep: Promise<Prepared>;
  /** The preparation's outcome once it has settled; null while it runs. */
  settled: PromiseSettledResult<Prepared> | null;
  submittedAt: number;
  /** Device time charged to the request, from its vision run on (its sequence takes it over). */
  meter: DeviceMeter;
  resolve: (r: GenerateResult) => void;
  reject: (e: unknown) => void;
}

interface Row {
  seq: Sequence;
  firstTokenAt: number;
  resolve: (r: GenerateResult) => void;
  reject: (e: unknown) => void;
}

/**
 * Continuous batching: requests join the running batch between decode steps
 * (vision encoder batched over the newcomers, one prefill each), every step
 * decodes all running sequences in one decoder call with a left-padded KV
 * cache, and finished or cancelled sequences leave at once, freeing their cache.
 *
 * A newcomer's preparation (image decode, vision-cache lookup) runs in the
 * background: while sequences are decoding, only newcomers whose preparation
 * has settled join, at the next step, so a slow decode or lookup never holds
 * up the tokens of the running ones.
 */
export class Scheduler {
  private waiting: Waiting[] = [];
  private rows: Row[] = [];
  private kv: KvBatch | null = null;
  /** Set and cleared synchronously inside `loop`, so a request submitted as the loop ends starts a new one. */
  private active = false;
  private running: Promise<void> = Promise.resolve();
  readonly stats: SchedulerStats = { visionRuns: 0, visionImages: 0, prefills: 0, steps: 0, stepRows: 0, prefixHits: 0, deviceMs: 0 };
  private readonly prefixes: PrefixCache;
  private readonly kvShape: KvShape;
  private readonly types: { pixels: FloatType; embeds: FloatType; past: FloatType };
  private readonly eos: ReadonlySet<number>;
  private readonly clock: () => number;

  constructor(
    private readonly s: ModelSessions,
    private readonly cfg: ModelConfig,
    private readonly text: TextSide,
    private readonly vision: VisionCache,
    private readonly opts: SchedulerOptions,
  ) {
    this.kvShape = { layers: cfg.numLayers, heads: cfg.numKvHeads, headDim: cfg.headDim };
    this.types = {
      pixels: inputType(s.vision, 'pixel_values'),
      embeds: inputType(s.decoder, 'inputs_embeds'),
      past: inputType(s.decoder, 'past_key_values.0.key'),
    };
    this.eos = new Set(cfg.eosTokenIds);
    this.prefixes = new PrefixCache(opts.prefixCacheBytes);
    this.clock = opts.clock ?? (() => performance.now());
  }

  submit(req: SequenceRequest, imageSha: string, prep: Promise<Prepared>): Promise<GenerateResult> {
    return new Promise((resolve, reject) => {
      const w: Waiting = { req, imageSha, prep, settled: null, submittedAt: performance.now(), meter: new DeviceMeter(req.onDeviceTime), resolve, reject };
      // The preparation may fail before its turn; that failure is reported at admission.
      void settle(prep).then((outcome) => (w.settled = outcome));
      this.waiting.push(w);
      if (!this.active) {
        this.active = true;
        this.running = this.loop();
      }
    });
  }

  /** Resolves when nothing is waiting or running. */
  async idle(): Promise<void> {
    while (this.active) await this.running;
  }

  private async loop(): Promise<void> {
    // The emptiness check and clearing `active` must happen in one synchronous
    // stretch: a request submitted in between would otherwise wait forever.
    try {
      while (this.waiting.length > 0 || this.rows.length > 0) {
        if (this.rows.length === 0 && this.waiting.length < this.opts.maxBatch && this.opts.windowMs > 0) {
          await new Promise((r) => setTimeout(r, this.opts.windowMs));
        }
        try {
          await this.admit();
          if (this.rows.length > 0) await this.step();
        } catch (e) {
          // A failed session run leaves the shared cache unusable: fail the batch, keep serving.
          for (const r of this.rows) r.reject(e);
          this.rows = [];
          this.kv = null;
        }
      }
    } finally {
      this.active = false;
    }
  }

  private async admit(): Promise<void> {
    const room = this.opts.maxBatch - this.rows.length;
    if (room <= 0 || this.waiting.length === 0) return;
    const group = await this.admissible(room);
    if (group.length === 0) return;
    const admittedAt = performance.now();
    const ready: { w: Waiting; prep: Prepared }[] = [];
    for (const { w, outcome } of group) {
      if (outcome.status === 'fulfilled') ready.push({ w, prep: outcome.value });
      else w.reject(outcome.reason);
    }
    let features: Map<string, { features: Float32Array; visionMs: number }>;
    try {
      features = await this.encodeImages(ready);
    } catch (e) {
      for (const { w } of ready) w.reject(e);
      return;
    }
    for (const { w, prep } of ready) {
      const f = features.get(w.imageSha);
      if (!f) {
        w.reject(new Error(`no image features for ${w.imageSha}`));
        continue;
      }
      try {
        await this.prefill(w, f.features, {
          queueMs: admittedAt - w.submittedAt,
          preprocessMs: prep.kind === 'pixels' ? prep.preprocessMs : 0,
          visionMs: f.visionMs,
        });
      } catch (e) {
        w.reject(e);
      }
    }
  }

  /**
   * Takes up to `room` waiting requests, oldest first, with their preparation's outcome.
   * While sequences decode, only those already prepared: waiting for the others would stall
   * every running stream, and they join at a later step. With nothing decoding, waiting stalls
   * no one, so the oldest are awaited together and share one vision encoder run.
   */
  private async admissible(room: number): Promise<{ w: Waiting; outcome: PromiseSettledResult<Prepared> }[]> {
    if (this.rows.length === 0) {
      const group = this.waiting.splice(0, room);
      return Promise.all(group.map(async (w) => ({ w, outcome: await settle(w.prep) })));
    }
    const taken: { w: Waiting; outcome: PromiseSettledResult<Prepared> }[] = [];
    this.waiting = this.waiting.filter((w) => {
      if (taken.length >= room || w.settled === null) return true;
      taken.push({ w, outcome: w.settled });
      return false;
    });
    return taken;
  }

  /** Features per image hash: cached ones as they are, the others from one vision encoder run. */
  private async encodeImages(ready: { w: Waiting; prep: Prepared }[]): Promise<Map<string, { features: Float32Array; visionMs: number }>> {
    const out = new Map<string, { features: Float32Array; visionMs: number }>();
    const todo = new Map<string, Extract<Prepared, { kind: 'pixels' }>>();
    // Every request whose features come from this run pays for it, two asking about one image included.
    const payers: DeviceMeter[] = [];
    for (const { w, prep } of ready) {
      if (prep.kind === 'features') out.set(w.imageSha, { features: prep.features, visionMs: 0 });
      else {
        todo.set(w.imageSha, prep);
        payers.push(w.meter);
      }
    }
    if (todo.size === 0) return out;
    const items = [...todo.entries()];
    const [, first] = items[0] as [string, Extract<Prepared, { kind: 'pixels' }>];
    const per = first.pixels.length;
    const batch = new Float32Array(per * items.length);
    items.forEach(([, p], i) => batch.set(p.pixels, i * per));
    const started = performance.now();
    const result = await this.onDevice(payers, () =>
      this.s.vision.run({ pixel_values: floatTensor(this.types.pixels, batch, [items.length, 3, first.height, first.width]) }),
    );
    const visionMs = performance.now() - started;
    this.stats.visionRuns++;
    this.stats.visionImages += items.length;
    const t = result.image_features;
    if (!t) throw new Error('vision encoder returned no image_features');
    const all = toFloat32(t);
    const each = all.length / items.length;
    items.forEach(([sha], i) => {
      const features = all.slice(i * each, (i + 1) * each);
      out.set(sha, { features, visionMs });
      // Not awaited: a slow shared-store write must not hold up the batch (put never fails a request).
      this.vision.put(sha, features).catch(() => undefined);
    });
    return out;
  }

  private async prefill(w: Waiting, features: Float32Array, timings: { queueMs: number; preprocessMs: number; visionMs: number }): Promise<void> {
    const hidden = this.cfg.hiddenSize;
    const ids = this.text.encodePrompt(w.req.question, features.length / hidden);
    const seq = new Sequence(w.req, ids, this.eos, this.text, w.submittedAt, w.meter);
    Object.assign(seq.timings, timings);
    const why = seq.interrupted(Date.now());
    if (why === 'timeout') throw timeoutError();
    if (why === 'cancelled') {
      // Cancelled while it waited: nothing to generate.
      seq.abort('cancelled');
      w.resolve(seq.result());
      return;
    }
    const started = performance.now();
    const cut = ids.lastIndexOf(this.cfg.imageTokenId) + 1;
    const key = cut > 0 && cut < ids.length ? this.prefixes.key(w.imageSha, ids.slice(0, cut)) : null;
    const cached = key ? this.prefixes.get(key) : undefined;
    const out = await this.onDevice([seq.meter], () => (cached ? this.prefillAfter(ids, cached.columns, cached.data) : this.prefillAll(ids, features)));
    if (cached) this.stats.prefixHits++;
    this.stats.prefills++;
    const done = seq.accept(seq.pick(lastPosition(out.logits, 0)));
    releaseNow(out.logits);
    const now = performance.now();
    seq.timings.prefillMs = now - started;
    seq.timings.ttftMs = now - w.submittedAt;
    if (done) {
      if (key && !cached) this.prefixes.set(key, { columns: cut, data: KvBatch.fromPresent(this.kvShape, out, ids.length).prefix(cut) });
      w.resolve(seq.result());
      return;
    }
    const kv = KvBatch.fromPresent(this.kvShape, out, ids.length);
    if (key && !cached) this.prefixes.set(key, { columns: cut, data: kv.prefix(cut) });
    if (this.kv) this.kv.join(kv);
    else this.kv = kv;
    this.rows.push({ seq, firstTokenAt: now, resolve: w.resolve, reject: w.reject });
  }

  /** Prefill of the whole prompt, image features in place of the image tokens. */
  private async prefillAll(ids: number[], features: Float32Array): Promise<ort.InferenceSession.OnnxValueMapType> {
    const hidden = this.cfg.hiddenSize;
    const embeds = await this.embed(ids, [1, ids.length]);
    mergeImageFeatures(embeds, ids, this.cfg.imageTokenId, features, hidden);
    return this.s.decoder.run({
      inputs_embeds: floatTensor(this.types.embeds, embeds, [1, ids.length, hidden]),
      attention_mask: i64(new Array<number>(ids.length).fill(1), [1, ids.length]),
      position_ids: i64(Array.from({ length: ids.length }, (_, i) => i), [1, ids.length]),
      ...this.emptyPast(),
    });
  }

  /** Prefill of the tokens after a cached prefix of `columns` positions (the question). */
  private async prefillAfter(ids: number[], columns: number, prefix: KvArray[][]): Promise<ort.InferenceSession.OnnxValueMapType> {
    const hidden = this.cfg.hiddenSize;
    const rest = ids.slice(columns);
    const embeds = await this.embed(rest, [1, rest.length]);
    return this.s.decoder.run({
      inputs_embeds: floatTensor(this.types.embeds, embeds, [1, rest.length, hidden]),
      attention_mask: i64(new Array<number>(ids.length).fill(1), [1, ids.length]),
      position_ids: i64(Array.from({ length: rest.length }, (_, i) => columns + i), [1, rest.length]),
      ...KvBatch.prefixFeeds(this.kvShape, prefix, columns),
    });
  }

  private async step(): Promise<void> {
    const now = Date.now();
    const leaving: number[] = [];
    for (const [i, r] of this.rows.entries()) {
      const why = r.seq.interrupted(now);
      if (why === 'cancelled') {
        r.seq.abort('cancelled');
        this.finish(r);
        leaving.push(i);
      } else if (why === 'timeout') {
        r.reject(timeoutError());
        leaving.push(i);
      }
    }
    this.leave(leaving);
    const kv = this.kv;
    if (this.rows.length === 0 || !kv) return;
    const rows = this.rows.length;
    const hidden = this.cfg.hiddenSize;
    const out = await this.onDevice(
      this.rows.map((r) => r.seq.meter),
      async () => {
        const embeds = await this.embed(this.rows.map((r) => r.seq.lastToken), [rows, 1]);
        return this.s.decoder.run({
          inputs_embeds: floatTensor(this.types.embeds, embeds, [rows, 1, hidden]),
          attention_mask: kv.attentionMask(1),
          position_ids: i64(this.rows.map((r) => r.seq.promptIds.length + r.seq.generated.length - 1), [rows, 1]),
          ...kv.pastFeeds(),
        });
      },
    );
    kv.adopt(out, 1);
    this.stats.steps++;
    this.stats.stepRows += rows;
    this.opts.onStep?.(rows);
    const done: number[] = [];
    for (const [i, r] of this.rows.entries()) {
      if (r.seq.accept(r.seq.pick(lastPosition(out.logits, i)))) {
        this.finish(r);
        done.push(i);
      }
    }
    releaseNow(out.logits);
    this.leave(done);
  }

  /**
   * Runs model work and charges its wall time to `payers` in equal shares: a
   * batched run costs each request in it a fraction of the run, as the device
   * was busy for all of them at once. A run that fails is charged too (the
   * device was busy all the same), before the failure reaches the requests.
   */
  private async onDevice<T>(payers: readonly DeviceMeter[], run: () => Promise<T>): Promise<T> {
    const started = this.clock();
    try {
      return await run();
    } finally {
      const ms = this.clock() - started;
      this.stats.deviceMs += ms;
      for (const p of payers) p.charge(ms / payers.length);
    }
  }

  private finish(r: Row): void {
    r.seq.timings.decodeMs = performance.now() - r.firstTokenAt;
    r.resolve(r.seq.result());
  }

  private leave(indexes: number[]): void {
    if (indexes.length === 0) return;
    const gone = new Set(indexes);
    this.rows = this.rows.filter((_, i) => !gone.has(i));
    if (this.rows.length === 0) this.kv = null;
    else this.kv?.remove(indexes);
  }

  private async embed(ids: number[], dims: number[]): Promise<Float32Array> {
    const { inputs_embeds: out } = await this.s.embed.run({ input_ids: i64(ids, dims) });
    if (!out) throw new Error('embed_tokens returned no inputs_embeds');
    // A copy: the image features are written into it.
    return Float32Array.from(toFloat32(out));
  }

  private emptyPast(): Record<string, ort.Tensor> {
    const past: Record<string, ort.Tensor> = {};
    const dims = [1, this.cfg.numKvHeads, 0, this.cfg.headDim];
    for (let l = 0; l < this.cfg.numLayers; l++) {
      for (const k of ['key', 'value']) past[`past_key_values.${l}.${k}`] = floatTensor(this.types.past, new Float32Array(0), dims);
    }
    return past;
  }
}

function settle<T>(p: Promise<T>): Promise<PromiseSettledResult<T>> {
  return p.then(
    (value) => ({ status: 'fulfilled', value }),
    (reason: unknown) => ({ status: 'rejected', reason }),
  );
}

/** Puts image feature rows where the prompt holds image tokens, in order (LLaVA's masked scatter). */
function mergeImageFeatures(embeds: Float32Array, ids: number[], imageTokenId: number, features: Float32Array, hidden: number): void {
  let row = 0;
  for (let i = 0; i < ids.length; i++) {
    if (ids[i] !== imageTokenId) continue;
    embeds.set(features.subarray(row * hidden, (row + 1) * hidden), i * hidden);
    row++;
  }
  if (row * hidden !== features.length) {
    throw new Error(`prompt has ${row} image tokens but the vision encoder produced ${features.length / hidden} features`);
  }
}

/** Copies row `row`'s last-position logits out of `[rows, seq, vocab]` (the prefill's are huge). */
function lastPosition(logits: ort.Tensor | undefined, row: number): Float32Array {
  if (!logits) throw new Error('decoder returned no logits');
  const [, seq = 1, vocab = 0] = logits.dims;
  const start = (row * seq + seq - 1) * vocab;
  if (logits.type === 'float32') return (logits.data as Float32Array).slice(start, start + vocab);
  const half = logits.data as Uint16Array | Float16Array;
  const view = half instanceof Float16Array ? half.subarray(start, start + vocab) : new Float16Array(half.buffer, half.byteOffset + start * 2, vocab);
  return Float32Array.from(view);
}
