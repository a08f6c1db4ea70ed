import { createHash } from 'node:crypto';
import { PROMPT_TEMPLATE_VERSION, type DecodingParams } from '@fastvlm/contracts';

export interface CacheKeyInput {
  tenant: string;
  modelId: string;
  modelRevision: string;
  params: DecodingParams;
  imageSha256: string;
  question: string;
}

/**
 * Hash of length-prefixed fields: no two different requests can produce the
 * same byte string (as plain concatenation could: "ab"+"c" vs "a"+"bc").
 */
export function answerCacheKey(input: CacheKeyInput): string {
  const p = input.params;
  // Every decoding parameter that changes the answer must be here, or two different requests share an answer.
  const params = JSON.stringify([p.maxTokens, p.temperature, p.topP, p.seed ?? null, p.stop, p.presencePenalty ?? null, p.frequencyPenalty ?? null]);
  const fields = [
    'answer/v1',
    input.tenant,
    input.modelId,
    input.modelRevision,
    String(PROMPT_TEMPLATE_VERSION),
    params,
    input.imageSha256,
    input.question,
  ];
  const h = createHash('sha256');
  for (const f of fields) {
    const bytes = Buffer.from(f, 'utf8');
    const len = Buffer.alloc(4);
    len.writeUInt32BE(bytes.length);
    h.update(len).update(bytes);
  }
  return h.digest('hex');
}
