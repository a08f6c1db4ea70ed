/**
 * A counting TCP relay between the apps and Redis, for bench:redis. Each
 * role (gateway, worker) gets its own listening port; every byte is passed
 * on unchanged, and on the way the relay counts what Redis itself cannot
 * tell apart: the commands the clients sent (top-level commands, one per
 * RESP request, whatever a script then runs inside Redis), the request
 * bytes by command, the reply bytes, and the pub/sub messages pushed to
 * subscriber connections. Redis's INFO counts commands run inside scripts
 * as well, and total_commands_processed too (Redis 7.0), so without the
 * relay a script call and its inner commands are indistinguishable there.
 */
import net from 'node:net';

export interface RoleCounts {
  /** Top-level commands by name (lower case, `container|sub` for CLIENT/CONFIG/…, as INFO commandstats names them). */
  commands: Record<string, { calls: number; bytes: number }>;
  /** Bytes the role's clients sent to Redis / Redis sent back (replies and pushed pub/sub messages). */
  bytesToRedis: number;
  bytesFromRedis: number;
  /** Pub/sub messages Redis pushed to this role's subscriber connections (message, smessage, pmessage; RESP2 or RESP3). */
  pushedMessages: number;
  connections: number;
}

export type RelaySnapshot = Record<string, RoleCounts>;

/** Commands whose first argument names a subcommand (INFO commandstats reports `client|setname`, …). */
const CONTAINERS = new Set(['client', 'config', 'script', 'cluster', 'command', 'memory', 'object', 'xinfo', 'xgroup', 'function', 'pubsub', 'acl', 'latency', 'slowlog', 'module']);
/**
 * How pushed pub/sub messages start: `message`, `smessage` (sharded) and `pmessage`, as RESP3 pushes
 * (`>3`, what ioredis 6 speaks by default) and as RESP2 arrays (`*3`).
 */
const PUSH_HEADS = ['>', '*'].flatMap((t) => [`${t}3\r\n$7\r\nmessage\r\n`, `${t}3\r\n$8\r\nsmessage\r\n`, `${t}4\r\n$8\r\npmessage\r\n`]).map((s) => Buffer.from(s));
const LONGEST_HEAD = Math.max(...PUSH_HEADS.map((h) => h.length));
/** Bytes of an argument kept to name the command (names and subcommands are short). */
const NAME_BYTES = 32;

const emptyRole = (): RoleCounts => ({ commands: {}, bytesToRedis: 0, bytesFromRedis: 0, pushedMessages: 0, connections: 0 });

/**
 * Incremental parser of the client → server half of a RESP connection: arrays
 * of bulk strings (what every client library sends) and inline commands.
 * Large arguments (an image, a feature tensor) are skipped, not buffered.
 */
class RequestCounter {
  private mode: 'command' | 'argHeader' | 'argBody' = 'command';
  private line: number[] = [];
  private argsLeft = 0;
  private argIndex = 0;
  private skip = 0;
  private capture: number[] = [];
  private names: string[] = [];
  private bytes = 0;

  constructor(private readonly done: (name: string, bytes: number) => void) {}

  feed(chunk: Buffer): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.mode === 'argBody') {
        const n = Math.min(this.skip, chunk.length - i);
        if (this.argIndex < 2) for (let j = 0; j < n && this.capture.length < NAME_BYTES + 2; j++) this.capture.push(chunk[i + j] ?? 0);
        this.skip -= n;
        this.bytes += n;
        i += n;
        if (this.skip === 0) this.endArg();
        continue;
      }
      // A header line: `*N`, `$len`, or an inline command, up to its LF.
      const lf = chunk.indexOf(10, i);
      const end = lf < 0 ? chunk.length : lf + 1;
      for (let j = i; j < end; j++) this.line.push(chunk[j] ?? 0);
      this.bytes += end - i;
      i = end;
      if (lf >= 0) this.endLine();
    }
  }

  private endLine(): void {
    const text = Buffer.from(this.line).toString('latin1').replace(/\r?\n$/, '');
    this.line = [];
    if (this.mode === 'command') {
      if (text.startsWith('*')) {
        const n = Number(text.slice(1));
        if (n > 0) {
          this.argsLeft = n;
          this.argIndex = 0;
          this.names = [];
          this.mode = 'argHeader';
        } else this.finish('');
      } else if (text.trim() !== '') {
        const words = text.trim().split(/\s+/);
        this.names = words.slice(0, 2);
        this.finish(this.commandName());
      } else this.bytes = 0;
      return;
    }
    // argHeader: `$len`.
    this.skip = Number(text.slice(1)) + 2;
    this.capture = [];
    this.mode = 'argBody';
  }

  private endArg(): void {
    if (this.argIndex < 2) this.names.push(Buffer.from(this.capture.slice(0, Math.max(0, this.capture.length - 2))).toString('latin1'));
    this.argIndex++;
    this.argsLeft--;
    if (this.argsLeft > 0) {
      this.mode = 'argHeader';
      return;
    }
    this.mode = 'command';
    this.finish(this.commandName());
  }

  private commandName(): string {
    const [first = '', second = ''] = this.names.map((n) => n.toLowerCase());
    return CONTAINERS.has(first) && second ? `${first}|${second}` : first;
  }

  private finish(name: string): void {
    this.done(name || '(empty)', this.bytes);
    this.bytes = 0;
  }
}

