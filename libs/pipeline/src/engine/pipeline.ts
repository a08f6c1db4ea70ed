import { AppError } from '@fastvlm/contracts';
import { sha256Hex } from '../hash';
import { loadImageProcessorConfig, type ImageProcessorConfig } from '../preprocess/image-processor-config';
import { preprocessImageDetailed, type PreprocessOptions } from '../preprocess/preprocess';

/** Shorter side (px) above which a photo is shrunk while it is decoded. */
const LARGE_PHOTO_EDGE = 2048;
import { StopMatcher } from '../text/stop';
import { TextCodec } from '../text/tokenizer';
import type { GenerateRequest, GenerateResult, ModelInfo } from '../types';
import { loadModelConfig } from './model-config';
import type { HubOptions } from '../hub/index';
import { resolveModel } from './model-repository';
import { Scheduler, type Prepared, type SchedulerStats } from './scheduler';
import type { TextSide } from './sequence';
import { describeDtypes, parseDtypeSpec } from './dtype';
import { openSessions, type Device, type ModelSessions } from './sessions';
import { VisionCache, type VisionCacheOptions, type VisionCacheStats } from './vision-cache';

export interface PipelineOptions {
  /** Hub id, local folder, or `tiny-random`. */
  model: string;
  /** Model cache folder (default `~/.cache/fastvlm`). */
  cacheDir?: string | undefined;
  /** Pull a hub id missing from the cache (HF_ENDPOINT, HF_TOKEN, HF_HUB_OFFLINE); without it only the cache is used. */
  hub?: HubOptions | undefined;
  /** Intra-op threads per onnxruntime session; 0 or absent lets onnxruntime choose. */
  threads?: number | undefined;
  /** `FASTVLM_DTYPE`: one weight format for all sessions, or per session (default fp32). */
  dtype?: string | undefined;
  /** `FASTVLM_DEVICE`: `cpu` (default) or `cuda`. */
  device?: Device | undefined;
  /** Sequences decoded together at most. Default 8. */
  maxBatchSize?: number | undefined;
  /** Milliseconds an idle engine waits for more requests to batch with the first. Default 5. */
  batchWindowMs?: number | undefined;
  /** Image-feature cache: in-process bytes, and an optional shared store. */
  visionCache?: VisionCacheOptions | undefined;
  /** Bytes of per-image prompt-prefix KV cache (second questions about an image skip its prefill). Default 256 MiB; 0 disables. */
  prefixCacheBytes?: number | undefined;
  /** `crop` (default, the export's processor) or `pad` (Apple's `image_aspect_ratio: pad`: pad to a square, crop nothing). */
  imageAspect?: 'crop' | 'pad' | undefined;
  /** Called after every decode step with its batch size (metrics). */
  onStep?: ((rows: number) => void) | undefined;
}

export interface PipelineStats extends SchedulerStats {
  vision: VisionCacheStats;
}

/**
 * FastVLM on onnxruntime-node: the three sessions of the ONNX export driven
 * directly (vision encoder, token embeddings, decoder with KV cache) under a
 * continuous-batching scheduler, the model's own tokenizer and chat template,
 * sharp preprocessing that matches the model's image processor, and a cache
 * of image features.
 */
export class FastVlmPipeline {
  private disposed = false;
  private forced = false;
  private released: Promise<void> = Promise.resolve();
  /** One controller per accepted request, so that a forced dispose can end them all. */
  private readonly inFlight = new Set<AbortController>();

  private constructor(
    readonly info: ModelInfo,
    private readonly sessions: ModelSessions,
    private readonly imageConfig: ImageProcessorConfig,
    private readonly scheduler: Scheduler,
    private readonly vision: VisionCache,
    private readonly preprocessOptions: PreprocessOptions,
  ) {}

  static async load(opts: PipelineOptions): Promise<FastVlmPipeline> {
    const dtypes = parseDtypeSpec(opts.dtype);
    const resolved = await resolveModel(opts.model, opts.cacheDir, { hub: opts.hub, dtypes });
    const [config, imageConfig, codec] = await Promise.all([
      loadModelConfig(resolved.dir),
      loadImageProcessorConfig(resolved.dir),
      TextCodec.load(resolved.dir),
    ]);
    const sessions = await openSessions(resolved.dir, { threads: opts.threads ?? 0, dtypes, device: opts.device });
    const text: TextSide = {
      encodePrompt: (q, n) => codec.encodePrompt(q, n),
      streamDecoder: () => codec.createStreamDecoder(),
      stopMatcher: (stops) => new StopMatcher(stops),
    };
    const info: ModelInfo = { id: resolved.id, revision: resolved.revision, dtype: describeDtypes(dtypes), device: opts.device ?? 'cpu', dir: resolved.dir };
    const aspect = opts.imageAspect ?? 'crop';
    // Features depend on the vision encoder's weights and on how pixels were prepared.
    const vision = new VisionCache(`${info.revision}:${dtypes.vision_encoder}:${aspect}`, opts.visionCache);
    const edge = imageConfig.resize?.kind === 'edges' ? (imageConfig.resize.shortestEdge ?? 0) : 0;
    const preprocessOptions: PreprocessOptions = {
      padToSquare: aspect === 'pad',
      // Only photos far larger than the model's input are shrunk while decoding; smaller
      // ones go through exactly the processor's own resize (and equal transformers.js).
      shrinkOnLoadTo: Math.max(2 * edge, LARGE_PHOTO_EDGE),
    };
    const scheduler = new Scheduler(sessions, config, text, vision, {
      maxBatch: opts.maxBatchSize ?? 8,
      windowMs: opts.batchWindowMs ?? 5,
      onStep: opts.onStep,
      prefixCacheBytes: opts.prefixCacheBytes ?? 256 * 1024 * 1024,
    });
    return new FastVlmPipeline(info, sessions, imageConfig, scheduler, vision, preprocessOptions);
  }

