import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import sharp from 'sharp';
import { AutoProcessor, RawImage, type Processor, type Tensor } from '@huggingface/transformers';
import { AppError } from '@fastvlm/contracts';
import { generateModel } from '../generator/index';
import { TextCodec, type StreamDecoder } from './tokenizer';

const QUESTION = 'What is in the image?';
const EXPECTED_PROMPT =
  '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n<image>\nWhat is in the image?<|im_end|>\n<|im_start|>assistant\n';

/** Emoji (incl. ZWJ sequences, flags, skin tones), CJK, accents: Qwen2's BPE splits several of these mid-character. */
const MULTIBYTE_TEXT = 'Hi 👋🏽! 猫が座っている。这是一只猫 🐈‍⬛ 🇯🇵 — Ünïcödé, 한국어 텍스트, 𝔘𝔫𝔦 and 🫠🪼.';

let root: string;
let modelDir: string;
let codec: TextCodec;
let processor: Processor | undefined;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'fastvlm-text-'));
  modelDir = join(root, 'tiny');
  await generateModel({ preset: 'tiny', outDir: modelDir, seed: 0 });
  codec = await TextCodec.load(modelDir);
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

function stream(decoder: StreamDecoder, ids: readonly number[]): { pieces: string[]; tail: string } {
  return { pieces: ids.map((id) => decoder.push(id)), tail: decoder.flush() };
}

describe('TextCodec prompt', () => {
  it('buildPrompt applies the chat template to one user turn "<image>\\n{question}"', () => {
    expect(codec.buildPrompt(QUESTION)).toBe(EXPECTED_PROMPT);
  });

  it('reads the image token and eos ids from the model folder', () => {
    expect(codec.imageToken).toBe('<image>');
    expect(codec.imageTokenId).toBe(151646);
    expect(codec.eosTokenIds).toEqual([151645]);
  });

  const questions = [QUESTION, 'Describe   this\n\nphoto 😀 in détail; 用中文回答。', '  leading and trailing spaces  ', 'x'];
  for (const question of questions) {
    it(`encodePrompt equals transformers.js LlavaProcessor input_ids exactly: ${JSON.stringify(question)}`, async () => {
      processor ??= await AutoProcessor.from_pretrained(modelDir);
      const png = await sharp({ create: { width: 80, height: 60, channels: 3, background: '#336699' } }).png().toBuffer();
      const image = await RawImage.fromBlob(new Blob([new Uint8Array(png)]));
      const out = (await processor._call(image, codec.buildPrompt(question))) as { input_ids: Tensor; pixel_values: Tensor };
      // 64×64 crop, 16-pixel patches → 16 image tokens, as LlavaProcessor computes it.
      expect(out.pixel_values.dims).toEqual([1, 3, 64, 64]);
      const theirs = (out.input_ids.tolist() as bigint[][])[0]?.map(Number);

      const ours = codec.encodePrompt(question, 16);
      expect(ours).toEqual(theirs);
      expect(ours.filter((id) => id === 151646)).toHaveLength(16);
      // Qwen2 adds no BOS/EOS, so with or without special tokens is the same here.
      expect(codec.encode(codec.buildPrompt(question).replace('<image>', '<image>'.repeat(16)))).toEqual(ours);
    });
  }

  it('the expansion is contiguous and sits right after "<|im_start|>user\\n"', () => {
    const ids = codec.encodePrompt(QUESTION, 256);
    const first = ids.indexOf(151646);
    expect(ids.slice(first, first + 256).every((id) => id === 151646)).toBe(true);
    expect(ids.lastIndexOf(151646)).toBe(first + 255);
    expect(codec.decode(ids.slice(0, first))).toBe('system\nYou are a helpful assistant.\nuser\n');
  });

  it('rejects a question that contains the image placeholder', () => {
    expect(() => codec.encodePrompt('look: <image>', 16)).toThrow(AppError);
    expect(() => codec.buildPrompt('<image>')).toThrow(/must not contain/);
  });
});

