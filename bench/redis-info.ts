/**
 * What Redis reports about itself, for bench:redis: INFO snapshots turned
 * into flat counters (so phases can be subtracted, scaled and solved key by
 * key), and the ceilings of one Redis measured with redis-benchmark.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import net from 'node:net';
import type { Redis } from 'ioredis';
import type { RelaySnapshot } from './resp-relay';

/**
 * Counters by name. Server side (INFO): `srv.calls.<cmd>`, `srv.usec.<cmd>` (commandstats, which in
 * Redis 7 include the commands scripts run), `srv.total` (total_commands_processed), `srv.in`/`srv.out`
 * (total_net_input/output_bytes), `srv.cpu` (main-thread user+sys µs), `srv.mem` (used_memory growth).
 * Client side (the relay): `cli.<role>.calls.<cmd>`, `cli.<role>.bytes.<cmd>`, `cli.<role>.in`/`.out`
 * (bytes to/from Redis), `cli.<role>.pushed` (pub/sub messages delivered). Work: `jobs`, `tokens`.
 */
export type Flat = Record<string, number>;

export interface ServerSnapshot {
  flat: Flat;
  /** used_memory now (a level, not a flow). */
  usedMemory: number;
  /** Bytes of this snapshot's own INFO request and reply on the wire, taken out of the next delta. */
  requestBytes: number;
  replyBytes: number;
}

const INFO_ARGS = ['INFO', 'stats', 'commandstats', 'memory', 'cpu'];
const INFO_REQUEST_BYTES = Buffer.byteLength(`*${INFO_ARGS.length}\r\n${INFO_ARGS.map((a) => `$${a.length}\r\n${a}\r\n`).join('')}`);

/** `redis` must speak RESP2 (`protocol: 2`): the size of its INFO reply on the wire is computed as a RESP2 bulk string. */
export async function serverSnapshot(redis: Redis): Promise<ServerSnapshot> {
  const text = String(await redis.call(...(INFO_ARGS as [string, ...string[]])));
  const field = (name: string): number => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(text)?.[1] ?? NaN);
  const flat: Flat = {
    'srv.total': field('total_commands_processed'),
    'srv.in': field('total_net_input_bytes'),
    'srv.out': field('total_net_output_bytes'),
    'srv.cpu': (field('used_cpu_user_main_thread') + field('used_cpu_sys_main_thread')) * 1e6,
    'srv.mem': field('used_memory'),
  };
  for (const m of text.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) {
    flat[`srv.calls.${m[1]}`] = Number(m[2]);
    flat[`srv.usec.${m[1]}`] = Number(m[3]);
  }
  const len = Buffer.byteLength(text);
  return { flat, usedMemory: field('used_memory'), requestBytes: INFO_REQUEST_BYTES, replyBytes: `$${len}\r\n`.length + len + 2 };
}

/**
 * Server counters from `a` to `b`, less the bench's own INFO: `a`'s call (counted once it finished,
 * so in this delta), `b`'s request bytes (counted when read) and `a`'s reply bytes (counted when sent).
 */
export function serverDelta(a: ServerSnapshot, b: ServerSnapshot): Flat {
  const d = sub(b.flat, a.flat);
  const infoCalls = d['srv.calls.info'] ?? 0;
  if (infoCalls > 0) d['srv.usec.info'] = (d['srv.usec.info'] ?? 0) * ((infoCalls - 1) / infoCalls);
  d['srv.calls.info'] = infoCalls - 1;
  d['srv.total'] = (d['srv.total'] ?? 0) - 1;
  d['srv.in'] = (d['srv.in'] ?? 0) - b.requestBytes;
  d['srv.out'] = (d['srv.out'] ?? 0) - a.replyBytes;
  return d;
}

/** The relay's per-role counts as flat counters. */
export function relayFlat(r: RelaySnapshot): Flat {
  const f: Flat = {};
  for (const [role, c] of Object.entries(r)) {
    f[`cli.${role}.in`] = c.bytesToRedis;
    f[`cli.${role}.out`] = c.bytesFromRedis;
    f[`cli.${role}.pushed`] = c.pushedMessages;
    for (const [name, x] of Object.entries(c.commands)) {
      f[`cli.${role}.calls.${name}`] = x.calls;
      f[`cli.${role}.bytes.${name}`] = x.bytes;
    }
  }
  return f;
}