/** Counts pushed pub/sub messages in the server → client half by their RESP heads, across chunk boundaries. */
class PushCounter {
  private tail = Buffer.alloc(0);

  count(chunk: Buffer): number {
    const buf = this.tail.length ? Buffer.concat([this.tail, chunk]) : chunk;
    let n = 0;
    for (const head of PUSH_HEADS) {
      let at = buf.indexOf(head);
      while (at >= 0) {
        // A head wholly inside the kept tail was counted with the previous chunk.
        if (at + head.length > this.tail.length) n++;
        at = buf.indexOf(head, at + head.length);
      }
    }
    this.tail = Buffer.from(buf.subarray(Math.max(0, buf.length - (LONGEST_HEAD - 1))));
    return n;
  }
}

export class CountingRelay {
  private readonly servers: net.Server[] = [];
  private readonly sockets = new Set<net.Socket>();
  private readonly roles: Record<string, RoleCounts> = {};

  private constructor(
    private readonly host: string,
    private readonly port: number,
  ) {}

  /** A relay to the Redis at `redisUrl` (standalone, no TLS). */
  static to(redisUrl: string): CountingRelay {
    const u = new URL(redisUrl);
    return new CountingRelay(u.hostname, Number(u.port || 6379));
  }

  /** Opens a listening port for `role`; returns the URL the role's process should use as REDIS_URL. */
  async listen(role: string): Promise<string> {
    const counts = (this.roles[role] ??= emptyRole());
    const server = net.createServer((client) => {
      counts.connections++;
      const upstream = net.connect(this.port, this.host);
      client.setNoDelay(true);
      upstream.setNoDelay(true);
      this.sockets.add(client);
      this.sockets.add(upstream);
      // Pushed messages are looked for only once the connection has subscribed to something.
      let subscriber = false;
      const requests = new RequestCounter((name, bytes) => {
        const c = (counts.commands[name] ??= { calls: 0, bytes: 0 });
        c.calls++;
        c.bytes += bytes;
        if (name.endsWith('subscribe')) subscriber = true;
      });
      const pushes = new PushCounter();
      client.on('data', (d: Buffer) => {
        counts.bytesToRedis += d.length;
        requests.feed(d);
      });
      upstream.on('data', (d: Buffer) => {
        counts.bytesFromRedis += d.length;
        if (subscriber) counts.pushedMessages += pushes.count(d);
      });
      client.pipe(upstream);
      upstream.pipe(client);
      const close = (): void => {
        client.destroy();
        upstream.destroy();
        this.sockets.delete(client);
        this.sockets.delete(upstream);
      };
      client.on('error', close);
      upstream.on('error', close);
      client.on('close', close);
      upstream.on('close', close);
    });
    await new Promise<void>((res, rej) => {
      server.once('error', rej);
      server.listen(0, '127.0.0.1', () => res());
    });
    this.servers.push(server);
    const addr = server.address();
    if (!addr || typeof addr === 'string') throw new Error('relay has no port');
    return `redis://127.0.0.1:${addr.port}`;
  }

  /** A deep copy of the counts so far, by role. */
  snapshot(): RelaySnapshot {
    return structuredClone(this.roles);
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await Promise.all(this.servers.map((s) => new Promise((r) => s.close(r))));
  }
}

/** `b - a`, role by role and command by command. */
export function relayDelta(a: RelaySnapshot, b: RelaySnapshot): RelaySnapshot {
  const out: RelaySnapshot = {};
  for (const [role, rb] of Object.entries(b)) {
    const ra = a[role] ?? emptyRole();
    const commands: RoleCounts['commands'] = {};
    for (const [name, c] of Object.entries(rb.commands)) {
      const ca = ra.commands[name] ?? { calls: 0, bytes: 0 };
      if (c.calls - ca.calls !== 0) commands[name] = { calls: c.calls - ca.calls, bytes: c.bytes - ca.bytes };
    }
    out[role] = {
      commands,
      bytesToRedis: rb.bytesToRedis - ra.bytesToRedis,
      bytesFromRedis: rb.bytesFromRedis - ra.bytesFromRedis,
      pushedMessages: rb.pushedMessages - ra.pushedMessages,
      connections: rb.connections - ra.connections,
    };
  }
  return out;
}
