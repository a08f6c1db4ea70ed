import { DEFAULT_SCALED_OBJECT, type ScalerSettings } from '@fastvlm/autoscaling';

/** A ScaledObject KEDA has not called about for this long (and with no stream open) is no longer watched. */
export const WATCH_IDLE_MS = 10 * 60_000;

/** A ScaledObject the scaler decides for on every tick. */
export interface Watch {
  /** `namespace/name`, or `default` for the scaler's own watches (one per configured model pool). */
  readonly key: string;
  /** From the latest call's metadata (a ScaledObject that changed its trigger moves with it). */
  settings: ScalerSettings;
  /** Epoch ms of the latest call (or stream end) about it. */
  lastCallMs: number;
  /** StreamIsActive calls open on it; a watch with any is never dropped. */
  streams: number;
}

/**
 * The ScaledObjects being watched: the scaler's own (one per configured pool,
 * never dropped), and those seen in gRPC calls until they go quiet.
 */
export class WatchSet {
  /** By ScaledObject key; the scaler's own by `default` and queue (a ScaledObject's key always holds a `/`). */
  private readonly watches = new Map<string, Watch>();

  constructor(ownSettings: readonly ScalerSettings[]) {
    for (const settings of ownSettings) {
      this.watches.set(`${DEFAULT_SCALED_OBJECT}\n${settings.queue}`, { key: DEFAULT_SCALED_OBJECT, settings, lastCallMs: Infinity, streams: 0 });
    }
  }

  /** Starts or refreshes the watch of a ScaledObject a call named. */
  touch(key: string, settings: ScalerSettings, nowMs: number): Watch {
    const w = this.watches.get(key);
    if (w) {
      w.settings = settings;
      w.lastCallMs = Math.max(w.lastCallMs, nowMs);
      return w;
    }
    const created: Watch = { key, settings, lastCallMs: nowMs, streams: 0 };
    this.watches.set(key, created);
    return created;
  }

  get(key: string): Watch | undefined {
    return this.watches.get(key);
  }

  /** Drops the watches quiet for WATCH_IDLE_MS; returns them. */
  expire(nowMs: number): Watch[] {
    const gone: Watch[] = [];
    for (const w of this.watches.values()) {
      if (w.streams === 0 && nowMs - w.lastCallMs > WATCH_IDLE_MS) gone.push(w);
    }
    for (const [id, w] of this.watches) if (gone.includes(w)) this.watches.delete(id);
    return gone;
  }

  /** Watches by queue. */
  byQueue(): Map<string, Watch[]> {
    const out = new Map<string, Watch[]>();
    for (const w of this.watches.values()) {
      const list = out.get(w.settings.queue);
      if (list) list.push(w);
      else out.set(w.settings.queue, [w]);
    }
    return out;
  }

  onQueue(queue: string): Watch[] {
    return [...this.watches.values()].filter((w) => w.settings.queue === queue);
  }
}