export function add(a: Flat, b: Flat): Flat {
  const out: Flat = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = (out[k] ?? 0) + v;
  return out;
}

export function sub(a: Flat, b: Flat): Flat {
  const out: Flat = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = (out[k] ?? 0) - v;
  return out;
}

export function scale(a: Flat, f: number): Flat {
  return Object.fromEntries(Object.entries(a).map(([k, v]) => [k, v * f]));
}

/**
 * Solves, counter by counter, `m1 = n1·fixed + k1·perToken` and `m2 = n2·fixed + k2·perToken`
 * for two runs of n jobs producing k tokens: the per-job fixed cost and the per-token cost.
 */
export function solveLinear(m1: Flat, n1: number, k1: number, m2: Flat, n2: number, k2: number): { fixed: Flat; perToken: Flat } {
  const det = n1 * k2 - n2 * k1;
  if (det === 0) throw new Error('the two runs have the same tokens per job: no per-token cost can be told apart');
  const fixed: Flat = {};
  const perToken: Flat = {};
  for (const k of new Set([...Object.keys(m1), ...Object.keys(m2)])) {
    const a = m1[k] ?? 0;
    const b = m2[k] ?? 0;
    fixed[k] = (a * k2 - b * k1) / det;
    perToken[k] = (n1 * b - n2 * a) / det;
  }
  return { fixed, perToken };
}

/** Sum of the counters whose key matches. */
export function total(f: Flat, match: (key: string) => boolean): number {
  let s = 0;
  for (const [k, v] of Object.entries(f)) if (match(k)) s += v;
  return s;
}

/** Commands that run Lua or functions: one call from the client, several commands inside Redis. */
export const SCRIPT_COMMANDS = new Set(['eval', 'evalsha', 'eval_ro', 'evalsha_ro', 'fcall', 'fcall_ro']);
const PUBLISH_COMMANDS = ['publish', 'spublish'];

export interface Summary {
  serverCommands: number;
  clientCommands: number;
  scriptCalls: number;
  publishes: number;
  delivered: number;
  bytesIn: number;
  bytesOut: number;
  relayIn: number;
  relayOut: number;
  cpuUs: number;
  execUs: number;
  memory: number;
}

/** The headline figures of a flat (per job, per token, per second: whatever it was scaled to). */
export function summary(f: Flat): Summary {
  const clientCalls = total(f, (k) => /^cli\.[^.]+\.calls\./.test(k));
  const scriptCalls = total(f, (k) => /^cli\.[^.]+\.calls\./.test(k) && SCRIPT_COMMANDS.has(k.split('.').slice(3).join('.')));
  return {
    serverCommands: f['srv.total'] ?? 0,
    clientCommands: clientCalls,
    scriptCalls,
    publishes: PUBLISH_COMMANDS.reduce((s, c) => s + (f[`srv.calls.${c}`] ?? 0), 0),
    delivered: total(f, (k) => /^cli\.[^.]+\.pushed$/.test(k)),
    bytesIn: f['srv.in'] ?? 0,
    bytesOut: f['srv.out'] ?? 0,
    relayIn: total(f, (k) => /^cli\.[^.]+\.in$/.test(k)),
    relayOut: total(f, (k) => /^cli\.[^.]+\.out$/.test(k)),
    cpuUs: f['srv.cpu'] ?? 0,
    execUs: topLevelExecUs(f),
    memory: f['srv.mem'] ?? 0,
  };
}

/**
 * Microseconds Redis spent executing the clients' own commands (commandstats usec of the top-level
 * calls): all of a script's (its inner commands run within it), and for any other command the share of
 * its usec that its client calls are of all its calls (the rest ran inside scripts, already counted).
 */
export function topLevelExecUs(f: Flat): number {
  let us = 0;
  for (const [k, usec] of Object.entries(f)) {
    if (!k.startsWith('srv.usec.')) continue;
    const cmd = k.slice('srv.usec.'.length);
    if (cmd === 'info') continue;
    if (SCRIPT_COMMANDS.has(cmd)) {
      us += usec;
      continue;
    }
    const server = f[`srv.calls.${cmd}`] ?? 0;
    const client = total(f, (x) => /^cli\.[^.]+\.calls\./.test(x) && x.split('.').slice(3).join('.') === cmd);
    if (server > 0) us += usec * Math.min(1, Math.max(0, client / server));
  }
  return us;
}

