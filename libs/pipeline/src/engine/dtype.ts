import { AppError } from '@fastvlm/contracts';

/** The three sessions of the FastVLM export, by file stem. */
export const SESSION_FILES = ['vision_encoder', 'embed_tokens', 'decoder_model_merged'] as const;
export type SessionFile = (typeof SESSION_FILES)[number];

/** Weight formats of ONNX community exports and the file suffix each uses. */
export const DTYPE_SUFFIXES = {
  fp32: '',
  fp16: '_fp16',
  q4: '_q4',
  q4f16: '_q4f16',
  int8: '_int8',
  uint8: '_uint8',
  quantized: '_quantized',
  bnb4: '_bnb4',
} as const;
export type Dtype = keyof typeof DTYPE_SUFFIXES;

export type DtypeMap = Record<SessionFile, Dtype>;

const isDtype = (s: string): s is Dtype => Object.hasOwn(DTYPE_SUFFIXES, s);
const isSession = (s: string): s is SessionFile => (SESSION_FILES as readonly string[]).includes(s);

/**
 * Parses `FASTVLM_DTYPE`: one dtype for every session (`q4`), or per session
 * (`vision_encoder=q4f16,embed_tokens=fp16,decoder_model_merged=q4`; sessions
 * not named stay fp32).
 */
export function parseDtypeSpec(spec: string | undefined): DtypeMap {
  const map: DtypeMap = { vision_encoder: 'fp32', embed_tokens: 'fp32', decoder_model_merged: 'fp32' };
  const s = (spec ?? '').trim();
  if (!s) return map;
  if (!s.includes('=')) {
    if (!isDtype(s)) throw new AppError('model_load_failed', `FASTVLM_DTYPE "${s}" is not one of ${Object.keys(DTYPE_SUFFIXES).join(', ')}`);
    return { vision_encoder: s, embed_tokens: s, decoder_model_merged: s };
  }
  for (const part of s.split(',')) {
    const [name = '', value = ''] = part.split('=').map((x) => x.trim());
    if (!isSession(name)) throw new AppError('model_load_failed', `FASTVLM_DTYPE names an unknown session "${name}" (known: ${SESSION_FILES.join(', ')})`);
    if (!isDtype(value)) throw new AppError('model_load_failed', `FASTVLM_DTYPE gives "${value}" for ${name}; use one of ${Object.keys(DTYPE_SUFFIXES).join(', ')}`);
    map[name] = value;
  }
  return map;
}

/** `onnx/<stem><suffix>.onnx` for a session in a dtype. */
export function onnxFileName(session: SessionFile, dtype: Dtype): string {
  return `onnx/${session}${DTYPE_SUFFIXES[dtype]}.onnx`;
}

/** Short description for logs and `ModelInfo.dtype`: one name when all agree, else per session. */
export function describeDtypes(map: DtypeMap): string {
  const values = new Set(Object.values(map));
  if (values.size === 1) return [...values][0] as string;
  return SESSION_FILES.map((f) => `${f}=${map[f]}`).join(',');
}
