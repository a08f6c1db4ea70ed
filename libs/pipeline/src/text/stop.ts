export interface StopFeedResult {
  /** Text that is certain to be part of the answer. */
  emit: string;
  /** A stop string has completed; nothing after it is part of the answer. */
  stopped: boolean;
}

/**
 * Truncates a stream of text deltas before the first occurrence of any stop
 * string. Streaming clients must never see the beginning of a stop string, so
 * text that might still turn into one is held back until it is decided.
 * Invariant: the concatenated `emit`s plus `finish()` equal the full text cut
 * before its first stop occurrence (all of it when none occurs).
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

    let first = -1;
    for (const stop of this.stops) {
      const at = text.indexOf(stop);
      if (at !== -1 && (first === -1 || at < first)) first = at;
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
