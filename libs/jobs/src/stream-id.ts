/** Compares two Redis stream entry ids (`<ms>-<seq>`); negative when a < b. */
export function compareStreamIds(a: string, b: string): number {
  const [am = '0', as = '0'] = a.split('-');
  const [bm = '0', bs = '0'] = b.split('-');
  const dm = Number(am) - Number(bm);
  return dm !== 0 ? dm : Number(as) - Number(bs);
}

/** Whether `id` looks like a stream entry id a client may send back as `Last-Event-ID`. */
export function isStreamId(id: string): boolean {
  return /^\d{1,15}-\d{1,10}$/.test(id);
}
