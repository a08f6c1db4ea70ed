/**
 * The two trace formats the simulator replays, told apart by their header:
 *
 * - `minute,requests`: a count of requests per minute (minute 0, 1, 2, …);
 * - a first column `TIMESTAMP` (`2023-11-16 18:17:03.9799600`, UTC): one row per request.
 */

/** Epoch second that minute 0 of a per-minute trace is replayed at: a UTC midnight, so time of day and day of week line up. */
export const PER_MINUTE_EPOCH_S = Date.UTC(1995, 6, 1) / 1000;

/** Longest per-minute trace accepted: ten years of minutes (a typo in a minute column should not allocate gigabytes). */
const MAX_MINUTES = 10 * 366 * 1440;

export type Trace =
  | {
      format: 'per-minute';
      /** Epoch second of minute 0. */
      startS: number;
      /** Requests per minute; minutes missing from the file count 0. */
      counts: Float64Array;
    }
  | {
      format: 'per-request';
      /** Epoch seconds of each request, ascending. */
      times: Float64Array;
    };

/** A trace file the simulator cannot read; the message names the line. */
export class TraceFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TraceFormatError';
  }
}

/** Parses a trace's text; throws `TraceFormatError` on anything but the two known formats. */
export function parseTrace(text: string): Trace {
  const lines = text.split(/\r?\n/);
  const header = (lines[0] ?? '').trim();
  const columns = header.split(',').map((c) => c.trim());
  if (columns.length === 2 && columns[0] === 'minute' && columns[1] === 'requests') return parsePerMinute(lines);
  if (columns[0]?.toUpperCase() === 'TIMESTAMP') return parsePerRequest(lines);
  const shown = header.length > 60 ? `${header.slice(0, 60)}…` : header;
  throw new TraceFormatError(`unknown trace format: header "${shown}" is neither "minute,requests" nor a first column "TIMESTAMP"`);
}

function parsePerMinute(lines: readonly string[]): Trace {
  const minutes: number[] = [];
  const counts: number[] = [];
  let previous = -1;
  for (let i = 1; i < lines.length; i++) {
    const line = (lines[i] as string).trim();
    if (line === '') continue;
    const [m, c, extra] = line.split(',');
    if (extra !== undefined || m === undefined || c === undefined) throw new TraceFormatError(`line ${i + 1}: expected "minute,requests", got "${line}"`);
    const minute = Number(m);
    const count = Number(c);
    if (!Number.isInteger(minute) || minute < 0 || minute > MAX_MINUTES || m.trim() === '') {
      throw new TraceFormatError(`line ${i + 1}: minute "${m}" is not a whole number in [0, ${MAX_MINUTES}]`);
    }
    if (minute <= previous) throw new TraceFormatError(`line ${i + 1}: minute ${minute} does not follow minute ${previous}`);
    if (!Number.isFinite(count) || count < 0 || c.trim() === '') throw new TraceFormatError(`line ${i + 1}: requests "${c}" is not a non-negative number`);
    minutes.push(minute);
    counts.push(count);
    previous = minute;
  }
  if (minutes.length === 0) throw new TraceFormatError('the trace has a header but no rows');
  const out = new Float64Array(previous + 1);
  for (let k = 0; k < minutes.length; k++) out[minutes[k] as number] = counts[k] as number;
  return { format: 'per-minute', startS: PER_MINUTE_EPOCH_S, counts: out };
}

const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(\.\d+)?Z?$/;

/** Epoch seconds of a UTC `YYYY-MM-DD HH:MM:SS[.fraction]`, or NaN. Parsed by hand: Date keeps milliseconds only. */
export function parseUtcTimestamp(text: string): number {
  const m = TIMESTAMP.exec(text.trim());
  if (!m) return Number.NaN;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) return Number.NaN;
  const whole = Date.UTC(year, month - 1, day, hour, minute, second) / 1000;
  return whole + (m[7] ? Number(m[7]) : 0);
}

function parsePerRequest(lines: readonly string[]): Trace {
  const times: number[] = [];
  for (let i = 1; i < lines.length; i++) {
    const line = (lines[i] as string).trim();
    if (line === '') continue;
    const comma = line.indexOf(',');
    const field = comma < 0 ? line : line.slice(0, comma);
    const t = parseUtcTimestamp(field);
    if (Number.isNaN(t)) throw new TraceFormatError(`line ${i + 1}: "${field}" is not a UTC timestamp like 2023-11-16 18:17:03.9799600`);
    times.push(t);
  }
  if (times.length === 0) throw new TraceFormatError('the trace has a header but no rows');
  return { format: 'per-request', times: Float64Array.from(times).sort() };
}
