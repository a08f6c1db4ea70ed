import { QueueEvents, QueueKeys } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';

export interface QueueEventHandlers {
  /** A job entered the queue (added, or back to waiting): an idle queue may have become active. */
  arrived(queue: string): void;
  /** A job left the queue (completed, failed, removed): a busy queue may have emptied. */
  departed(queue: string): void;
}

/** A reader's close gets this long; then its connection is cut. */
const CLOSE_TIMEOUT_MS = 2_000;
/** Finding where a new reader starts gets this long (Redis away); then it starts at the stream's end. */
const ANCHOR_TIMEOUT_MS = 2_000;

interface Listener {
  connection: Redis;
  /** Resolves once the reader is anchored: every event after that point will be delivered. */
  ready: Promise<void>;
  events: QueueEvents | null;
  closed: boolean;
}

/**
 * One BullMQ `QueueEvents` reader per watched queue, so that a first job on an
 * idle queue reaches StreamIsActive within milliseconds instead of at the next
 * tick. Each reader blocks on the queue's event stream with a connection of its
 * own, which it closes (BullMQ leaves a connection it was given open).
 *
 * A reader starts from the stream's last entry as read when it opens, not from
 * "whatever is newest when the first blocking read goes out" (BullMQ's `$`):
 * a caller that waits for `ready` and then reads the queue misses nothing, since
 * an event either precedes its reading or is delivered.
 */
export class QueueEventsHub {
  private readonly listeners = new Map<string, Listener>();
  private readonly bullKeys: QueueKeys;
  private closing = false;

  constructor(
    private readonly opts: {
      /** BullMQ key prefix. */
      prefix: string;
      /** A new blocking-capable connection (reconnects forever). */
      connect: (queue: string) => Redis;
      handlers: QueueEventHandlers;
      log: Logger;
    },
  ) {
    this.bullKeys = new QueueKeys(opts.prefix);
  }

  /** Opens readers for queues newly watched and closes those of queues no longer watched. */
  async sync(queues: ReadonlySet<string>): Promise<void> {
    if (this.closing) return;
    for (const queue of queues) if (!this.listeners.has(queue)) this.open(queue);
    const gone = [...this.listeners.keys()].filter((q) => !queues.has(q));
    await Promise.all(gone.map((q) => this.closeOne(q)));
  }

  /** Resolves once the queue's reader is anchored (at once for a queue without one). Never rejects. */
  ready(queue: string): Promise<void> {
    return this.listeners.get(queue)?.ready ?? Promise.resolve();
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all([...this.listeners.keys()].map((q) => this.closeOne(q)));
  }

  private open(queue: string): void {
    const connection = this.opts.connect(queue);
    const listener: Listener = { connection, ready: Promise.resolve(), events: null, closed: false };
    listener.ready = this.anchor(connection, queue).then((lastEventId) => {
      if (listener.closed) return;
      const events = new QueueEvents(queue, { connection, prefix: this.opts.prefix, lastEventId });
      const h = this.opts.handlers;
      events.on('added', () => h.arrived(queue));
      events.on('waiting', () => h.arrived(queue));
      events.on('completed', () => h.departed(queue));
      events.on('failed', () => h.departed(queue));
      events.on('removed', () => h.departed(queue));
      events.on('error', (err) => this.opts.log.warn({ err: err.message, queue }, 'queue events reader error; it reconnects'));
      listener.events = events;
    });
    this.listeners.set(queue, listener);
  }

  /** The id of the queue's last event now ('0-0' for none), or `$` when Redis does not say in time. */
  private async anchor(connection: Redis, queue: string): Promise<string> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<string>((resolve) => (timer = setTimeout(() => resolve('$'), ANCHOR_TIMEOUT_MS)));
    const last = connection
      .xrevrange(this.bullKeys.toKey(queue, 'events'), '+', '-', 'COUNT', 1)
      .then((rows) => rows[0]?.[0] ?? '0-0')
      .catch(() => '$');
    try {
      return await Promise.race([last, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  private async closeOne(queue: string): Promise<void> {
    const l = this.listeners.get(queue);
    if (!l) return;
    this.listeners.delete(queue);
    l.closed = true;
    // BullMQ's close waits for its connection to be ready first: with Redis away it would wait forever.
    let timer: NodeJS.Timeout | undefined;
    const bounded = new Promise<void>((resolve) => (timer = setTimeout(resolve, CLOSE_TIMEOUT_MS)));
    const events = l.events;
    await Promise.race([events ? events.close().catch(() => undefined) : Promise.resolve(), bounded]);
    clearTimeout(timer);
    l.connection.disconnect();
  }
}
