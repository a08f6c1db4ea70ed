import { describe, expect, it } from 'vitest';
import type { GenerateResult } from '../types';
import { FastVlmPipeline } from './pipeline';
import { answer, gradientPng, greedy, stripesPng, useTinyModel } from './test-fixtures';
import type { FeatureStore } from './vision-cache';

/**
 * Admission never stalls the running batch: a newcomer joins at the first
 * step after its preparation (image decode, vision-cache lookup) has settled,
 * and nothing it waits on (a slow shared-store lookup or write) holds up the
 * decode steps of the sequences already running.
 */

const model = useTinyModel(3);

/** Tokens the first stream emits while a newcomer's store call is held open. */
const HELD_FOR = 8;
/**
 * Releases a held store call if the running stream stops making progress,
 * only so that a stalled scheduler ends the test (with a failed count)
 * instead of hanging it. The assertions are on token counts, never on time.
 */
const UNSTICK_MS = 10_000;

interface Gate {
  /** Resolves the held call. */
  open: (why: 'progress' | 'unstuck') => void;
  /** Why the held call was released, once it was. */
  why: () => 'progress' | 'unstuck' | null;
  /** Whether the held call has started and not yet been released. */
  holding: () => boolean;
  /** Starts holding: the returned promise settles when the gate opens. */
  hold: () => Promise<void>;
}

function gate(): Gate {
  let release: (() => void) | null = null;
  let why: 'progress' | 'unstuck' | null = null;
  let timer: NodeJS.Timeout | undefined;
  const open = (w: 'progress' | 'unstuck'): void => {
    if (!release) return;
    why = w;
    clearTimeout(timer);
    const r = release;
    release = null;
    r();
  };
  return {
    open,
    why: () => why,
    holding: () => release !== null,
    hold: () =>
      new Promise<void>((resolve) => {
        release = resolve;
        timer = setTimeout(() => open('unstuck'), UNSTICK_MS);
      }),
  };
}

const open = (store: FeatureStore | undefined, maxBatchSize: number) =>
  FastVlmPipeline.load({ model: model.dir, threads: 1, maxBatchSize, batchWindowMs: 0, visionCache: { l1MaxBytes: 0, store } });

/** Runs `first` alone-first, starting `second` at the first's token 2; counts the first's tokens while `g` holds. */
async function overlap(pipeline: FastVlmPipeline, g: Gate, images: [Buffer, Buffer]) {
  let heldTokens = 0;
  let second: Promise<GenerateResult> | undefined;
  const first = pipeline.generate({
    image: images[0],
    question: 'the running stream',
    params: greedy(40),
    onToken: (d) => {
      if (g.holding()) {
        heldTokens++;
        if (heldTokens === HELD_FOR) g.open('progress');
      }
      if (d.index === 2) second = pipeline.generate({ image: images[1], question: 'the newcomer', params: greedy(12) });
    },
  });
  const a = await first;
  if (!second) throw new Error('the newcomer was never submitted');
  const b = await second;
  return { a, b, heldTokens };
}

/** One by one, through a pipeline of batch size 1 (writing their image features to `store` when given). */
async function reference(images: [Buffer, Buffer], store?: FeatureStore): Promise<[GenerateResult, GenerateResult]> {
  const alone = await open(store, 1);
  try {
    const a = await alone.generate({ image: images[0], question: 'the running stream', params: greedy(40) });
    const b = await alone.generate({ image: images[1], question: 'the newcomer', params: greedy(12) });
    return [a, b];
  } finally {
    await alone.dispose();
  }
}

/** A shared store in memory, as another worker would have filled it. */
function memoryStore(): { map: Map<string, Buffer>; store: FeatureStore } {
  const map = new Map<string, Buffer>();
  return {
    map,
    store: {
      get: (k) => Promise.resolve(map.get(k) ?? null),
      set: (k, v) => {
        map.set(k, Buffer.from(v));
        return Promise.resolve();
      },
    },
  };
}

describe('admission of a newcomer into a running batch', () => {
  it('a newcomer whose vision-cache lookup is pending lets the running stream go on decoding, then joins it', async () => {
    const images: [Buffer, Buffer] = [await gradientPng(64, 64), await stripesPng(48, 80)];
    // Both images' features are in the shared store already, so a released lookup settles at once.
    const shared = memoryStore();
    const [refA, refB] = await reference(images, shared.store);
    expect(shared.map.size).toBe(2);
    const g = gate();
    let gets = 0;
    const store: FeatureStore = {
      // The first lookup is the running stream's; the second, the newcomer's, is held.
      get: (k) => (++gets === 2 ? g.hold().then(() => shared.store.get(k)) : shared.store.get(k)),
      set: () => Promise.resolve(),
    };
    const pipeline = await open(store, 4);
    try {
      const { a, b, heldTokens } = await overlap(pipeline, g, images);
      expect({ heldTokens, released: g.why() }).toEqual({ heldTokens: HELD_FOR, released: 'progress' });
      expect(answer(a)).toEqual(answer(refA));
      expect(answer(b)).toEqual(answer(refB));
      // Released with 30 of the running stream's 40 tokens to go, the newcomer decoded in the same steps.
      expect(pipeline.stats().stepRows).toBeGreaterThan(pipeline.stats().steps);
      expect(pipeline.stats().vision).toEqual({ hitsL1: 0, hitsL2: 2, misses: 0 });
    } finally {
      await pipeline.dispose();
    }
  });

  it("a slow shared-store write of a newcomer's image features does not hold up the running stream", async () => {
    const images: [Buffer, Buffer] = [await gradientPng(64, 64), await stripesPng(48, 80)];
    const g = gate();
    let sets = 0;
    const store: FeatureStore = {
      get: () => Promise.resolve(null),
      // The first write is the running stream's features; the second, the newcomer's, is held.
      set: () => (++sets === 2 ? g.hold() : Promise.resolve()),
    };
    const pipeline = await open(store, 4);
    try {
      const { a, b, heldTokens } = await overlap(pipeline, g, images);
      expect({ heldTokens, released: g.why() }).toEqual({ heldTokens: HELD_FOR, released: 'progress' });
      const [refA, refB] = await reference(images);
      expect(answer(a)).toEqual(answer(refA));
      expect(answer(b)).toEqual(answer(refB));
    } finally {
      await pipeline.dispose();
    }
  });
});
