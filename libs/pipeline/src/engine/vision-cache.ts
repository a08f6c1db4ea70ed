import { LRUCache } from 'lru-cache';

/** A shared store for image features (the cache Redis in a cluster); values are raw float32 bytes. */
export interface FeatureStore {
  get(key: string): Promise<Buffer | null>;
  set(key: string, value: Buffer, ttlSeconds: number): Promise<void>;
}

export interface VisionCacheOptions {
  /** Bytes of features held in this process; 0 disables L1. Default 256 MiB. */
  l1MaxBytes?: number;
  /** Shared L2; none by default. */
  store?: FeatureStore | undefined;
  /** Seconds features live in L2. Default 3600. */
  l2TtlSeconds?: number;
}

export interface VisionCacheStats {
  hitsL1: number;
  hitsL2: number;
  misses: number;
}

/**
 * Image features by image hash + model revision + vision dtype. A second
 * question about the same image skips preprocessing and the vision encoder.
 */
export class VisionCache {
  private readonly l1: LRUCache<string, Float32Array> | null;
  readonly stats: VisionCacheStats = { hitsL1: 0, hitsL2: 0, misses: 0 };

  constructor(
    /** Distinguishes models and weight formats: features of one are meaningless to another. */
    private readonly namespace: string,
    private readonly opts: VisionCacheOptions = {},
  ) {
    const max = opts.l1MaxBytes ?? 256 * 1024 * 1024;
    this.l1 = max > 0 ? new LRUCache<string, Float32Array>({ maxSize: max, sizeCalculation: (v) => Math.max(1, v.byteLength) }) : null;
  }

  key(imageSha256: string): string {
    return `vision:${this.namespace}:${imageSha256}`;
  }

  async get(imageSha256: string): Promise<Float32Array | null> {
    const key = this.key(imageSha256);
    const hit = this.l1?.get(key);
    if (hit) {
      this.stats.hitsL1++;
      return hit;
    }
    const stored = this.opts.store ? await this.opts.store.get(key).catch(() => null) : null;
    if (stored && stored.byteLength % 4 === 0 && stored.byteLength > 0) {
      // Copy out of the Buffer pool so the view is aligned and owned.
      const features = new Float32Array(new Uint8Array(stored).buffer);
      this.l1?.set(key, features);
      this.stats.hitsL2++;
      return features;
    }
    this.stats.misses++;
    return null;
  }

  async put(imageSha256: string, features: Float32Array): Promise<void> {
    const key = this.key(imageSha256);
    this.l1?.set(key, features);
    if (this.opts.store) {
      const bytes = Buffer.from(features.buffer, features.byteOffset, features.byteLength);
      // The L2 is an optimisation: a failed write must not fail the request.
      await this.opts.store.set(key, bytes, this.opts.l2TtlSeconds ?? 3600).catch(() => undefined);
    }
  }
}