  /** Answers one question about one image. Refused (`service_unavailable`) once `dispose()` was called. */
  generate(req: GenerateRequest): Promise<GenerateResult> {
    if (this.disposed) {
      return Promise.reject(new AppError('service_unavailable', 'the model pipeline has been disposed (the worker is shutting down)'));
    }
    if (req.signal?.aborted) {
      return Promise.resolve({
        text: '',
        finishReason: 'cancelled',
        usage: { promptTokens: 0, completionTokens: 0 },
        tokenIds: [],
        timings: { queueMs: 0, preprocessMs: 0, visionMs: 0, prefillMs: 0, decodeMs: 0, ttftMs: 0, deviceMs: 0 },
      });
    }
    const sha = sha256Hex(req.image);
    // Preparation starts now, so the image is decoded while earlier requests decode tokens.
    const prep = this.prepare(req.image, sha);
    const own = new AbortController();
    const relay = (): void => own.abort();
    req.signal?.addEventListener('abort', relay, { once: true });
    this.inFlight.add(own);
    return this.scheduler
      .submit(
        { question: req.question, params: req.params, signal: own.signal, deadline: req.deadline, onToken: req.onToken, onDeviceTime: req.onDeviceTime },
        sha,
        prep,
      )
      .then((result) => {
        // Ended by a forced dispose, not by its caller: no answer, and the caller must not take it for a cancellation.
        if (result.finishReason === 'cancelled' && this.forced && !req.signal?.aborted) {
          throw new AppError('service_unavailable', 'the model pipeline was disposed before the answer was finished (the worker is shutting down)');
        }
        return result;
      })
      .finally(() => {
        this.inFlight.delete(own);
        req.signal?.removeEventListener('abort', relay);
      });
  }

  /** Counters for tests and metrics: vision encoder runs, cache hits, decode steps and batch sizes. */
  stats(): PipelineStats {
    return { ...this.scheduler.stats, vision: { ...this.vision.stats } };
  }

  /** Runs one tiny request so that the first real one does not pay for lazy initialisation. */
  async warmup(): Promise<void> {
    const { width, height } = this.imageConfig.centerCrop ?? { width: 32, height: 32 };
    const sharp = (await import('sharp')).default;
    const png = await sharp({ create: { width, height, channels: 3, background: { r: 128, g: 128, b: 127 } } }).png().toBuffer();
    await this.generate({ image: png, question: 'warm-up', params: { maxTokens: 2, temperature: 0, topP: 1, stop: [] } });
  }

  /**
   * Lets the requests already accepted finish, then releases the sessions.
   * Later `generate` calls are refused instead of running on released
   * sessions; calling it again is harmless. With `force`, the accepted
   * requests end at their next decode step instead (rejected with
   * `service_unavailable`), so the sessions are released within one step;
   * a forced call also cuts short an earlier unforced one.
   */
  dispose(opts: { force?: boolean } = {}): Promise<void> {
    if (opts.force === true && !this.forced) {
      this.forced = true;
      for (const c of this.inFlight) c.abort();
    }
    if (!this.disposed) {
      this.disposed = true;
      this.released = this.scheduler.idle().then(() => this.sessions.release());
    }
    return this.released;
  }

  private async prepare(image: Uint8Array, sha: string): Promise<Prepared> {
    const cached = await this.vision.get(sha);
    if (cached) return { kind: 'features', features: cached };
    const started = performance.now();
    const img = await preprocessImageDetailed(image, this.imageConfig, this.preprocessOptions);
    return { kind: 'pixels', pixels: img.data, width: img.width, height: img.height, preprocessMs: performance.now() - started };
  }
}

export function loadPipeline(opts: PipelineOptions): Promise<FastVlmPipeline> {
  return FastVlmPipeline.load(opts);
}
