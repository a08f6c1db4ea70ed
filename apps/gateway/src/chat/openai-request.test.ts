import { describe, expect, it } from 'vitest';
import { AppError } from '@fastvlm/contracts';
import { DEFAULT_MAX_TOKENS, parseChatBody, parseImageUrl } from './openai-request';

const body = (extra: Record<string, unknown> = {}, content?: unknown) => ({
  model: 'm',
  messages: [{ role: 'user', content: content ?? [{ type: 'text', text: 'What?' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } }] }],
  ...extra,
});

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return e instanceof AppError ? `${e.code}:${e.param ?? ''}` : 'other';
  }
  return undefined;
}

describe('parseChatBody', () => {
  it('maps an OpenAI body to one image, one question and decoding parameters with greedy defaults', () => {
    const r = parseChatBody(body());
    expect(r.question).toBe('What?');
    expect(r.image).toEqual({ kind: 'bytes', bytes: Buffer.from('iVBORw0KGgo=', 'base64') });
    expect(r.params).toEqual({ maxTokens: DEFAULT_MAX_TOKENS, temperature: 0, topP: 1, stop: [] });
    expect(r.stream).toBe(false);
  });

  it('prefers max_completion_tokens over max_tokens and normalises stop to a list', () => {
    const r = parseChatBody(body({ max_tokens: 5, max_completion_tokens: 7, stop: 'END', temperature: 0.5, top_p: 0.9, seed: 4, stream: true }));
    expect(r.params).toEqual({ maxTokens: 7, temperature: 0.5, topP: 0.9, seed: 4, stop: ['END'] });
    expect(r.stream).toBe(true);
  });

  it('accepts image_url as a plain string and joins several text parts', () => {
    const r = parseChatBody(body({}, [{ type: 'text', text: 'a' }, { type: 'image_url', image_url: 'data:image/png;base64,AAAA' }, { type: 'text', text: 'b' }]));
    expect(r.question).toBe('a\nb');
  });

  it('rejects bodies FastVLM cannot answer, naming the field', () => {
    expect(codeOf(() => parseChatBody({}))).toBe('invalid_request:messages');
    expect(codeOf(() => parseChatBody(body({ max_tokens: 5000 })))).toBe('invalid_request:max_tokens');
    expect(codeOf(() => parseChatBody(body({ n: 2 })))).toBe('invalid_request:n');
    expect(codeOf(() => parseChatBody(body({ stop: ['a', 'b', 'c', 'd', 'e'] })))).toBe('invalid_request:stop');
    expect(codeOf(() => parseChatBody(body({}, 'text only')))).toBe('invalid_request:messages.0.content');
    expect(codeOf(() => parseChatBody(body({}, [{ type: 'text', text: 'no image' }])))).toBe('invalid_request:messages.0.content');
    const twoImages = [{ type: 'text', text: 'q' }, { type: 'image_url', image_url: 'data:image/png;base64,AA==' }, { type: 'image_url', image_url: 'data:image/png;base64,AA==' }];
    expect(codeOf(() => parseChatBody(body({}, twoImages)))).toBe('invalid_request:messages.0.content');
    expect(codeOf(() => parseChatBody({ messages: [{ role: 'assistant', content: 'hi' }] }))).toBe('invalid_request:messages');
  });
});

describe('parseImageUrl', () => {
  it('keeps http(s) URLs for the fetcher and decodes base64 data URLs', () => {
    expect(parseImageUrl('https://example.com/a.png')).toEqual({ kind: 'url', url: 'https://example.com/a.png' });
    expect(parseImageUrl('data:image/jpeg;base64,AAEC\n')).toEqual({ kind: 'bytes', bytes: Buffer.from([0, 1, 2]) });
  });

  it('rejects other schemes, non-base64 data URLs and malformed base64', () => {
    expect(codeOf(() => parseImageUrl('file:///etc/passwd'))).toBe('invalid_request:image_url');
    expect(codeOf(() => parseImageUrl('data:image/png,abc'))).toBe('invalid_request:image_url');
    expect(codeOf(() => parseImageUrl('data:image/png;base64,ab$c'))).toBe('invalid_image:image_url');
    expect(codeOf(() => parseImageUrl('data:image/png;base64,abcde'))).toBe('invalid_image:image_url');
  });
});