describe('TextCodec decoding', () => {
  it('decode skips special tokens', () => {
    const ids = codec.encodePrompt(QUESTION, 4);
    expect(codec.decode(ids)).toBe('system\nYou are a helpful assistant.\nuser\n\nWhat is in the image?\nassistant\n');
    expect(codec.decode([...codec.encode('Done.'), 151645])).toBe('Done.');
    expect(codec.decode([])).toBe('');
  });

  it('stream decoder on emoji + CJK text, token by token, equals decode and never emits U+FFFD', () => {
    const ids = codec.encode(MULTIBYTE_TEXT);
    const { pieces, tail } = stream(codec.createStreamDecoder(), ids);
    expect(pieces.join('') + tail).toBe(codec.decode(ids));
    expect(codec.decode(ids)).toBe(MULTIBYTE_TEXT);
    expect(pieces.some((p) => p.includes('\uFFFD'))).toBe(false);
    expect(tail).toBe('');
    // The text really does split characters across tokens: some pushes had to wait.
    expect(pieces.filter((p) => p === '').length).toBeGreaterThan(0);
  });

  it('stream decoder with special tokens interleaved (skipped, like decode)', () => {
    const ids = [151644, ...codec.encode('答案：🐈‍⬛'), 151646, ...codec.encode(' ok'), 151645];
    const { pieces, tail } = stream(codec.createStreamDecoder(), ids);
    expect(pieces.join('') + tail).toBe('答案：🐈‍⬛ ok');
  });

  it('valid text of any code points streams to exactly decode(ids), without U+FFFD (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 24 }), (text) => {
        const ids = codec.encode(text);
        const { pieces, tail } = stream(codec.createStreamDecoder(), ids);
        expect(pieces.join('') + tail).toBe(codec.decode(ids));
        if (!text.includes('\uFFFD')) expect(pieces.join('') + tail).not.toContain('\uFFFD');
      }),
      { numRuns: 300 },
    );
  });

  it('arbitrary id sequences (broken UTF-8 included) still concatenate to decode(ids) (property)', () => {
    const id = fc.oneof(fc.integer({ min: 0, max: 151645 }), fc.integer({ min: 0, max: 300 }), fc.constant(151646));
    fc.assert(
      fc.property(fc.array(id, { maxLength: 30 }), (ids) => {
        const { pieces, tail } = stream(codec.createStreamDecoder(), ids);
        expect(pieces.join('') + tail).toBe(codec.decode(ids));
      }),
      { numRuns: 300 },
    );
  });

  it('with clean_up_tokenization_spaces on, the stream still equals decode', async () => {
    const dir = join(root, 'cleanup');
    await cp(modelDir, dir, { recursive: true });
    const cfgPath = join(dir, 'tokenizer_config.json');
    const cfg = JSON.parse(await readFile(cfgPath, 'utf8')) as Record<string, unknown>;
    await writeFile(cfgPath, JSON.stringify({ ...cfg, clean_up_tokenization_spaces: true }));
    const cleaning = await TextCodec.load(dir);

    const words = fc.constantFrom(' .', ' ,', ' !', ' ?', " '", " n't", " 's", ' re', ' a', ' 😀', ' 猫', ' ', "'");
    fc.assert(
      fc.property(fc.array(words, { maxLength: 20 }), (parts) => {
        const ids = parts.flatMap((p) => cleaning.encode(p));
        const { pieces, tail } = stream(cleaning.createStreamDecoder(), ids);
        expect(pieces.join('') + tail).toBe(cleaning.decode(ids));
      }),
      { numRuns: 300 },
    );
    expect(cleaning.decode(cleaning.encode("I do n't know , ok ."))).toBe("I don't know, ok.");
  });
});

describe('TextCodec.load errors', () => {
  it('a folder without the files is model_load_failed naming the file', async () => {
    const error = await TextCodec.load(join(root, 'missing')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AppError);
    expect((error as AppError).code).toBe('model_load_failed');
    expect((error as AppError).message).toContain('config.json');
  });

  it('an image token the tokenizer does not know is model_load_failed', async () => {
    const dir = join(root, 'bad-image-token');
    await cp(modelDir, dir, { recursive: true });
    await writeFile(join(dir, 'processor_config.json'), JSON.stringify({ image_token: '<img>', patch_size: 16 }));
    await expect(TextCodec.load(dir)).rejects.toThrow(/image_token_index/);
  });
});
