import { z } from 'zod';
import { AppError, DecodingParamsSchema, MAX_TOKENS_LIMIT, type DecodingParams } from '@fastvlm/contracts';

/** Answers are short descriptions; a bound keeps a forgotten `max_tokens` from holding a GPU for minutes. */
export const DEFAULT_MAX_TOKENS = 256;

const TextPart = z.object({ type: z.literal('text'), text: z.string() });
const ImagePart = z.object({
  type: z.literal('image_url'),
  image_url: z.union([z.string(), z.object({ url: z.string(), detail: z.string().optional() })]),
});
const Part = z.discriminatedUnion('type', [TextPart, ImagePart]);

const Message = z.object({
  role: z.enum(['system', 'developer', 'user', 'assistant', 'tool']),
  content: z.union([z.string(), z.array(Part)]),
});

const ChatBody = z.object({
  model: z.string().min(1).optional(),
  messages: z.array(Message).min(1),
  max_tokens: z.number().int().min(1).max(MAX_TOKENS_LIMIT).nullish(),
  max_completion_tokens: z.number().int().min(1).max(MAX_TOKENS_LIMIT).nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().gt(0).max(1).nullish(),
  seed: z.number().int().min(0).max(2 ** 32 - 1).nullish(),
  presence_penalty: z.number().min(-2).max(2).nullish(),
  frequency_penalty: z.number().min(-2).max(2).nullish(),
  stop: z.union([z.string(), z.array(z.string())]).nullish(),
  n: z.literal(1).nullish(),
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_usage: z.boolean().optional() }).nullish(),
  /** `low` asks for the next class of work down (a chat completion runs as async work, a job as batch work). */
  priority: z.enum(['normal', 'low']).nullish(),
});

export type ImageSource = { kind: 'bytes'; bytes: Buffer } | { kind: 'url'; url: string };

export interface ChatRequest {
  model: string | undefined;
  image: ImageSource;
  question: string;
  params: DecodingParams;
  stream: boolean;
  includeUsage: boolean;
  /** Whether the client asked for a lower class of work (`"priority": "low"`, or the `X-Priority: low` header). */
  lowPriority: boolean;
  /** How errors name the question and image fields; JSON-body names when absent. */
  fields?: { question: string; image: string };
}

/** Whether the `X-Priority` header asks for low priority; any value but `low` or `normal` is a 400. */
export function lowPriorityHeader(value: string | string[] | undefined): boolean {
  if (value === undefined) return false;
  if (value === 'low') return true;
  if (value === 'normal') return false;
  throw new AppError('invalid_request', 'The X-Priority header is "low" or "normal".', 'X-Priority');
}

/** Parses an OpenAI chat-completions body into one image + one question. */
export function parseChatBody(body: unknown): ChatRequest {
  const parsed = ChatBody.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const param = issue?.path.join('.') ?? '';
    throw new AppError('invalid_request', `Invalid request body: ${param ? `${param}: ` : ''}${issue?.message ?? 'malformed'}`, param || undefined);
  }
  const b = parsed.data;
  const users = b.messages.filter((m) => m.role === 'user');
  if (b.messages.length !== 1 || users.length !== 1) {
    throw new AppError(
      'invalid_request',
      'Send exactly one user message holding one text part and one image_url part; FastVLM answers one question about one image.',
      'messages',
    );
  }
  const content = users[0]?.content;
  if (typeof content === 'string') {
    throw new AppError('invalid_request', 'The user message must include an image_url part.', 'messages.0.content');
  }
  const texts = content?.filter((p) => p.type === 'text') ?? [];
  const images = content?.filter((p) => p.type === 'image_url') ?? [];
  if (images.length !== 1) {
    throw new AppError('invalid_request', 'The user message must hold exactly one image_url part.', 'messages.0.content');
  }
  const question = texts.map((t) => t.text).join('\n').trim();
  if (!question) throw new AppError('invalid_request', 'The user message must hold a non-empty text part.', 'messages.0.content');
  const img = images[0]?.image_url;
  const url = typeof img === 'string' ? img : (img?.url ?? '');
  return {
    model: b.model,
    image: parseImageUrl(url),
    question,
    params: toParams(b),
    stream: b.stream ?? false,
    includeUsage: b.stream_options?.include_usage ?? false,
    lowPriority: b.priority === 'low',
  };
}

function toParams(b: z.infer<typeof ChatBody>): DecodingParams {
  const stop = b.stop == null ? [] : typeof b.stop === 'string' ? [b.stop] : b.stop;
  const params = {
    maxTokens: b.max_completion_tokens ?? b.max_tokens ?? DEFAULT_MAX_TOKENS,
    // The model's generation config decodes greedily; OpenAI's default of 1 would make every answer random.
    temperature: b.temperature ?? 0,
    topP: b.top_p ?? 1,
    ...(b.seed != null ? { seed: b.seed } : {}),
    ...(b.presence_penalty ? { presencePenalty: b.presence_penalty } : {}),
    ...(b.frequency_penalty ? { frequencyPenalty: b.frequency_penalty } : {}),
    stop,
  };
  const checked = DecodingParamsSchema.safeParse(params);
  if (!checked.success) {
    const issue = checked.error.issues[0];
    throw new AppError('invalid_request', `Invalid ${issue?.path.join('.') ?? 'parameter'}: ${issue?.message ?? ''}`, issue?.path.join('.'));
  }
  return checked.data;
}

/** `data:` URLs carry the image inline; http(s) URLs are fetched only where enabled. */
export function parseImageUrl(url: string): ImageSource {
  if (/^https?:\/\//i.test(url)) return { kind: 'url', url };
  const m = /^data:([^,]*?),(.*)$/s.exec(url);
  if (!m) throw new AppError('invalid_request', 'image_url must be a data: URL (base64) or an http(s) URL.', 'image_url');
  const meta = m[1] ?? '';
  if (!/;base64$/i.test(meta)) throw new AppError('invalid_request', 'The image data URL must be base64-encoded.', 'image_url');
  const data = (m[2] ?? '').replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(data) || data.length % 4 === 1) {
    throw new AppError('invalid_image', 'The image data URL is not valid base64.', 'image_url');
  }
  return { kind: 'bytes', bytes: Buffer.from(data, 'base64') };
}
