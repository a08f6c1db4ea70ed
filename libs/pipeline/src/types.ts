import type { DecodingParams, FinishReason, Usage } from '@fastvlm/contracts';

/** One streamed piece of the answer. */
export interface TokenDelta {
  /** 0-based position of the completion token that completed this text. */
  index: number;
  /** Text newly decodable after this token (may be empty while a multi-byte character is incomplete). */
  text: string;
}

/** Where a request's time went, in milliseconds. */
export interface GenerateTimings {
  /** Waiting in the engine for a batch slot. */
  queueMs: number;
  /** Decoding and resizing the image (0 when its features were cached). */
  preprocessMs: number;
  /** The vision encoder run that included this image (shared by the batch; 0 when cached). */
  visionMs: number;
  /** Prompt embedding and the decoder's prefill pass. */
  prefillMs: number;
  /** From the first token to the last. */
  decodeMs: number;
  /** From submission to the first token. */
  ttftMs: number;
  /**
   * Device milliseconds charged to this request: its share of every model run it took part in (the
   * vision encoder run that encoded its image, its prefill, each decode step), a run's wall time
   * divided equally among the requests in it. What usage metering bills (GPU-seconds on a GPU).
   */
  deviceMs: number;
}

export interface GenerateRequest {
  /** Encoded image bytes (JPEG, PNG, WebP, GIF). */
  image: Uint8Array;
  question: string;
  params: DecodingParams;
  /** Aborting stops generation at the next token; the result then has finishReason `cancelled`. */
  signal?: AbortSignal;
  /** Epoch milliseconds after which the request fails with AppError `timeout`. */
  deadline?: number;
  /** Called for every generated token, in order, before `generate` resolves. */
  onToken?: (delta: TokenDelta) => void;
  /**
   * Called with each share of device time charged to this request, as each model run ends
   * (the shares sum to the result's `timings.deviceMs`). Unlike the result, it also reports
   * the time of a request that fails (a timeout, a failed run), so that it can be metered.
   * Called inside the engine's loop, like `onToken`: it must not throw.
   */
  onDeviceTime?: (ms: number) => void;
}

export interface GenerateResult {
  text: string;
  finishReason: FinishReason;
  usage: Usage;
  /** Generated token ids (eos excluded). */
  tokenIds: number[];
  timings: GenerateTimings;
}

/** Identity of the loaded model, as reported to clients and in cache keys. */
export interface ModelInfo {
  /** What the operator asked for: hub id, `tiny-random`, or the folder's path. */
  id: string;
  /** Revision (hub) or a content hash of config files (local folders). */
  revision: string;
  /** Per-session dtype summary, e.g. `fp32`. */
  dtype: string;
  /** Execution device: `cpu` or `cuda`. */
  device: string;
  /** Folder the files were loaded from. */
  dir: string;
}
