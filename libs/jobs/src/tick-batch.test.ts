import { describe, expect, it } from 'vitest';
import { TickBatch } from './tick-batch';

/** A batch that doubles numbers, refuses negative ones, and records how it was called. */
function doubler(max?: number) {
  const batches: number[][] = [];
  const singles: number[] = [];
  const batch = new TickBatch<number, number>(
    (items) => {
      batches.push(items);
      if (items.includes(13)) return Promise.reject(new Error('unlucky batch'));
      return Promise.resolve(items.map((n) => (n < 0 ? new Error(`negative: ${n}`) : n * 2)));
    },
    (n) => {
      singles.push(n);
      return Promise.resolve(n * 2);
    },
    max,
  );
  return { batch, batches, singles };
}

describe('TickBatch', () => {
  it('hands the items submitted together to one batch and answers each in order', async () => {
    const d = doubler();
    expect(await Promise.all([1, 2, 3].map((n) => d.batch.submit(n)))).toEqual([2, 4, 6]);
    expect(d.batches).toEqual([[1, 2, 3]]);
    expect(d.singles).toEqual([]);
  });

  it('runs an item submitted alone through the single path', async () => {
    const d = doubler();
    expect(await d.batch.submit(5)).toBe(10);
    expect(await d.batch.submit(6)).toBe(12);
    expect(d.singles).toEqual([5, 6]);
    expect(d.batches).toEqual([]);
  });

  it('fails only the item the batch answered with an error', async () => {
    const d = doubler();
    const settled = await Promise.allSettled([1, -1, 2].map((n) => d.batch.submit(n)));
    expect(settled).toEqual([
      { status: 'fulfilled', value: 2 },
      { status: 'rejected', reason: new Error('negative: -1') },
      { status: 'fulfilled', value: 4 },
    ]);
  });

  it('fails every item of a batch that throws, and only that batch', async () => {
    const d = doubler(2);
    const settled = await Promise.allSettled([13, 1, 2, 3].map((n) => d.batch.submit(n)));
    expect(settled.map((s) => s.status)).toEqual(['rejected', 'rejected', 'fulfilled', 'fulfilled']);
    expect(d.batches).toEqual([
      [13, 1],
      [2, 3],
    ]);
  });

  it('keeps batches to their maximum size', async () => {
    const d = doubler(3);
    expect(await Promise.all([1, 2, 3, 4, 5, 6, 7].map((n) => d.batch.submit(n)))).toEqual([2, 4, 6, 8, 10, 12, 14]);
    expect(d.batches).toEqual([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    expect(d.singles).toEqual([7]);
  });

  it('fails items a batch left unanswered instead of leaving them waiting', async () => {
    const short = new TickBatch<number, number>(() => Promise.resolve([1]), () => Promise.resolve(0));
    const settled = await Promise.allSettled([short.submit(1), short.submit(2)]);
    expect(settled[0]).toEqual({ status: 'fulfilled', value: 1 });
    expect(settled[1]?.status).toBe('rejected');
  });
});
