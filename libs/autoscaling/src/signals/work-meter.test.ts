import { describe, expect, it } from 'vitest';
import { WorkMeter } from './work-meter';

/** A clock the test moves by hand. */
function clock(start = 0): { now: () => number; at: (t: number) => void } {
  let t = start;
  return { now: () => t, at: (v) => (t = v) };
}

describe('WorkMeter', () => {
  it('gives exact busy and saturated milliseconds and done counts for a scripted sequence on two slots', () => {
    const c = clock(1_000);
    const m = new WorkMeter(2, c.now);
    c.at(1_100);
    m.started(); // A: busy from 1100
    c.at(1_300);
    m.started(); // B: saturated from 1300
    c.at(1_450);
    m.ended(); // A ends saturated: busy and saturated done
    c.at(1_500);
    m.started(); // C: saturated again from 1500
    c.at(1_800);
    m.ended(); // B ends saturated
    c.at(2_000);
    m.ended(); // C ends busy only; idle from 2000
    c.at(2_600);
    expect(m.take()).toEqual({ completions: 3, busyMs: 900, busyDone: 3, satMs: 450, satDone: 2 });
    expect(m.running).toBe(0);
  });

  it('reports nothing when nothing changed, and busy time of a job still running at each take', () => {
    const c = clock();
    const m = new WorkMeter(4, c.now);
    c.at(500);
    expect(m.take()).toBeNull();
    m.started();
    c.at(1_500);
    expect(m.take()).toEqual({ completions: 0, busyMs: 1_000, busyDone: 0, satMs: 0, satDone: 0 });
    c.at(2_250);
    m.ended();
    expect(m.take()).toEqual({ completions: 1, busyMs: 750, busyDone: 1, satMs: 0, satDone: 0 });
    c.at(9_000);
    expect(m.take()).toBeNull();
  });

  it('counts one slot as saturated whenever its job runs', () => {
    const c = clock();
    const m = new WorkMeter(1, c.now);
    m.started();
    c.at(40);
    m.ended();
    c.at(60);
    m.started();
    c.at(100);
    m.ended();
    expect(m.take()).toEqual({ completions: 2, busyMs: 80, busyDone: 2, satMs: 80, satDone: 2 });
  });

  it('carries fractions of a millisecond until they make a whole one, losing none', () => {
    const c = clock();
    const m = new WorkMeter(1, c.now);
    m.started();
    c.at(0.5);
    expect(m.take()).toBeNull();
    c.at(1.25);
    expect(m.take()).toEqual({ completions: 0, busyMs: 1, busyDone: 0, satMs: 1, satDone: 0 });
    c.at(3);
    expect(m.take()?.busyMs).toBe(2);
  });

  it('adds totals given back (an unsent write) to the next take', () => {
    const c = clock();
    const m = new WorkMeter(2, c.now);
    m.started();
    c.at(300);
    m.ended();
    const first = m.take();
    expect(first).toEqual({ completions: 1, busyMs: 300, busyDone: 1, satMs: 0, satDone: 0 });
    if (first) m.giveBack(first);
    m.started();
    c.at(350);
    m.ended();
    expect(m.take()).toEqual({ completions: 2, busyMs: 350, busyDone: 2, satMs: 0, satDone: 0 });
  });

  it('ignores an end without a start, and time a clock stepping back would make negative', () => {
    const c = clock(100);
    const m = new WorkMeter(1, c.now);
    m.ended();
    expect(m.take()).toBeNull();
    m.started();
    c.at(50);
    m.ended();
    expect(m.take()).toEqual({ completions: 1, busyMs: 0, busyDone: 1, satMs: 0, satDone: 1 });
  });
});
