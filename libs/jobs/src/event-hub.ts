import type { Redis } from 'ioredis';
import { JobEventSchema, isFinalEvent, type JobEvent, type RedisKeys } from '@fastvlm/contracts';
import { compareStreamIds } from './stream-id';

export interface StreamedEvent {
  /** Stream entry id; clients send it back as `Last-Event-ID` to resume. */
  id: string;
  event: JobEvent;
}

export interface EventHubOptions {
  /**
   * Milliseconds a follower may see nothing before it re-reads its stream
   * (XRANGE), whatever pub/sub says: the safety net for a message lost in a
   * way no reconnect reported. Default 5 000; 0 disables it.
   */
  idleResyncMs?: number;
}

type Listener = (entryId: string, json: string) => void;

/** A follower's side of a reconnect: stop consuming live messages, then read the stream and resume. */
interface Resync {
  hold(): void;
  release(): void;
}

/**
 * Follows jobs' event streams for many concurrent HTTP requests over one
 * subscriber connection: live entries arrive by pub/sub, and the stream itself
 * (XRANGE) fills in whatever was written before the subscription, while the
 * connection was down, or (the safety net) was missed in any other way.
 * Entries are delivered once, in stream order.
 */
export class EventHub {
  private readonly channels = new Map<string, { listeners: Set<Listener>; subscribed: Promise<unknown> }>();
  private readonly resyncs = new Set<Resync>();
  private readonly idleResyncMs: number;

  constructor(
    private readonly sub: Redis,
    private readonly cmd: Redis,
    private readonly keys: RedisKeys,
    opts: EventHubOptions = {},
  ) {
    this.idleResyncMs = opts.idleResyncMs ?? 5_000;
    // Job channels are sharded (SPUBLISH): on a Cluster each lives on its job's shard.
    sub.on('smessage', (channel: string, message: string) => {
      const space = message.indexOf(' ');
      if (space < 0) return;
      const entryId = message.slice(0, space);
      const json = message.slice(space + 1);
      for (const l of this.channels.get(channel)?.listeners ?? []) l(entryId, json);
    });
    // After a reconnect, pub/sub messages sent meanwhile are gone: re-read the streams.
    // ioredis emits `ready` before it even sends the re-SSUBSCRIBE, so a read done at
    // once could miss an entry published before the subscription is live again:
    // read only once our own SSUBSCRIBE, queued behind ioredis's, is acknowledged.
    // Followers hold live messages meanwhile: one published after ioredis's
    // re-SSUBSCRIBE but before ours would otherwise be consumed ahead of the
    // entries the read is about to find, and those would then look like repeats.
    sub.on('ready', () => {
      const waiting = [...this.resyncs];
      for (const r of waiting) r.hold();
      void this.resubscribe().finally(() => {
        for (const r of waiting) r.release();
      });
    });
  }

  private async resubscribe(): Promise<void> {
    const channels = [...this.channels.keys()];
    if (channels.length === 0) return;
    // A failure means the connection dropped again: its next `ready` comes back here.
    await this.sub.ssubscribe(...channels).catch(() => undefined);
  }

  /**
   * Yields the job's events after `afterId` ('0' = from the start) until a final
   * event, or until `signal` aborts.
   */
  async *follow(jobId: string, afterId: string, signal?: AbortSignal): AsyncGenerator<StreamedEvent> {
    const channel = this.keys.eventsChannel(jobId);
    const streamKey = this.keys.events(jobId);
    const pending: { id: string; json: string }[] = [];
    let wake: (() => void) | null = null;
    // Set from the XRANGE callback; an object so the loop re-reads it.
    const failed: { error: Error | null } = { error: null };
    const notify = (): void => {
      const w = wake;
      wake = null;
      w?.();
    };
    const listener: Listener = (id, json) => {
      pending.push({ id, json });
      notify();
    };
    // While any stream read is in flight, live messages wait: consuming a newer
    // one first would make the older entries of that read look like repeats.
    // A count, not a flag: reads overlap (a reconnect during the first read, the
    // safety net), and the first to finish must not release the others' entries.
    let reading = 0;
    const catchUp = (): void => {
      reading++;
      this.cmd
        .xrange(streamKey, `(${last}`, '+')
        .then((entries) => {
          for (const [id, fields] of entries) pending.push({ id, json: fields[1] ?? '' });
          // Live messages may have overtaken this read; deliver in stream order.
          pending.sort((a, b) => compareStreamIds(a.id, b.id));
        })
        .catch((e: unknown) => {
          failed.error = e instanceof Error ? e : new Error('reading the event stream failed', { cause: e });
        })
        .finally(() => {
          reading--;
          notify();
        });
    };
    let held = false;
    const resync: Resync = {
      hold: () => {
        if (held) return;
        held = true;
        reading++;
      },
      release: () => {
        catchUp();
        if (!held) return;
        held = false;
        reading--;
      },
    };
    let last = afterId;
    const onAbort = (): void => notify();
    signal?.addEventListener('abort', onAbort);
    await this.addListener(channel, listener);
    this.resyncs.add(resync);
    try {
      catchUp();
      for (;;) {
        if (signal?.aborted) return;
        if (failed.error) throw failed.error;
        const next = reading > 0 ? undefined : pending.shift();
        if (!next) {
          await this.idle(reading === 0 ? catchUp : null, (w) => (wake = w));
          continue;
        }
        // Pub/sub and XRANGE overlap; the stream order decides.
        if (compareStreamIds(next.id, last) <= 0) continue;
        last = next.id;
        const event = JobEventSchema.parse(JSON.parse(next.json));
        yield { id: next.id, event };
        if (isFinalEvent(event)) return;
      }
    } finally {
      signal?.removeEventListener('abort', onAbort);
      this.resyncs.delete(resync);
      await this.removeListener(channel, listener);
    }
  }

  /** Waits for the next wake-up; past `idleResyncMs` of silence, re-reads the stream (`resync`) and waits on. */
  private idle(resync: (() => void) | null, setWake: (w: () => void) => void): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = resync && this.idleResyncMs > 0 ? setTimeout(resync, this.idleResyncMs) : null;
      setWake(() => {
        if (timer) clearTimeout(timer);
        resolve();
      });
    });
  }

  private async addListener(channel: string, l: Listener): Promise<void> {
    let entry = this.channels.get(channel);
    if (!entry) {
      entry = { listeners: new Set(), subscribed: this.sub.ssubscribe(channel) };
      this.channels.set(channel, entry);
    }
    entry.listeners.add(l);
    try {
      // A second follower must not read the stream before the subscription is live either.
      await entry.subscribed;
    } catch (e) {
      entry.listeners.delete(l);
      if (this.channels.get(channel) === entry) this.channels.delete(channel);
      throw e;
    }
  }

  private async removeListener(channel: string, l: Listener): Promise<void> {
    const entry = this.channels.get(channel);
    if (!entry) return;
    entry.listeners.delete(l);
    if (entry.listeners.size === 0) {
      this.channels.delete(channel);
      await this.sub.sunsubscribe(channel).catch(() => undefined);
    }
  }
}
