import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { StopMatcher } from './stop';

/** Feeds deltas in order; returns what each feed emitted, the finish() text and whether it stopped. */
function run(stops: string[], deltas: string[]) {
  const m = new StopMatcher(stops);
  const emits: string[] = [];
  let stopped = false;
  for (const d of deltas) {
    const r = m.feed(d);
    emits.push(r.emit);
    stopped ||= r.stopped;
  }
  const rest = m.finish();
  return { emits, rest, stopped, text: emits.join('') + rest };
}

/** The text cut before the stop that completes first, reading one character at a time. */
function truncated(full: string, stops: string[]): string {
  for (let end = 1; end <= full.length; end++) {
    const seen = full.slice(0, end);
    const done = stops.filter((s) => s.length > 0 && seen.endsWith(s));
    if (done.length > 0) return seen.slice(0, end - Math.max(...done.map((s) => s.length)));
  }
  return full;
}

describe('StopMatcher', () => {
  it('stop string split across deltas: emits the text before it and stops', () => {
    const r = run(['</answer>'], ['The cat', ' sat</an', 'swer> trailing', ' more']);
    expect(r.emits).toEqual(['The cat', ' sat', '', '']);
    expect(r.text).toBe('The cat sat');
    expect(r.stopped).toBe(true);
  });

  it('stop string at the very start emits nothing', () => {
    const r = run(['STOP'], ['ST', 'OP and then some']);
    expect(r.emits).toEqual(['', '']);
    expect(r.text).toBe('');
    expect(r.stopped).toBe(true);
  });

  it('no stop string: everything comes out, held text via finish()', () => {
    const r = run(['\n\n'], ['one line', ' and a newline\n']);
    expect(r.emits).toEqual(['one line', ' and a newline']);
    expect(r.rest).toBe('\n');
    expect(r.text).toBe('one line and a newline\n');
    expect(r.stopped).toBe(false);
  });

  it('no stop strings at all passes text straight through', () => {
    expect(run([], ['a', 'b']).emits).toEqual(['a', 'b']);
    expect(run([''], ['a', 'b']).emits).toEqual(['a', 'b']);
  });

  it('two stop strings: the one that completes first wins, however the text is split', () => {
    const r = run(['world', 'lo w'], ['hel', 'lo wor', 'ld']);
    expect(r.text).toBe('hel');
    expect(r.stopped).toBe(true);
    expect(run(['abc', 'b'], ['xab', 'c']).text).toBe('xa');
    // "\n b" begins first but " " completes first: generation would have stopped there.
    expect(run([' ', '\n b'], ['\n b']).text).toBe('\n');
    expect(run([' ', '\n b'], ['\n ', 'b']).text).toBe('\n');
  });

  it('held-back prefix that turns out not to be a stop is released', () => {
    const m = new StopMatcher(['<|end|>']);
    expect(m.feed('value <|e')).toEqual({ emit: 'value ', stopped: false });
    expect(m.feed('x')).toEqual({ emit: '<|ex', stopped: false });
    expect(m.feed(' <')).toEqual({ emit: ' ', stopped: false });
    expect(m.finish()).toBe('<');
  });

  it('holds back the longest suffix that could start any stop', () => {
    const m = new StopMatcher(['abcd', 'cde']);
    expect(m.feed('xxabc')).toEqual({ emit: 'xx', stopped: false });
    expect(m.feed('e')).toEqual({ emit: 'abce', stopped: false });
    const n = new StopMatcher(['abcd', 'cde']);
    expect(n.feed('xxabc')).toEqual({ emit: 'xx', stopped: false });
    // Both complete with "de"; "abcd" starts earlier.
    expect(n.feed('de')).toEqual({ emit: '', stopped: true });
  });

  it('feeds after a stop emit nothing', () => {
    const m = new StopMatcher(['.']);
    expect(m.feed('a.b')).toEqual({ emit: 'a', stopped: true });
    expect(m.feed('c')).toEqual({ emit: '', stopped: true });
    expect(m.finish()).toBe('');
  });

  it('emits + finish equal the text truncated at the first stop, for any split (property)', () => {
    const alphabet = fc.constantFrom('a', 'b', 'c', ' ', '\n', 'é', '😀');
    const text = fc.array(alphabet, { maxLength: 40 }).map((cs) => cs.join(''));
    const stop = fc.array(alphabet, { minLength: 1, maxLength: 4 }).map((cs) => cs.join(''));
    fc.assert(
      fc.property(text, fc.array(stop, { maxLength: 3 }), fc.array(fc.nat(), { maxLength: 10 }), (full, stops, cuts) => {
        const points = [...new Set(cuts.map((c) => c % (full.length + 1)))].sort((a, b) => a - b);
        const deltas = [0, ...points, full.length].slice(1).map((end, i, ends) => full.slice(i === 0 ? 0 : ends[i - 1], end));
        const r = run(stops, deltas);
        expect(r.text).toBe(truncated(full, stops));
        expect(r.stopped).toBe(truncated(full, stops).length < full.length);
      }),
      { numRuns: 2000 },
    );
  });
});
