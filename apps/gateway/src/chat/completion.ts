import type { FinishReason, InferenceResult } from '@fastvlm/contracts';

export interface ChatCompletion {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  choices: {
    index: 0;
    message: { role: 'assistant'; content: string; refusal: null };
    logprobs: null;
    finish_reason: FinishReason;
  }[];
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
}

export function completionId(jobId: string | null): string {
  return `chatcmpl-${jobId ? jobId.replace(/^job_/, '') : `cached${Date.now().toString(36)}`}`;
}

export function toChatCompletion(id: string, r: InferenceResult): ChatCompletion {
  return {
    id,
    object: 'chat.completion',
    created: Math.floor(r.finishedAt / 1000),
    model: r.model,
    choices: [{ index: 0, message: { role: 'assistant', content: r.text, refusal: null }, logprobs: null, finish_reason: r.finishReason }],
    usage: usageOf(r),
  };
}

export function usageOf(r: InferenceResult): ChatCompletion['usage'] {
  return {
    prompt_tokens: r.usage.promptTokens,
    completion_tokens: r.usage.completionTokens,
    total_tokens: r.usage.promptTokens + r.usage.completionTokens,
  };
}

export interface ChunkBase {
  id: string;
  model: string;
  created: number;
}

/**
 * One `chat.completion.chunk` body. `choice: null` is the usage-only chunk
 * that ends a stream when `stream_options.include_usage` is set.
 */
export function chunk(
  base: ChunkBase,
  choice: { delta: { role?: 'assistant'; content?: string }; finishReason: FinishReason | null } | null,
  usage?: ChatCompletion['usage'] | null,
): Record<string, unknown> {
  return {
    ...base,
    object: 'chat.completion.chunk',
    choices: choice ? [{ index: 0, delta: choice.delta, logprobs: null, finish_reason: choice.finishReason }] : [],
    ...(usage !== undefined ? { usage } : {}),
  };
}