export interface WorkerCounters {
  done: number;
  failed: number;
  tokens: number;
  running: number;
}

/** The worker's own counters, read from its /metrics (no Redis involved). */
export async function workerCounters(metricsUrl: string): Promise<WorkerCounters> {
  const text = await (await fetch(metricsUrl)).text();
  const sum = (name: string): number => {
    let s = 0;
    for (const m of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})?\\s+([\\d.eE+-]+)`, 'gm'))) s += Number(m[1]);
    return s;
  };
  return {
    done: sum('fastvlm_request_success_total'),
    failed: sum('fastvlm_jobs_failed_total'),
    tokens: sum('fastvlm_generation_tokens_total'),
    running: sum('fastvlm_jobs_running'),
  };
}

// --- Ceilings: what one Redis does at most, measured with redis-benchmark. ---

/** A token event as the worker appends it (about this size): what the ceiling scripts write and publish. */
export const TOKEN_EVENT = JSON.stringify({ type: 'token', index: 17, text: ' the', attempt: 1 });

/**
 * A script of the token append's shape (not the product's own source, which may change): check the
 * job record's status and attempt, XADD the event to the job's stream, SPUBLISH it on the job's channel.
 * KEYS: record, stream, channel. ARGV: event, attempt.
 */
export const TOKEN_SCRIPT = `
local h = redis.call('HMGET', KEYS[1], 'status', 'attempt')
if h[1] ~= 'running' or h[2] ~= ARGV[2] then return false end
local id = redis.call('XADD', KEYS[2], '*', 'e', ARGV[1])
redis.call('SPUBLISH', KEYS[3], id .. ' ' .. ARGV[1])
return id
`;

export interface Ceiling {
  test: string;
  what: string;
  pipeline: number;
  subscribers: number;
  requests: number;
  /** requests/s redis-benchmark saw (this machine, its client sharing the CPUs). */
  rps: number;
  /** Redis main-thread CPU per request (user+sys, INFO cpu), µs. */
  cpuUsPerOp: number;
  /** Requests per second of main-thread CPU: what one shard does with its one core fully busy. */
  opsPerCpuSecond: number;
  /** commandstats usec per call of the command under test (a script's includes its inner commands). */
  execUsPerOp: number;
  /** Share of one core the main thread used during the run. */
  mainThreadBusy: number;
}

interface CeilingSpec {
  test: string;
  what: string;
  args: string[];
  command: string;
  pipeline: number;
  subscribers: number;
  /** Subscribers use SSUBSCRIBE (the script SPUBLISHes) rather than SUBSCRIBE. */
  sharded?: boolean;
  random?: number;
}

/** Runs redis-benchmark against `port` for each test and reads the server's own CPU and commandstats around it. */
export async function measureCeilings(redis: Redis, port: number, opts: { requests: number; connections: number }): Promise<Ceiling[]> {
  const sha = createHash('sha1').update(TOKEN_SCRIPT).digest('hex');
  await redis.call('SCRIPT', 'LOAD', TOKEN_SCRIPT);
  await redis.hset('ceiling:rec', { status: 'running', attempt: '1' });
  const value = 'v'.repeat(64);
  const specs: CeilingSpec[] = [
    { test: 'PING', what: 'dispatch floor', args: ['PING'], command: 'ping', pipeline: 1, subscribers: 0 },
    { test: 'SET 64 B', what: 'plain write', args: ['SET', 'ceiling:k:__rand_int__', value], command: 'set', pipeline: 1, subscribers: 0, random: 100_000 },
    { test: 'GET', what: 'plain read', args: ['GET', 'ceiling:k:__rand_int__'], command: 'get', pipeline: 1, subscribers: 0, random: 100_000 },
    { test: 'XADD token event', what: 'stream append', args: ['XADD', 'ceiling:s:__rand_int__', '*', 'e', TOKEN_EVENT], command: 'xadd', pipeline: 1, subscribers: 0, random: 10_000 },
    { test: 'PUBLISH, 0 subscribers', what: 'pub/sub', args: ['PUBLISH', 'ceiling:nobody', TOKEN_EVENT], command: 'publish', pipeline: 1, subscribers: 0 },
    { test: 'PUBLISH, 1 subscriber', what: 'pub/sub + delivery', args: ['PUBLISH', 'ceiling:chan', TOKEN_EVENT], command: 'publish', pipeline: 1, subscribers: 1 },
    {
      test: 'EVALSHA token script, 1 subscriber',
      what: 'HMGET + XADD + SPUBLISH',
      args: ['EVALSHA', sha, '3', 'ceiling:rec', 'ceiling:s:__rand_int__', 'ceiling:chan', TOKEN_EVENT, '1'],
      command: 'evalsha',
      sharded: true,
      pipeline: 1,
      subscribers: 1,
      random: 10_000,
    },
    { test: 'SET 64 B, pipelined', what: 'plain write', args: ['SET', 'ceiling:k:__rand_int__', value], command: 'set', pipeline: 16, subscribers: 0, random: 100_000 },
    {
      test: 'EVALSHA token script, pipelined',
      what: 'HMGET + XADD + SPUBLISH',
      args: ['EVALSHA', sha, '3', 'ceiling:rec', 'ceiling:s:__rand_int__', 'ceiling:chan', TOKEN_EVENT, '1'],
      command: 'evalsha',
      sharded: true,
      pipeline: 16,
      subscribers: 1,
      random: 10_000,
    },
  ];
  const out: Ceiling[] = [];
  for (const s of specs) {
    const subs = await Promise.all(Array.from({ length: s.subscribers }, () => sinkSubscriber(port, 'ceiling:chan', s.sharded ?? false)));
    await redis.call('CONFIG', 'RESETSTAT');
    const before = await serverSnapshot(redis);
    const t0 = performance.now();
    const rps = await redisBenchmark(port, s, opts);
    const wallS = (performance.now() - t0) / 1000;
    const after = await serverSnapshot(redis);
    for (const sub of subs) sub.destroy();
    const d = serverDelta(before, after);
    const cpuUs = d['srv.cpu'] ?? 0;
    const calls = d[`srv.calls.${s.command}`] ?? opts.requests;
    out.push({
      test: s.test,
      what: s.what,
      pipeline: s.pipeline,
      subscribers: s.subscribers,
      requests: calls,
      rps,
      cpuUsPerOp: cpuUs / calls,
      opsPerCpuSecond: calls / (cpuUs / 1e6),
      execUsPerOp: (d[`srv.usec.${s.command}`] ?? 0) / calls,
      mainThreadBusy: cpuUs / 1e6 / wallS,
    });
    await redis.call('FLUSHALL');
    await redis.call('SCRIPT', 'LOAD', TOKEN_SCRIPT);
    await redis.hset('ceiling:rec', { status: 'running', attempt: '1' });
  }
  return out;
}

async function redisBenchmark(port: number, s: CeilingSpec, opts: { requests: number; connections: number }): Promise<number> {
  const args = ['-h', '127.0.0.1', '-p', String(port), '-n', String(opts.requests), '-c', String(opts.connections), '-P', String(s.pipeline), '--csv'];
  if (s.random) args.push('-r', String(s.random));
  const child = spawn('redis-benchmark', [...args, ...s.args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((r) => child.on('exit', r));
  const last = out.trim().split('\n').at(-1) ?? '';
  // The test's name (the command line) may itself hold quotes: read the seven figures from the end.
  const rps = Number(/"([\d.]+)"(?:,"[\d.]+"){6}$/.exec(last)?.[1] ?? NaN);
  if (code !== 0 || !Number.isFinite(rps)) throw new Error(`redis-benchmark ${s.test} failed (${code}): ${out.slice(-500)}`);
  return rps;
}

/** A subscriber that reads and drops everything: pub/sub deliveries cost Redis, not this process. */
async function sinkSubscriber(port: number, channel: string, sharded: boolean): Promise<net.Socket> {
  const sock = net.connect(port, '127.0.0.1');
  await new Promise<void>((res, rej) => {
    sock.once('connect', () => res());
    sock.once('error', rej);
  });
  sock.on('data', () => undefined);
  sock.on('error', () => undefined);
  const verb = sharded ? 'SSUBSCRIBE' : 'SUBSCRIBE';
  sock.write(`*2\r\n$${verb.length}\r\n${verb}\r\n$${channel.length}\r\n${channel}\r\n`);
  // The subscription is live once Redis has answered it.
  await new Promise((r) => setTimeout(r, 50));
  return sock;
}

export interface KeyMemory {
  keys: number;
  /** Keys with a TTL: Σ MEMORY USAGE × TTL (byte-seconds), streams apart. */
  byteSecondsStreams: number;
  byteSecondsOther: number;
  /** Bytes now held by keys with a TTL, streams apart, and by keys without one (bounded by count, not time). */
  bytesStreams: number;
  bytesOther: number;
  bytesNoTtl: number;
  streamEntries: number;
  streams: number;
  /** The longest stream (a job of the most tokens): the model for `streamBytesAt`. */
  longestStream: string | null;
  longestStreamLength: number;
  /** Mean TTL of the streams, seconds. */
  streamTtlS: number;
  /** Bytes by TTL: none, ≤ 1 h, ≤ 1 day, longer. */
  byTtl: Record<string, number>;
}

/**
 * What the keys the run left hold, without knowing their names: every key's MEMORY USAGE (exact:
 * SAMPLES 0), TYPE and PTTL, and XLEN for streams. Keys were written minutes ago, so a key's PTTL is
 * about its whole lifetime, and memory × TTL is what one more job of the same kind keeps on a shard.
 */
export async function keyMemory(redis: Redis): Promise<KeyMemory> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'COUNT', 1000);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  const m: KeyMemory = {
    keys: keys.length,
    byteSecondsStreams: 0,
    byteSecondsOther: 0,
    bytesStreams: 0,
    bytesOther: 0,
    bytesNoTtl: 0,
    streamEntries: 0,
    streams: 0,
    longestStream: null,
    longestStreamLength: 0,
    streamTtlS: 0,
    byTtl: { none: 0, '≤ 1 h': 0, '≤ 1 day': 0, '> 1 day': 0 },
  };
  let ttlSum = 0;
  for (let i = 0; i < keys.length; i += 500) {
    const batch = keys.slice(i, i + 500);
    const p = redis.pipeline();
    for (const k of batch) p.call('MEMORY', 'USAGE', k, 'SAMPLES', '0').type(k).pttl(k);
    const replies = (await p.exec()) ?? [];
    const streamKeys: { key: string; bytes: number; ttl: number }[] = [];
    batch.forEach((key, j) => {
      const bytes = Number(replies[3 * j]?.[1] ?? 0);
      const type = replies[3 * j + 1]?.[1];
      const pttl = Number(replies[3 * j + 2]?.[1] ?? -2);
      if (pttl === -2) return;
      const ttl = pttl / 1000;
      const bucket = pttl < 0 ? 'none' : ttl <= 3600 ? '≤ 1 h' : ttl <= 86_400 ? '≤ 1 day' : '> 1 day';
      m.byTtl[bucket] = (m.byTtl[bucket] ?? 0) + bytes;
      if (pttl < 0) m.bytesNoTtl += bytes;
      else if (type === 'stream') {
        m.bytesStreams += bytes;
        m.byteSecondsStreams += bytes * ttl;
        streamKeys.push({ key, bytes, ttl });
      } else {
        m.bytesOther += bytes;
        m.byteSecondsOther += bytes * ttl;
      }
    });
    const lens = await Promise.all(streamKeys.map((s) => redis.xlen(s.key)));
    streamKeys.forEach((s, j) => {
      const len = lens[j] ?? 0;
      ttlSum += s.ttl;
      m.streams++;
      m.streamEntries += len;
      if (len > m.longestStreamLength) [m.longestStream, m.longestStreamLength] = [s.key, len];
    });
  }
  if (m.streams > 0) m.streamTtlS = ttlSum / m.streams;
  return m;
}

/**
 * MEMORY USAGE of a stream like `source` grown to `entries` entries, by appending the source's own
 * entries over again to a scratch stream. Stream memory is not linear in its entries (Redis 7 allocates
 * a listpack node of stream-node-max-bytes at once), so a job of more tokens is measured, not extrapolated.
 */
export async function streamBytesAt(redis: Redis, source: string, entries: number): Promise<number> {
  const model = await redis.xrange(source, '-', '+');
  if (model.length === 0) return 0;
  const probe = `bench:stream-probe:${source.length}`;
  await redis.del(probe);
  for (let i = 0; i < entries; i += 500) {
    const p = redis.pipeline();
    for (let j = i; j < Math.min(entries, i + 500); j++) p.xadd(probe, '*', ...(model[j % model.length]?.[1] ?? ['e', '']));
    await p.exec();
  }
  const bytes = Number(await redis.call('MEMORY', 'USAGE', probe, 'SAMPLES', '0'));
  await redis.del(probe);
  return bytes;
}
