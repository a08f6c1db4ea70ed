/**
 * The completion windows a deployment accepts (`BATCH_COMPLETION_WINDOWS`, e.g. `1h,4h,24h`), each
 * `<n>h` or `<n>m`, to milliseconds. Throws on a malformed entry (checked at start-up).
 */
export function parseWindows(list: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const w of list.split(',').map((x) => x.trim()).filter(Boolean)) {
    const m = /^([1-9]\d{0,4})([hm])$/.exec(w);
    if (!m) throw new Error(`BATCH_COMPLETION_WINDOWS: "${w}" is not <n>h or <n>m`);
    out.set(w, Number(m[1]) * (m[2] === 'h' ? 3_600_000 : 60_000));
  }
  if (out.size === 0) throw new Error('BATCH_COMPLETION_WINDOWS names no window');
  return out;
}
