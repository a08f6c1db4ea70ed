import { AppError } from '@fastvlm/contracts';

export interface TextLimits {
  /** Longest question in UTF-8 bytes. */
  maxQuestionBytes: number;
  /** Longest question in tokens of the model's tokenizer. */
  maxQuestionTokens: number;
}

/** Counts tokens as the served model's tokenizer would. */
export interface TokenCounter {
  count(text: string): Promise<number>;
}

/** Why a text was refused; goes to the audit log (never the text). */
export type TextRejection = 'empty' | 'invalid_unicode' | 'control_character' | 'template_token' | 'too_long';

export class TextRejected extends AppError {
  constructor(
    readonly reason: TextRejection,
    message: string,
    param: string,
  ) {
    super('invalid_request', message, param);
  }
}

// Lone surrogates cannot be encoded as UTF-8: JSON can carry them as \uD800 escapes.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
/** The first C0 control other than tab, line feed and carriage return, DEL, or C1 control in `s`, as a code point. */
export function firstControlCharacter(s: string): number | null {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) || (c >= 0x7f && c <= 0x9f)) return c;
  }
  return null;
}

/**
 * Strings the prompt template gives meaning to. The question is data for the
 * model, never instructions; but these would be read as the template's own
 * structure (a second image slot, the end of the user turn) and change how the
 * prompt is built, so they are refused. Nothing else in the text is inspected.
 */
export const TEMPLATE_TOKENS = ['<image>', '<|im_start|>', '<|im_end|>', '<|endoftext|>'] as const;

/** Checks one text field: valid Unicode (so valid UTF-8), no control characters, no template tokens. */
export function checkText(text: string, param: string): void {
  if (LONE_SURROGATE.test(text)) throw new TextRejected('invalid_unicode', `${param} is not valid UTF-8 (it holds an unpaired surrogate).`, param);
  const c = firstControlCharacter(text);
  if (c !== null) {
    const code = c.toString(16).toUpperCase().padStart(4, '0');
    throw new TextRejected('control_character', `${param} holds the control character U+${code}; only tab, line feed and carriage return are allowed.`, param);
  }
}

/**
 * The question's checks: text checks, then length in bytes, then in tokens.
 * Byte-level BPE never makes more tokens than UTF-8 bytes, so the tokenizer
 * is consulted only for questions longer than the token limit in bytes.
 */
export async function checkQuestion(question: string, limits: TextLimits, counter: TokenCounter | null, param: string): Promise<void> {
  if (question.trim().length === 0) throw new TextRejected('empty', `${param} must hold a non-empty question.`, param);
  checkText(question, param);
  for (const t of TEMPLATE_TOKENS) {
    if (question.includes(t)) throw new TextRejected('template_token', `${param} must not contain "${t}": the prompt template uses it.`, param);
  }
  const bytes = Buffer.byteLength(question, 'utf8');
  if (bytes > limits.maxQuestionBytes) {
    throw new TextRejected('too_long', `The question is ${bytes} bytes; the limit is ${limits.maxQuestionBytes}.`, param);
  }
  if (bytes > limits.maxQuestionTokens && counter) {
    const tokens = await counter.count(question);
    if (tokens > limits.maxQuestionTokens) {
      throw new TextRejected('too_long', `The question is ${tokens} tokens; the limit is ${limits.maxQuestionTokens}.`, param);
    }
  }
}
