export * from './tokenizer';
export * from './stop';
export { RedecodingStreamDecoder, WindowedStreamDecoder, type DecodeFn } from './stream-decoder';
