import { describe, expect, it } from 'vitest';
import { SingleFlight } from './single-flight';

/** A run the test finishes by hand. */
function gate(): { promise: Promise<number>; open: (v: number) => void } {
  let open = (_: number): void => undefined;
  const promise = new Promise<number>((r) => (open = r));
  return { promise, open };
}

describe('single flight per queue', () => {
  it('lets callers join the run under way, and gives callers that need a newer one a single next run', async () => {
    const f = new SingleFlight<number>();
    const runs: ReturnType<typeof gate>[] = [];
    const fn = (): Promise<number> => {
      const g = gate();
      runs.push(g);
      return g.promise;
    };
    const first = f.run('q', false, fn);
    const joined = f.run('q', false, fn);
    const fresh1 = f.run('q', true, fn);
    const fresh2 = f.run('q', true, fn);
    expect(runs).toHaveLength(1);
    runs[0]?.open(1);
    expect(await first).toBe(1);
    expect(await joined).toBe(1);
    await Promise.resolve();
    await new Promise((r) => setImmediate(r));
    expect(runs).toHaveLength(2);
    runs[1]?.open(2);
    expect(await fresh1).toBe(2);
    expect(await fresh2).toBe(2);
    // Another key runs on its own.
    const other = f.run('r', false, fn);
    expect(runs).toHaveLength(3);
    runs[2]?.open(3);
    expect(await other).toBe(3);
  });

  it('starts afresh after a failed run', async () => {
    const f = new SingleFlight<number>();
    await expect(f.run('q', false, () => Promise.reject(new Error('redis away')))).rejects.toThrow('redis away');
    expect(await f.run('q', false, () => Promise.resolve(7))).toBe(7);
  });
});
