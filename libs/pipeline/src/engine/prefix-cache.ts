import { LRUCache } from 'lru-cache';
import type { KvArray } from './tensors';

export interface CachedPrefix {
  /** Prompt positions covered: everything up to and including the last image token. */
  columns: number;
  /** `[layer][key|value]`, each `[1, heads, columns, headDim]`. */
  data: KvArray[][];
}

/**
 * The decoder's KV cache for the part of the prompt that depends only on the
 * image: the template's system turn, the user turn's start and the image
 * tokens. A second question about the same image prefills only its own
 * tokens, which is what makes its first token arrive quickly (vLLM calls this
 * prefix caching).
 */
export class PrefixCache {
  private readonly lru: LRUCache<string, CachedPrefix> | null;
  hits = 0;
  misses = 0;

  constructor(maxBytes: number) {
    this.lru = maxBytes > 0 ? new LRUCache({ maxSize: maxBytes, sizeCalculation: (v) => Math.max(1, bytes(v)) }) : null;
  }

  /** The key covers the image and the exact prefix tokens (so a changed template can never match). */
  key(imageSha256: string, prefixIds: readonly number[]): string {
    return `${imageSha256}:${prefixIds.length}:${hashIds(prefixIds)}`;
  }

  get(key: string): CachedPrefix | undefined {
    const hit = this.lru?.get(key);
    if (hit) this.hits++;
    else this.misses++;
    return hit;
  }

  set(key: string, value: CachedPrefix): void {
    this.lru?.set(key, value);
  }
}

function bytes(v: CachedPrefix): number {
  let n = 0;
  for (const layer of v.data) for (const a of layer) n += a.byteLength;
  return n;
}

/** FNV-1a over the ids: a cheap fingerprint, collisions would need the same image and length too. */
function hashIds(ids: readonly number[]): string {
  let h = 0x811c9dc5;
  for (const id of ids) {
    h ^= id;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16);
}
