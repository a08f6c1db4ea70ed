import { describe, expect, it } from 'vitest';
import { PER_MINUTE_EPOCH_S, TraceFormatError, parseTrace, parseUtcTimestamp } from './trace';

describe('trace formats', () => {
  it('reads a minute,requests trace with minute 0 at 1995-07-01T00:00:00Z and missing minutes as 0', () => {
    const t = parseTrace('minute,requests\n0,42\n1,62\n3,7\n');
    expect(t.format).toBe('per-minute');
    if (t.format !== 'per-minute') return;
    expect(t.startS).toBe(Date.parse('1995-07-01T00:00:00Z') / 1000);
    expect(t.startS).toBe(PER_MINUTE_EPOCH_S);
    expect(Array.from(t.counts)).toEqual([42, 62, 0, 7]);
  });

  it('reads a TIMESTAMP trace as UTC epoch seconds with the sub-millisecond fraction kept, ascending', () => {
    const t = parseTrace('TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:04.0319600,3180,8\n2023-11-16 18:17:03.9799600,4808,10\r\n');
    expect(t.format).toBe('per-request');
    if (t.format !== 'per-request') return;
    const base = Date.UTC(2023, 10, 16, 18, 17, 3) / 1000;
    expect(t.times.length).toBe(2);
    expect(t.times[0]).toBeCloseTo(base + 0.97996, 6);
    expect(t.times[1]).toBeCloseTo(base + 1.03196, 6);
  });

  it('parses timestamps with or without a fraction, T or space, and a trailing Z', () => {
    expect(parseUtcTimestamp('2023-11-16T18:17:03Z')).toBe(Date.UTC(2023, 10, 16, 18, 17, 3) / 1000);
    expect(parseUtcTimestamp('2023-11-16 18:17:03.5')).toBe(Date.UTC(2023, 10, 16, 18, 17, 3) / 1000 + 0.5);
    expect(parseUtcTimestamp('2023-13-16 18:17:03')).toBeNaN();
    expect(parseUtcTimestamp('16/11/2023 18:17')).toBeNaN();
  });

  it.each([
    ['an unknown header', 'time,count\n0,1\n', /unknown trace format/],
    ['an empty file', '', /unknown trace format/],
    ['a header without rows', 'minute,requests\n', /no rows/],
    ['a count that is not a number', 'minute,requests\n0,lots\n', /line 2: requests "lots"/],
    ['a negative count', 'minute,requests\n0,-1\n', /line 2/],
    ['a fractional minute', 'minute,requests\n0.5,1\n', /line 2: minute "0.5"/],
    ['minutes out of order', 'minute,requests\n2,1\n1,1\n', /line 3: minute 1 does not follow minute 2/],
    ['an extra column', 'minute,requests\n0,1,2\n', /line 2/],
    ['a timestamp that is not one', 'TIMESTAMP,x\n2023-11-16 18:17:03,1\nyesterday,2\n', /line 3: "yesterday"/],
  ])('refuses %s with a TraceFormatError naming the problem', (_what, text, message) => {
    expect(() => parseTrace(text)).toThrow(TraceFormatError);
    expect(() => parseTrace(text)).toThrow(message);
  });
});
