/** The gateway's API as the console uses it: the key from session storage, errors in OpenAI's shape. */

const KEY_STORAGE = 'fastvlm.apiKey';

export const apiKey = {
  get: (): string => sessionStorage.getItem(KEY_STORAGE) ?? '',
  set: (key: string): void => sessionStorage.setItem(KEY_STORAGE, key),
  clear: (): void => sessionStorage.removeItem(KEY_STORAGE),
};

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

interface ErrorBody {
  error?: { message?: string; code?: string };
}

async function errorOf(res: Response): Promise<ApiError> {
  try {
    const body = (await res.json()) as ErrorBody;
    return new ApiError(res.status, body.error?.message ?? res.statusText, body.error?.code ?? 'error');
  } catch {
    return new ApiError(res.status, res.statusText || `HTTP ${res.status}`, 'error');
  }
}

function headers(extra: Record<string, string> = {}): Record<string, string> {
  const key = apiKey.get();
  if (!key) throw new ApiError(401, 'Enter an API key first.', 'unauthorized');
  return { authorization: `Bearer ${key}`, ...extra };
}

export async function getJson<T>(path: string, signal?: AbortSignal): Promise<T> {
  const res = await fetch(path, { headers: headers(), ...(signal ? { signal } : {}) });
  if (!res.ok) throw await errorOf(res);
  return (await res.json()) as T;
}

export async function postJson<T>(path: string, body?: unknown): Promise<T> {
  const res = await fetch(path, {
    method: 'POST',
    headers: headers(body === undefined ? {} : { 'content-type': 'application/json' }),
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  if (!res.ok) throw await errorOf(res);
  return (await res.json()) as T;
}

/** A whole response body, for files that need the key (a plain link cannot send the Authorization header). */
export async function getBlob(path: string): Promise<Blob> {
  const res = await fetch(path, { headers: headers() });
  if (!res.ok) throw await errorOf(res);
  return res.blob();
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

interface Chunk {
  id?: string;
  choices?: { delta?: { content?: string }; finish_reason?: string | null }[];
  usage?: Usage | null;
  error?: { message?: string; code?: string };
}

export interface StreamHandlers {
  /** Response headers arrived (the stream is about to start). */
  onOpen(res: Response): void;
  /** A piece of the answer, in order. */
  onDelta(text: string, chunkId: string): void;
  onFinish(reason: string): void;
  onUsage(usage: Usage): void;
}

/** POSTs a streamed chat completion and feeds its `chat.completion.chunk` events to `on`, until `[DONE]`. */
export async function streamChat(body: Record<string, unknown>, on: StreamHandlers, signal: AbortSignal): Promise<void> {
  const res = await fetch('/v1/chat/completions', {
    method: 'POST',
    headers: headers({ 'content-type': 'application/json', accept: 'text/event-stream' }),
    body: JSON.stringify(body),
    signal,
  });
  if (!res.ok || !res.body) throw await errorOf(res);
  on.onOpen(res);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let cut: number;
    while ((cut = buffer.indexOf('\n\n')) >= 0) {
      const frame = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const data = frame
        .split('\n')
        .filter((l) => l.startsWith('data:'))
        .map((l) => l.slice(5).trimStart())
        .join('\n');
      if (!data) continue;
      if (data === '[DONE]') return;
      deliver(JSON.parse(data) as Chunk, on);
    }
  }
}

function deliver(chunk: Chunk, on: StreamHandlers): void {
  if (chunk.error) throw new ApiError(500, chunk.error.message ?? 'The stream failed.', chunk.error.code ?? 'error');
  const choice = chunk.choices?.[0];
  const text = choice?.delta?.content;
  if (text) on.onDelta(text, chunk.id ?? '');
  if (choice?.finish_reason) on.onFinish(choice.finish_reason);
  if (chunk.usage) on.onUsage(chunk.usage);
}
