import { createServer, connect, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RedisKeys, type JobEvent } from '@fastvlm/contracts';
import { EventHub, type StreamedEvent } from './event-hub';
import { cleanupPrefix, TEST_REDIS_URL, testPrefix } from './test-redis';

/** What the job store's scripts do: append to the stream and announce the entry on the job's sharded channel, atomically. */
const APPEND = `
local id = redis.call('XADD', KEYS[1], '*', 'e', ARGV[1])
if ARGV[2] == '1' then redis.call('SPUBLISH', KEYS[2], id .. ' ' .. ARGV[1]) end
return id
`;

const token = (index: number): JobEvent => ({ type: 'token', index, text: `t${index}` });
const FINAL: JobEvent = { type: 'status', status: 'cancelled' };

describe('EventHub', () => {
  const prefix = testPrefix();
  const keys = new RedisKeys(prefix);
  let writer: Redis;
  let cmd: Redis;
  const opened: Redis[] = [];
  const append = (job: string, e: JobEvent, publish = true): Promise<unknown> =>
    writer.eval(APPEND, 2, keys.events(job), keys.eventsChannel(job), JSON.stringify(e), publish ? '1' : '0');
  const subscriber = (name: string): Redis => {
    const s = new Redis(TEST_REDIS_URL, { connectionName: name, maxRetriesPerRequest: null, retryStrategy: () => 20 });
    opened.push(s);
    return s;
  };
  /** Collects what a follower yields until the final event, or gives up after `ms`. */
  const collect = (gen: AsyncGenerator<StreamedEvent>, seen: JobEvent[]): Promise<void> =>
    (async () => {
      for await (const { event } of gen) seen.push(event);
    })();
  const until = async (what: string, check: () => Promise<boolean> | boolean, ms = 5_000): Promise<void> => {
    const deadline = Date.now() + ms;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  const numsub = async (channel: string): Promise<number> => Number(((await writer.pubsub('SHARDNUMSUB', channel)) as [string, number])[1]);
  const killClient = async (name: string): Promise<void> => {
    const list = (await writer.client('LIST')) as string;
    const line = list.split('\n').find((l) => l.includes(` name=${name} `));
    const id = /id=(\d+)/.exec(line ?? '')?.[1];
    if (!id) throw new Error(`no client named ${name}`);
    await writer.client('KILL', 'ID', id);
  };

  beforeAll(() => {
    writer = new Redis(TEST_REDIS_URL);
    cmd = new Redis(TEST_REDIS_URL);
  });
  afterEach(() => {
    for (const s of opened.splice(0)) s.disconnect();
  });
  afterAll(async () => {
    await cleanupPrefix(writer, prefix);
    writer.disconnect();
    cmd.disconnect();
  });

  it('re-reads the stream of a follower that has seen nothing for a while, so an entry whose announcement was lost still arrives', async () => {
    const hub = new EventHub(subscriber(`${prefix}-net`), cmd, keys, { idleResyncMs: 100 });
    const seen: JobEvent[] = [];
    const ctrl = new AbortController();
    const done = collect(hub.follow('j-net', '0', ctrl.signal), seen);
    await until('the follower to subscribe', async () => (await numsub(keys.eventsChannel('j-net'))) === 1);
    await append('j-net', token(0));
    await until('the live entry', () => seen.length === 1);
    // Written but never announced (a PUBLISH lost in a way no reconnect reports).
    await append('j-net', token(1), false);
    await append('j-net', FINAL, false);
    const timer = setTimeout(() => ctrl.abort(), 5_000);
    await done;
    clearTimeout(timer);
    expect(seen).toEqual([token(0), token(1), FINAL]);
  });

  it('after a reconnect, reads the stream only once the subscription is live again, so nothing published meanwhile is lost', async () => {
    // The subscriber reaches Redis over a link that, once reconnected, is slow: its re-SSUBSCRIBE lands after the write below.
    const link = await slowLink(TEST_REDIS_URL);
    const name = `${prefix}-re`;
    const sub = new Redis(link.url, { connectionName: name, maxRetriesPerRequest: null, retryStrategy: () => 20 });
    opened.push(sub);
    // The safety net would hide the race.
    const hub = new EventHub(sub, cmd, keys, { idleResyncMs: 0 });
    const seen: JobEvent[] = [];
    const ctrl = new AbortController();
    const done = collect(hub.follow('j-re', '0', ctrl.signal), seen);
    const channel = keys.eventsChannel('j-re');
    await until('the follower to subscribe', async () => (await numsub(channel)) === 1);
    await append('j-re', token(0));
    await until('the live entry', () => seen.length === 1);
    // Written the moment the connection is ready again, before its re-SSUBSCRIBE is acknowledged.
    const during: { write: Promise<unknown> | null } = { write: null };
    sub.once('ready', () => {
      during.write = append('j-re', token(1));
    });
    link.slowFromNowOn(150);
    await killClient(name);
    await until('the resubscription', async () => during.write !== null && (await numsub(channel)) === 1);
    await during.write;
    await append('j-re', FINAL);
    const timer = setTimeout(() => ctrl.abort(), 5_000);
    await done;
    clearTimeout(timer);
    link.close();
    expect(seen).toEqual([token(0), token(1), FINAL]);
  });

  it('holds live entries until every overlapping stream read is in, so an entry only the later read finds is not dropped', async () => {
    // The hub's reads pass a gate that lets them reach Redis one at a time, when the test says.
    const gate = await gatedLink(TEST_REDIS_URL);
    const reads = new Redis(gate.url, { maxRetriesPerRequest: null });
    opened.push(reads);
    await reads.ping();
    gate.hold();
    const name = `${prefix}-overlap`;
    const sub = subscriber(name);
    const hub = new EventHub(sub, reads, keys, { idleResyncMs: 0 });
    const seen: JobEvent[] = [];
    const ctrl = new AbortController();
    const done = collect(hub.follow('j-overlap', '0', ctrl.signal), seen);
    // Read 1 (the follower's first) waits at the gate; a reconnect starts read 2 behind it.
    await until('the first read', () => gate.held() === 1);
    await killClient(name);
    await until('the second read', () => gate.held() === 2);
    const replies = gate.forwarded();
    gate.releaseOne();
    await until('the first read to answer', () => gate.forwarded() > replies);
    // An entry whose announcement the reconnect lost, then a live one: only read 2 can find the first.
    await append('j-overlap', token(0), false);
    await append('j-overlap', token(1));
    gate.open();
    await append('j-overlap', FINAL);
    const timer = setTimeout(() => ctrl.abort(), 5_000);
    await done;
    clearTimeout(timer);
    gate.close();
    expect(seen).toEqual([token(0), token(1), FINAL]);
  });

  it('delivers every entry once and in order while its connection drops again and again under a steady writer', async () => {
    const name = `${prefix}-storm`;
    const hub = new EventHub(subscriber(name), cmd, keys, { idleResyncMs: 200 });
    const seen: JobEvent[] = [];
    const ctrl = new AbortController();
    const done = collect(hub.follow('j-storm', '0', ctrl.signal), seen);
    await until('the follower to subscribe', async () => (await numsub(keys.eventsChannel('j-storm'))) === 1);
    const n = 300;
    // The writer keeps at most a few entries ahead of the follower, and each drop comes at a point of progress.
    const writing = (async () => {
      for (let i = 0; i < n; i++) {
        await append('j-storm', token(i));
        if (i % 10 === 9) await until(`the follower to reach ${i - 5}`, () => seen.length >= i - 5);
      }
      await append('j-storm', FINAL);
    })();
    for (let k = 1; k <= 5; k++) {
      await until(`the follower to reach ${k * 50}`, () => seen.length >= k * 50);
      await killClient(name).catch(() => undefined);
    }
    await writing;
    const timer = setTimeout(() => ctrl.abort(), 10_000);
    await done;
    clearTimeout(timer);
    expect(seen).toEqual([...Array.from({ length: n }, (_, i) => token(i)), FINAL]);
  });
});

/**
 * A TCP link to Redis whose new connections, once `slowFromNowOn` is called,
 * deliver each command the client sends `ms` after the previous one (in order):
 * a congested network path. Per command, not per chunk, so that two commands
 * written back to back (ioredis's re-SSUBSCRIBE and the hub's own) arrive `ms`
 * apart every time rather than only when the kernel happens to split them.
 */
async function slowLink(redisUrl: string): Promise<{ url: string; slowFromNowOn: (ms: number) => void; close: () => void }> {
  const target = new URL(redisUrl);
  let delayMs = 0;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(Number(target.port || 6379), target.hostname);
    sockets.add(client);
    sockets.add(upstream);
    const lag = delayMs;
    let chain = Promise.resolve();
    const commands = new RespCommandSplitter();
    client.on('data', (chunk: Buffer) => {
      if (lag === 0) {
        upstream.write(chunk);
        return;
      }
      for (const command of commands.push(chunk)) {
        chain = chain.then(() => new Promise((r) => setTimeout(r, lag))).then(() => {
          upstream.write(command);
        });
      }
    });
    upstream.on('data', (chunk) => client.write(chunk));
    const end = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('the link has no port');
  return {
    url: `redis://127.0.0.1:${address.port}`,
    slowFromNowOn: (ms) => (delayMs = ms),
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

/**
 * A TCP link to Redis that can hold what clients send (each chunk, in order)
 * and let it through one chunk at a time, to order commands of different
 * connections exactly.
 */
async function gatedLink(redisUrl: string): Promise<{
  url: string;
  hold: () => void;
  held: () => number;
  releaseOne: () => void;
  open: () => void;
  forwarded: () => number;
  close: () => void;
}> {
  const target = new URL(redisUrl);
  let holding = false;
  let replies = 0;
  const queue: (() => void)[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(Number(target.port || 6379), target.hostname);
    sockets.add(client);
    sockets.add(upstream);
    client.on('data', (chunk) => {
      if (holding) queue.push(() => upstream.write(chunk));
      else upstream.write(chunk);
    });
    upstream.on('data', (chunk) => {
      replies++;
      client.write(chunk);
    });
    const end = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('the link has no port');
  return {
    url: `redis://127.0.0.1:${address.port}`,
    hold: () => (holding = true),
    held: () => queue.length,
    releaseOne: () => queue.shift()?.(),
    open: () => {
      holding = false;
      for (const send of queue.splice(0)) send();
    },
    forwarded: () => replies,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

/** Cuts a client's byte stream into whole RESP commands (arrays of bulk strings, all ioredis sends). */
class RespCommandSplitter {
  private buffered = Buffer.alloc(0);

  push(chunk: Buffer): Buffer[] {
    this.buffered = Buffer.concat([this.buffered, chunk]);
    const out: Buffer[] = [];
    for (;;) {
      const end = this.commandEnd();
      if (end === null) return out;
      out.push(this.buffered.subarray(0, end));
      this.buffered = this.buffered.subarray(end);
    }
  }

  /** The offset just past the first whole command, or null while it is incomplete. */
  private commandEnd(): number | null {
    const line = (from: number): { text: string; next: number } | null => {
      const cr = this.buffered.indexOf('\r\n', from);
      return cr < 0 ? null : { text: this.buffered.toString('latin1', from, cr), next: cr + 2 };
    };
    const header = line(0);
    if (!header) return null;
    if (!header.text.startsWith('*')) throw new Error(`not a RESP array: ${header.text}`);
    let at = header.next;
    for (let i = Number(header.text.slice(1)); i > 0; i--) {
      const size = line(at);
      if (!size) return null;
      at = size.next + Number(size.text.slice(1)) + 2;
      if (at > this.buffered.length) return null;
    }
    return at;
  }
}
