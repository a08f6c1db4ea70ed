import type { FastifyRequest } from 'fastify';
import { AppError } from '@fastvlm/contracts';
import type { ChatRequest } from '../chat/openai-request';
import { parseChatBody } from '../chat/openai-request';
import { FORM_FIELDS } from '../intake/request-gate';

const FIELDS = new Set(['question', 'model', 'max_tokens', 'max_completion_tokens', 'temperature', 'top_p', 'seed', 'stop', 'priority']);

/**
 * Reads a multipart job submission (`image` file + `question` and optional
 * decoding fields) into the same shape as a chat body, so both paths validate
 * alike. Limits on part sizes and counts are enforced while streaming.
 */
export async function readMultipartJob(req: FastifyRequest): Promise<ChatRequest> {
  let image: Buffer | null = null;
  const fields: Record<string, string> = {};
  for await (const part of req.parts()) {
    if (part.type === 'file') {
      if (part.fieldname !== 'image' || image) {
        await part.toBuffer().catch(() => undefined);
        throw new AppError('invalid_request', 'Send exactly one file part, named "image".', part.fieldname);
      }
      image = await part.toBuffer();
      continue;
    }
    if (!FIELDS.has(part.fieldname)) {
      throw new AppError('invalid_request', `Unknown form field "${part.fieldname}".`, part.fieldname);
    }
    fields[part.fieldname] = checkedText(part.fieldname, String(part.value));
  }
  if (!image) throw new AppError('invalid_request', 'The form has no "image" file part.', 'image');
  const num = (k: string): number | undefined => {
    const v = fields[k];
    if (v === undefined || v === '') return undefined;
    const n = Number(v);
    if (!Number.isFinite(n)) throw new AppError('invalid_request', `Form field "${k}" must be a number.`, k);
    return n;
  };
  const parsed = parseChatBody({
    ...(fields.model ? { model: fields.model } : {}),
    messages: [
      {
        role: 'user',
        content: [
          { type: 'text', text: fields.question ?? '' },
          // Placeholder the parser accepts; the real bytes are set below without a base64 round trip.
          { type: 'image_url', image_url: { url: 'data:application/octet-stream;base64,' } },
        ],
      },
    ],
    max_tokens: num('max_tokens'),
    max_completion_tokens: num('max_completion_tokens'),
    temperature: num('temperature'),
    top_p: num('top_p'),
    seed: num('seed'),
    ...(fields.stop ? { stop: fields.stop } : {}),
    ...(fields.priority ? { priority: fields.priority } : {}),
  });
  return { ...parsed, image: { kind: 'bytes', bytes: image }, fields: FORM_FIELDS };
}

/**
 * Form fields reach us already decoded (busboy decodes invalid UTF-8 to
 * U+FFFD without telling), so a replacement character is taken as the sign
 * of bytes that were not valid UTF-8 and refused, as JSON bodies are. A
 * question cannot carry a literal U+FFFD through a form; through JSON it can.
 */
function checkedText(name: string, value: string): string {
  if (value.includes('\uFFFD')) throw new AppError('invalid_request', `Form field "${name}" is not valid UTF-8.`, name);
  return value;
}
