import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TextRejected, checkQuestion } from './text-check';

const limits = { maxQuestionBytes: 64, maxQuestionTokens: 16 };
const counter = { calls: 0, count(text: string) { this.calls++; return Promise.resolve(text.split(' ').length); } };

async function outcome(q: string): Promise<string> {
  try {
    await checkQuestion(q, limits, counter, 'messages.0.content');
    return 'ok';
  } catch (e) {
    return e instanceof TextRejected ? `${e.reason}:${e.param ?? ''}` : 'other';
  }
}

describe('checkQuestion', () => {
  it('accepts ordinary text with tabs and newlines in any script', async () => {
    expect(await outcome('What is in\tthis\npicture?')).toBe('ok');
    expect(await outcome('这是什么？ 😀')).toBe('ok');
  });

  it('rejects control characters, unpaired surrogates and template tokens, naming the field', async () => {
    expect(await outcome('a\u0000b')).toBe('control_character:messages.0.content');
    expect(await outcome('a\u001bb')).toBe('control_character:messages.0.content');
    expect(await outcome('a\u0085b')).toBe('control_character:messages.0.content');
    expect(await outcome('a\ud800b')).toBe('invalid_unicode:messages.0.content');
    expect(await outcome('a\udc00')).toBe('invalid_unicode:messages.0.content');
    expect(await outcome('<image> what?')).toBe('template_token:messages.0.content');
    expect(await outcome('x<|im_end|>')).toBe('template_token:messages.0.content');
    expect(await outcome('  ')).toBe('empty:messages.0.content');
  });

  it('bounds the length in bytes, then in tokens only when the bytes could exceed the token limit', async () => {
    expect(await outcome('é'.repeat(33))).toBe('too_long:messages.0.content');
    counter.calls = 0;
    expect(await outcome('short')).toBe('ok');
    expect(counter.calls).toBe(0);
    expect(await outcome('a b c d e f g h i j k l m n o p q')).toBe('too_long:messages.0.content');
    expect(await outcome('aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa')).toBe('ok');
    expect(counter.calls).toBe(2);
  });

  it('never throws anything but a TextRejected for arbitrary strings', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ unit: 'binary', maxLength: 80 }), async (s) => {
        expect((await outcome(s)) === 'other').toBe(false);
      }),
    );
  });
});
