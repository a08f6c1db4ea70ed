export interface StopFeedResult {
  /** Text that is certain to be part of the answer. */
  emit: string;
  /** A stop string has completed; nothing after it is part of the answer. */
  stopped: boolean;
}

/**
 * Truncates a stream of text deltas before the first stop string to complete. Streaming clients must never see the beginning of a stop string, so
 * text that might still turn into one is held back until it is decided.
 * Invariant: the concatenated `emit`s plus `finish()` equal the full text cut
 * before the stop string that completes first (all of it when none occurs),
 * however the text is split into deltas.
 */
export class StopMatcher {
  private readonly stops: readonly string[];
  private held = '';
  private done = false;

  constructor(stops: readonly string[]) {
    // An empty stop string would match before any text; treat it as absent.
    this.stops = [...new Set(stops.filter((s) => s.length > 0))];
  }

  get stopped(): boolean {
    return this.done;
  }

  feed(delta: string): StopFeedResult {
    if (this.done) return { emit: '', stopped: true };
    const text = this.held + delta;

    // The stop that completes first ends the answer, as if the text had come one character at a
    // time: a longer stop that began earlier but ends later was never finished. Among stops ending
    // at the same place, the longest (earliest start) wins. So the result does not depend on how the
    // text was split into deltas.
    let first = -1;
    let firstEnd = Infinity;
    for (const stop of this.stops) {
      const at = text.indexOf(stop);
      if (at === -1) continue;
      const end = at + stop.length;
      if (end < firstEnd || (end === firstEnd && at < first)) {
        first = at;
        firstEnd = end;
      }
    }
    if (first !== -1) {
      this.done = true;
      this.held = '';
      return { emit: text.slice(0, first), stopped: true };
    }

    const keep = this.longestPendingSuffix(text);
    this.held = text.slice(text.length - keep);
    return { emit: text.slice(0, text.length - keep), stopped: false };
  }

  /** The held-back text: at the end of generation it can no longer become a stop string. */
  finish(): string {
    const rest = this.done ? '' : this.held;
    this.held = '';
    return rest;
  }

  /**
   * Length of the longest suffix of `text` that is a proper prefix of some stop
   * string. Any occurrence that straddles a later delta begins inside it.
   */
  private longestPendingSuffix(text: string): number {
    let best = 0;
    for (const stop of this.stops) {
      for (let k = Math.min(stop.length - 1, text.length); k > best; k--) {
        if (text.endsWith(stop.slice(0, k))) {
          best = k;
          break;
        }
      }
    }
    return best;
  }
}
