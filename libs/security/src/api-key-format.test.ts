import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { API_KEY_PATTERN, generateApiKey, isWellFormedApiKey, keyDigest } from './api-key-format';

describe('API key format', () => {
  it('generates prefixed keys that match the scanner pattern and pass their checksum', () => {
    const keys = new Set(Array.from({ length: 200 }, () => generateApiKey()));
    expect(keys.size).toBe(200);
    for (const k of keys) {
      expect(k).toMatch(API_KEY_PATTERN);
      expect(isWellFormedApiKey(k)).toBe(true);
    }
  });

  it('rejects a key with any single character changed (checksum)', () => {
    const key = generateApiKey();
    fc.assert(
      fc.property(fc.integer({ min: 5, max: key.length - 1 }), fc.constantFrom(...'0123456789abcXYZ'), (i, c) => {
        fc.pre(key[i] !== c);
        expect(isWellFormedApiKey(key.slice(0, i) + c + key.slice(i + 1))).toBe(false);
      }),
    );
  });

  it('rejects strings without the prefix or of the wrong length', () => {
    const key = generateApiKey();
    expect(isWellFormedApiKey(key.replace('fvlm_', 'xxxx_'))).toBe(false);
    expect(isWellFormedApiKey(key.slice(0, -1))).toBe(false);
    expect(isWellFormedApiKey(`${key}0`)).toBe(false);
    expect(isWellFormedApiKey('')).toBe(false);
  });

  it('stores keys as a 64-hex SHA-256 digest', () => {
    expect(keyDigest('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });
});
