import { Inject, Injectable } from '@nestjs/common';
import type { Queue } from 'bullmq';
import type { DecodingParams, InferenceResult } from '@fastvlm/contracts';
import type { SubmitOutcome } from '@fastvlm/jobs';
import { checkQuestion, checkText, type JobReservation, type Principal, type TokenCounter } from '@fastvlm/security';
import type { ImageSource } from '../chat/openai-request';
import { CONFIG, type GatewayConfig } from '../config';
import { Admission } from '../limits/admission.service';
import { TOKEN_COUNTER } from '../security/tokens';
import { ImageIntake } from './image-intake';

/** The request fields errors name: JSON bodies and multipart forms call them differently. */
export interface InputFields {
  question: string;
  image: string;
}
export const CHAT_FIELDS: InputFields = { question: 'messages.0.content', image: 'image_url' };
export const FORM_FIELDS: InputFields = { question: 'question', image: 'image' };

/**
 * A submission that passed the gate; `reservation` is set while the job it admitted may still run.
 * `model`: the id of the model that runs it (an alias resolved), as responses name it.
 */
export type Admitted = SubmitOutcome & { reservation: JobReservation | null; model: string };

/**
 * Everything between an authenticated request and the queue, in order:
 * validate (text, then an inline image; cheap, no Redis), admit (the pool's
 * backlog, tokens, in-flight and queued caps), then fetch a URL image (only once
 * admitted, so refused work never reaches out to the network).
 */
@Injectable()
export class RequestGate {
  constructor(
    @Inject(CONFIG) private readonly cfg: GatewayConfig,
    @Inject(ImageIntake) private readonly images: ImageIntake,
    @Inject(Admission) private readonly admission: Admission,
    @Inject(TOKEN_COUNTER) private readonly tokens: TokenCounter,
  ) {}

  async validate(caller: Principal, input: { question: string; params: DecodingParams; image: ImageSource }, fields: InputFields): Promise<void> {
    const limits = { maxQuestionBytes: this.cfg.MAX_QUESTION_BYTES, maxQuestionTokens: this.cfg.MAX_QUESTION_TOKENS };
    await checkQuestion(input.question, limits, this.tokens, fields.question);
    input.params.stop.forEach((s, i) => checkText(s, `stop.${i}`));
    if (input.image.kind === 'bytes') await this.images.check(input.image.bytes, fields.image);
    else this.images.assertUrlAllowed(caller);
  }

  /** `queue`: the queue of the model pool the request was routed to. */
  admit(caller: Principal, jobId: string, maxTokens: number, queue: Queue, counted = true, held?: () => Promise<void>): Promise<JobReservation> {
    return this.admission.admit(caller, jobId, maxTokens, queue, counted, held);
  }

  async imageBytes(image: ImageSource, field: string): Promise<Uint8Array> {
    return image.kind === 'bytes' ? image.bytes : this.images.fetch(image.url, field);
  }

  release(r: JobReservation): Promise<void> {
    return this.admission.release(r);
  }

  /** Cached answers and de-duplicated requests run no job of their own: their admission is undone. */
  async finish(outcome: SubmitOutcome, r: JobReservation, model: string): Promise<Admitted> {
    if (outcome.kind === 'cached' || outcome.deduplicated) {
      await this.admission.release(r);
      return { ...outcome, reservation: null, model };
    }
    return { ...outcome, reservation: r, model };
  }

  /** A job's end was seen: tokens reserved but not generated go back to the tenant. */
  refund(r: JobReservation, completionTokens: number): Promise<void> {
    return this.admission.settle(r, completionTokens);
  }

  /** A sync answer arrived: tokens reserved but not generated go back to the tenant. */
  settle(r: JobReservation | null, result: InferenceResult): void {
    if (r) void this.admission.settle(r, result.usage.completionTokens);
  }
}
