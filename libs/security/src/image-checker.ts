import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { checkImage, type CheckedImage, type ImageLimits } from './image-check';

/** Images above this size are checked every time: hashing them would cost about as much as the check. */
const MEMO_MAX_BYTES = 1024 * 1024;

/**
 * `checkImage` with a memory of images that passed, keyed by SHA-256: the
 * verdict is a function of the bytes and the limits, and the same image is
 * often asked about many times (it is stored once under its hash for the
 * same reason). Only passes are remembered, so every rejection is re-checked
 * and audited. Bounded by entry count; per process.
 */
export class ImageChecker {
  private readonly passed: LRUCache<string, CheckedImage>;

  constructor(
    private readonly limits: ImageLimits,
    /** Images remembered. Default 10 000 (about 1 MB of memory). */
    entries = 10_000,
  ) {
    this.passed = new LRUCache({ max: Math.max(1, entries) });
  }

  async check(bytes: Uint8Array, param: string): Promise<CheckedImage> {
    if (bytes.length > MEMO_MAX_BYTES) return checkImage(bytes, this.limits, param);
    const digest = createHash('sha256').update(bytes).digest('base64');
    const known = this.passed.get(digest);
    if (known) return known;
    const checked = await checkImage(bytes, this.limits, param);
    this.passed.set(digest, checked);
    return checked;
  }
}
