import * as ort from 'onnxruntime-node';
import { AppError } from '@fastvlm/contracts';
import { loadImageProcessorConfig, type ImageProcessorConfig } from '../preprocess/image-processor-config';
import { preprocessImageDetailed } from '../preprocess/preprocess';
import { StopMatcher } from '../text/stop';
import { TextCodec } from '../text/tokenizer';
import type { GenerateRequest, GenerateResult, ModelInfo } from '../types';
import { decode, type TextSide } from './decode-loop';
import { loadModelConfig, type ModelConfig } from './model-config';
import { resolveModel } from './model-repository';
import { openSessions, type ModelSessions } from './sessions';

export interface PipelineOptions {
  /** Hub id, local folder, or `tiny-random`. */
  model: string;
  /** Model cache folder (default `~/.cache/fastvlm`). */
  cacheDir?: string | undefined;
  /** Intra-op threads per onnxruntime session; 0 or absent lets onnxruntime choose. */
  threads?: number | undefined;
}

/**
 * FastVLM on onnxruntime-node: the three sessions of the ONNX export driven
 * directly (vision encoder, token embeddings, decoder with KV cache), the
 * model's own tokenizer and chat template, and sharp preprocessing that
 * matches the model's image processor.
 */
export class FastVlmPipeline {
  /** Requests run one at a time: onnxruntime already uses every core for one. */
  private queue: Promise<unknown> = Promise.resolve();
  private disposed = false;
  private released: Promise<void> = Promise.resolve();

  private constructor(
    readonly info: ModelInfo,
    private readonly sessions: ModelSessions,
    private readonly config: ModelConfig,
    private readonly imageConfig: ImageProcessorConfig,
    private readonly text: TextSide,
  ) {}

  static async load(opts: PipelineOptions): Promise<FastVlmPipeline> {
    const resolved = await resolveModel(opts.model, opts.cacheDir);
    const [config, imageConfig, codec] = await Promise.all([
      loadModelConfig(resolved.dir),
      loadImageProcessorConfig(resolved.dir),
      TextCodec.load(resolved.dir),
    ]);
    const sessions = await openSessions(resolved.dir, { threads: opts.threads ?? 0 });
    const text: TextSide = {
      encodePrompt: (q, n) => codec.encodePrompt(q, n),
      streamDecoder: () => codec.createStreamDecoder(),
      stopMatcher: (stops) => new StopMatcher(stops),
    };
    const info: ModelInfo = { id: resolved.id, revision: resolved.revision, dtype: 'fp32', dir: resolved.dir };
    return new FastVlmPipeline(info, sessions, config, imageConfig, text);
  }

  /** Answers one question about one image. Refused (`service_unavailable`) once `dispose()` was called. */
  generate(req: GenerateRequest): Promise<GenerateResult> {
    if (this.disposed) {
      return Promise.reject(new AppError('service_unavailable', 'the model pipeline has been disposed (the worker is shutting down)'));
    }
    const run = this.queue.then(() => this.run(req));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Runs one tiny request so that the first real one does not pay for lazy initialisation. */
  async warmup(): Promise<void> {
    const { width, height } = this.imageConfig.centerCrop ?? { width: 32, height: 32 };
    const sharp = (await import('sharp')).default;
    const png = await sharp({ create: { width, height, channels: 3, background: { r: 128, g: 128, b: 128 } } }).png().toBuffer();
    await this.generate({ image: png, question: 'warm-up', params: { maxTokens: 2, temperature: 0, topP: 1, stop: [] } });
  }

  /**
   * Lets the requests already accepted finish, then releases the sessions.
   * Later `generate` calls are refused instead of running on released
   * sessions; calling it again is harmless.
   */
  dispose(): Promise<void> {
    if (!this.disposed) {
      this.disposed = true;
      this.released = this.queue.then(() => this.sessions.release());
    }
    return this.released;
  }

  private async run(req: GenerateRequest): Promise<GenerateResult> {
    // Aborted while it waited behind other requests: skip decoding the image too.
    if (req.signal?.aborted) return { text: '', finishReason: 'cancelled', usage: { promptTokens: 0, completionTokens: 0 }, tokenIds: [] };
    const img = await preprocessImageDetailed(req.image, this.imageConfig);
    const tensor = new ort.Tensor('float32', img.data, [1, 3, img.height, img.width]);
    return decode(this.sessions, this.config, this.text, {
      pixels: tensor,
      question: req.question,
      params: req.params,
      ...(req.signal ? { signal: req.signal } : {}),
      ...(req.onToken ? { onToken: req.onToken } : {}),
    });
  }
}

export function loadPipeline(opts: PipelineOptions): Promise<FastVlmPipeline> {
  return FastVlmPipeline.load(opts);
}
