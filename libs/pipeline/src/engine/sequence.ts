import { AppError, type DecodingParams, type FinishReason } from '@fastvlm/contracts';
import type { GenerateResult, GenerateTimings, TokenDelta } from '../types';
import { createSampler, type Sampler } from './sampler';

/** Text side of generation: the model's tokenizer, and stop handling. */
export interface TextSide {
  /** Prompt ids with the image placeholder expanded to `numImageTokens` image tokens. */
  encodePrompt(question: string, numImageTokens: number): number[];
  /** Incremental detokenizer: push ids, get newly complete text. */
  streamDecoder(): { push(id: number): string; flush(): string };
  /** Holds back text that may be the start of a stop sequence. */
  stopMatcher(stops: readonly string[]): { feed(delta: string): { emit: string; stopped: boolean }; finish(): string };
}

export interface SequenceRequest {
  question: string;
  params: DecodingParams;
  signal?: AbortSignal | undefined;
  /** Epoch milliseconds after which the request fails with `timeout`. */
  deadline?: number | undefined;
  onToken?: ((d: TokenDelta) => void) | undefined;
  /** Told each share of device time charged to the request (see `DeviceMeter`). */
  onDeviceTime?: ((ms: number) => void) | undefined;
}

/**
 * Device time charged to one request: its equal share of each model run it
 * took part in. Created when the request arrives, since the vision encoder run
 * that encodes its image comes before its sequence exists.
 */
export class DeviceMeter {
  ms = 0;

  constructor(private readonly onCharge?: ((ms: number) => void) | undefined) {}

  charge(ms: number): void {
    this.ms += ms;
    this.onCharge?.(ms);
  }
}

/**
 * One request's decoding state: prompt, sampler with penalties, incremental
 * detokenizer, stop sequences, and what has been streamed. The scheduler feeds
 * it logits; it decides the token and whether the sequence is done.
 */
export class Sequence {
  readonly generated: number[] = [];
  finish: FinishReason = 'length';
  private produced = 0;
  private answer = '';
  private stoppedBySequence = false;
  private readonly sample: Sampler;
  private readonly decoder: { push(id: number): string; flush(): string };
  private readonly stop: { feed(delta: string): { emit: string; stopped: boolean }; finish(): string };
  private readonly counts = new Map<number, number>();
  /** Position id of the next token fed to the decoder. */
  position: number;
  readonly timings: Omit<GenerateTimings, 'deviceMs'> = { queueMs: 0, preprocessMs: 0, visionMs: 0, prefillMs: 0, decodeMs: 0, ttftMs: 0 };

  constructor(
    readonly req: SequenceRequest,
    readonly promptIds: number[],
    private readonly eos: ReadonlySet<number>,
    text: TextSide,
    /** When the request was submitted (performance.now()). */
    readonly submittedAt: number,
    /** The request's device time so far (its vision run's share included). */
    readonly meter: DeviceMeter = new DeviceMeter(req.onDeviceTime),
  ) {
    this.sample = createSampler(req.params);
    this.decoder = text.streamDecoder();
    this.stop = text.stopMatcher(req.params.stop);
    this.position = promptIds.length;
  }

  get lastToken(): number {
    return this.generated.at(-1) ?? 0;
  }

  /** Why the sequence must end before the next step, if it must: cancelled or past its deadline. */
  interrupted(now: number): 'cancelled' | 'timeout' | null {
    if (this.req.signal?.aborted) return 'cancelled';
    if (this.req.deadline !== undefined && now > this.req.deadline) return 'timeout';
    return null;
  }

  /** Picks the next token from this row's logits (penalties applied to a copy). */
  pick(logits: Float32Array): number {
    const { presencePenalty = 0, frequencyPenalty = 0 } = this.req.params;
    if ((presencePenalty !== 0 || frequencyPenalty !== 0) && this.counts.size > 0) {
      const l = logits.slice();
      for (const [id, n] of this.counts) l[id] = (l[id] as number) - presencePenalty - frequencyPenalty * n;
      return this.sample(l);
    }
    return this.sample(logits);
  }

  /** Takes the chosen token; true when the sequence is finished. */
  accept(token: number): boolean {
    this.produced++;
    if (this.eos.has(token)) {
      this.finish = 'stop';
      return true;
    }
    this.generated.push(token);
    this.counts.set(token, (this.counts.get(token) ?? 0) + 1);
    this.position++;
    const fed = this.stop.feed(this.decoder.push(token));
    this.emit(this.generated.length - 1, fed.emit);
    if (fed.stopped) {
      this.finish = 'stop';
      this.stoppedBySequence = true;
      return true;
    }
    return this.generated.length >= this.req.params.maxTokens;
  }

  /** Ends the sequence early. */
  abort(reason: 'cancelled'): void {
    this.finish = reason;
  }

  result(): GenerateResult {
    // Text held back for an incomplete character or a possible stop sequence
    // belongs to the answer, unless a stop sequence already ended it.
    if (this.finish === 'length' || (this.finish === 'stop' && !this.stoppedBySequence)) {
      const tail = this.stop.feed(this.decoder.flush());
      // The flushed text (an incomplete character, now U+FFFD) can still complete a stop sequence.
      if (tail.stopped) this.finish = 'stop';
      const rest = tail.stopped ? tail.emit : tail.emit + this.stop.finish();
      if (rest) this.emit(this.generated.length, rest);
      this.stoppedBySequence = true;
    }
    return {
      text: this.answer,
      finishReason: this.finish,
      usage: { promptTokens: this.promptIds.length, completionTokens: this.produced },
      tokenIds: [...this.generated],
      timings: { ...this.timings, deviceMs: this.meter.ms },
    };
  }

  private emit(index: number, delta: string): void {
    this.answer += delta;
    this.req.onToken?.({ index, text: delta });
  }
}

export function timeoutError(): AppError {
  return new AppError('timeout', 'The request passed its deadline before the answer was complete.');
}
