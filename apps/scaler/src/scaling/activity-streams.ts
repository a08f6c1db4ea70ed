/** Where a StreamIsActive call's values go. */
export interface ActivitySink {
  push(active: boolean): void;
  /** Ends the stream (shutdown). */
  end(): void;
}

interface Subscriber {
  readonly sink: ActivitySink;
  /** The value last pushed; null before the first. */
  last: boolean | null;
}

/**
 * The open StreamIsActive calls by ScaledObject. Each gets the current value
 * once, then only changes: KEDA acts on every value it receives.
 */
export class ActivityStreams {
  private readonly byWatch = new Map<string, Set<Subscriber>>();

  add(watchKey: string, sink: ActivitySink): () => void {
    const sub: Subscriber = { sink, last: null };
    let set = this.byWatch.get(watchKey);
    if (!set) {
      set = new Set();
      this.byWatch.set(watchKey, set);
    }
    set.add(sub);
    return () => {
      set.delete(sub);
      if (set.size === 0 && this.byWatch.get(watchKey) === set) this.byWatch.delete(watchKey);
    };
  }

  /** Pushes `active` to the streams of a ScaledObject that have not seen it yet. */
  publish(watchKey: string, active: boolean): void {
    for (const sub of this.byWatch.get(watchKey) ?? []) {
      if (sub.last === active) continue;
      sub.last = active;
      sub.sink.push(active);
    }
  }

  /** Whether any stream of these ScaledObjects shows (or awaits) the value `active`. */
  anyShowing(watchKeys: readonly string[], active: boolean): boolean {
    for (const key of watchKeys) {
      for (const sub of this.byWatch.get(key) ?? []) if (sub.last === active || (sub.last === null && !active)) return true;
    }
    return false;
  }

  has(watchKey: string): boolean {
    return (this.byWatch.get(watchKey)?.size ?? 0) > 0;
  }

  /** Ends every stream (shutdown). */
  endAll(): void {
    for (const set of this.byWatch.values()) for (const sub of set) sub.sink.end();
    this.byWatch.clear();
  }
}
