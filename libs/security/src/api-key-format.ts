import { createHash, randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';

/**
 * API keys look like `fvlm_<33 base62 chars of 192 random bits><6 base62 chars of CRC-32>`.
 * The prefix and the checksum let secret scanners (and this gateway) tell a
 * real key from a random string without a database: a scanner can match
 * {@link API_KEY_PATTERN} and verify the checksum, and the gateway refuses
 * malformed keys without a Redis round trip.
 */
export const API_KEY_PREFIX = 'fvlm_';
const BODY_CHARS = 33;
const CHECK_CHARS = 6;
const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** What a scanner looks for. */
export const API_KEY_PATTERN = new RegExp(`^${API_KEY_PREFIX}[0-9A-Za-z]{${BODY_CHARS + CHECK_CHARS}}$`);

function base62(n: bigint, width: number): string {
  let out = '';
  let v = n;
  for (let i = 0; i < width; i++) {
    out = ALPHABET[Number(v % 62n)] + out;
    v /= 62n;
  }
  if (v !== 0n) throw new RangeError('value does not fit the width');
  return out;
}

function checksum(prefixAndBody: string): string {
  return base62(BigInt(crc32(prefixAndBody)), CHECK_CHARS);
}

/** A new random key (192 bits of entropy). */
export function generateApiKey(): string {
  const body = base62(BigInt(`0x${randomBytes(24).toString('hex')}`), BODY_CHARS);
  const head = API_KEY_PREFIX + body;
  return head + checksum(head);
}

/** Whether `key` has the key format and a correct checksum (says nothing about whether it exists). */
export function isWellFormedApiKey(key: string): boolean {
  if (!API_KEY_PATTERN.test(key)) return false;
  const head = key.slice(0, API_KEY_PREFIX.length + BODY_CHARS);
  return checksum(head) === key.slice(head.length);
}

/** SHA-256 of the key, hex: the only form in which keys are stored or looked up. */
export function keyDigest(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}
