/**
 * Incremental detokenisation. Every piece returned is final: concatenating all
 * `push` results and `flush()` gives exactly `decode(allIds)`.
 */
export interface StreamDecoder {
  /** Text completed by this token; '' while a multi-byte character is still incomplete. */
  push(tokenId: number): string;
  /** Whatever is still held back (an incomplete character decodes as U+FFFD here). */
  flush(): string;
}

/** Decodes a (possibly empty) id list with special tokens skipped. */
export type DecodeFn = (ids: readonly number[]) => string;

const REPLACEMENT = '\uFFFD';

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}

/**
 * For decoders whose output is a plain concatenation of token pieces (Qwen2's
 * byte-level BPE with `clean_up_tokenization_spaces: false`).
 *
 * Byte-level BPE can split one UTF-8 character across tokens; the partial bytes
 * decode as U+FFFD. So we decode a window starting at the last point where the
 * text was complete and release only the part after what was already released,
 * and only once it no longer ends in U+FFFD. Keeping the previous piece in the
 * window (rather than decoding the new token alone) also keeps decoders that
 * treat a leading space specially (Metaspace) consistent with a full decode.
 * Cost per token is the window size, not the sequence length.
 */
export class WindowedStreamDecoder implements StreamDecoder {
  private readonly ids: number[] = [];
  /** Start of the window: the text before it has been released and was complete. */
  private prefixOffset = 0;
  /** End of what has been released. */
  private readOffset = 0;

  constructor(private readonly decode: DecodeFn) {}

  push(tokenId: number): string {
    this.ids.push(tokenId);
    return this.release(false);
  }

  flush(): string {
    return this.release(true);
  }

  private release(final: boolean): string {
    const released = this.decode(this.ids.slice(this.prefixOffset, this.readOffset));
    const text = this.decode(this.ids.slice(this.prefixOffset));
    if (text.length <= released.length) {
      if (final) this.prefixOffset = this.readOffset = this.ids.length;
      return '';
    }
    // Not final: an incomplete character (or a genuine trailing U+FFFD, which
    // the next token or flush() will release) stays in the window.
    if (!final && text.endsWith(REPLACEMENT)) return '';
    this.prefixOffset = this.readOffset;
    this.readOffset = this.ids.length;
    return text.slice(released.length);
  }
}

/**
 * How many UTF-16 units at the end of the decoded text a later token may still
 * rewrite under `clean_up_tokenization_spaces`: its rules delete the space
 * before `.`, `,`, `n't`, `'s` and the like, so a new token can remove a space
 * up to four characters back, and one deletion can expose another.
 */
const CLEANUP_HOLD_BACK = 16;

/**
 * For tokenizers that clean up spaces after decoding. That clean-up is not a
 * per-token operation (" ." becomes "." only once the "." arrives), so this
 * re-decodes the whole sequence and holds back the tail the next tokens could
 * still change. Quadratic in length; Qwen2 tokenizers never take this path.
 */
export class RedecodingStreamDecoder implements StreamDecoder {
  private readonly ids: number[] = [];
  private releasedLength = 0;

  constructor(private readonly decode: DecodeFn) {}

  push(tokenId: number): string {
    this.ids.push(tokenId);
    const text = this.decode(this.ids);
    let stable = text.length;
    while (stable > 0 && text[stable - 1] === REPLACEMENT) stable--;
    return this.take(text, stable - CLEANUP_HOLD_BACK);
  }

  flush(): string {
    return this.take(this.decode(this.ids), Number.POSITIVE_INFINITY);
  }

  private take(text: string, end: number): string {
    let stop = Math.min(end, text.length);
    // Never end a piece between the two halves of a surrogate pair.
    if (stop > 0 && stop < text.length && isHighSurrogate(text.charCodeAt(stop - 1))) stop--;
    if (stop <= this.releasedLength) return '';
    const piece = text.slice(this.releasedLength, stop);
    this.releasedLength = stop;
    return piece;
  }
}
