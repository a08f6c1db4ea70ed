/**
 * bench:redis — the Redis operations and bytes one job and one token cost,
 * and from them what one Redis shard carries (issue 12).
 *
 * `npm run bench:redis -- [--jobs N] [--follow M] [--t1 8] [--t2 64] [--json out.json]`
 *
 * A private redis-server on a free port (no persistence: AOF switched off,
 * no RDB snapshots), the built gateway and one built worker (tiny-random
 * model) on it, each through a counting relay (bench/resp-relay.ts) that
 * sees the commands the clients send. Phases, each the difference of INFO
 * (commandstats, stats, memory, cpu) and of the relay's counts before and
 * after, less the idle rate over the phase's duration:
 *
 * 1. idle: the gateway alone, then gateway + worker (heartbeats, pollers);
 * 2. admission: N async jobs (POST /v1/jobs) with the worker stopped (SIGSTOP);
 * 3. execution: the worker (SIGCONT) runs them, once with max_tokens T1 and
 *    once with T2: the per-job fixed cost and the per-token cost are the
 *    solution of the two runs' equations (temperature 0, a distinct question
 *    and image per job, so the answer cache never serves one);
 * 4. sync and streamed chat completions at T1 and T2: the same with the
 *    gateway following the job's events.
 *
 * Then the ceilings of this Redis, measured with redis-benchmark, and the
 * capacity of a shard and the shards a fleet needs.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import sharp from 'sharp';
import { generateModel } from '../libs/pipeline/src/generator/index';
import { startGatewayProcess, stopProcess } from '../test/support/processes';
import { PrivateRedis, freePort } from '../test/support/redis-server';
import { chatBody } from '../test/support/requests';
import { streamSse } from '../test/support/sse-client';
import { ROOT, startWorker, testCacheDir, uniquePrefix, type WorkerProcess } from '../test/support/stack';
import {
  add,
  keyMemory,
  measureCeilings,
  streamBytesAt,
  relayFlat,
  scale,
  serverDelta,
  serverSnapshot,
  solveLinear,
  sub,
  summary,
  topLevelExecUs,
  workerCounters,
  type Ceiling,
  type Flat,
  type KeyMemory,
  type ServerSnapshot,
  type WorkerCounters,
} from './redis-info';
import { CountingRelay, relayDelta, type RelaySnapshot } from './resp-relay';
import { runLoad, table } from './stats';
import { runMain } from './run-main';
import { NO_LIMITS } from './limits';

const { values: args } = parseArgs({
  options: {
    jobs: { type: 'string', default: '160' },
    follow: { type: 'string', default: '50' },
    t1: { type: 'string', default: '8' },
    t2: { type: 'string', default: '48' },
    concurrency: { type: 'string', default: '8' },
    'idle-s': { type: 'string', default: '10' },
    'image-px': { type: 'string', default: '64' },
    'ceiling-requests': { type: 'string', default: '50000' },
    gpus: { type: 'string', default: '1000' },
    'gpu-tokens-per-s': { type: 'string', default: '100' },
    'tokens-per-job': { type: 'string', default: '100' },
    gateways: { type: 'string', default: '10' },
    utilisation: { type: 'string', default: '0.5' },
    'shard-memory-gib': { type: 'string', default: '25' },
    json: { type: 'string' },
  },
  allowPositionals: false,
});
const N = Number(args.jobs);
const NF = Number(args.follow);
const T1 = Number(args.t1);
const T2 = Number(args.t2);
const C = Number(args.concurrency);
const IDLE_S = Number(args['idle-s']);
const IMAGE_PX = Number(args['image-px']);
const CEILING_REQUESTS = Number(args['ceiling-requests']);
const FLEET = {
  gpus: Number(args.gpus),
  gpuTokensPerS: Number(args['gpu-tokens-per-s']),
  tokensPerJob: Number(args['tokens-per-job']),
  gateways: Number(args.gateways),
  utilisation: Number(args.utilisation),
  shardMemoryGiB: Number(args['shard-memory-gib']),
};
if (![N, NF, T1, T2, C, IDLE_S, IMAGE_PX, CEILING_REQUESTS, ...Object.values(FLEET)].every((x) => Number.isFinite(x) && x > 0) || T1 === T2) {
  console.error('usage: npm run bench:redis -- [--jobs N] [--follow M] [--t1 T] [--t2 T] [--concurrency C] [--idle-s S] [--image-px P] [--json FILE]');
  process.exit(2);
}
const RUN = randomBytes(3).toString('hex');

interface Mark {
  at: number;
  server: ServerSnapshot;
  relay: RelaySnapshot;
}

interface Phase {
  name: string;
  seconds: number;
  jobs: number;
  tokens: number;
  /** Counters over the phase, less the idle rate over its duration. */
  net: Flat;
}

/** What to stop, newest first, whether the run ends normally or not. */
const cleanups: (() => Promise<void>)[] = [];

async function main(): Promise<void> {
  execFileSync(process.execPath, [join(ROOT, 'scripts', 'build.mjs'), 'gateway', 'worker'], { cwd: ROOT, stdio: 'inherit' });
  const modelDir = join(testCacheDir(), 'tiny-random');
  if (!existsSync(join(modelDir, 'config.json'))) await generateModel({ preset: 'tiny', outDir: modelDir, seed: 0 });

  const server = await PrivateRedis.start();
  cleanups.push(() => server.dispose());
  // The bench's own connection: INFO only while a phase runs, straight to Redis (not through the relay).
  const redis = new Redis(server.url, { protocol: 2 });
  cleanups.push(() => Promise.resolve(redis.disconnect()));
  await redis.call('CONFIG', 'SET', 'appendonly', 'no');
  const version = /redis_version:(\S+)/.exec(await redis.info('server'))?.[1] ?? '?';
  const calibration = await calibrate(redis);

  const prefix = uniquePrefix();
  const key = createApiKey(server.url, prefix);
  const relay = CountingRelay.to(server.url);
  cleanups.push(() => relay.close());
  const gateway = await startGatewayProcess(prefix, await relay.listen('gateway'), { ...NO_LIMITS, LOG_LEVEL: 'warn' });
  cleanups.push(async () => void (await stopProcess(gateway, 'SIGKILL')));

  const mark = async (): Promise<Mark> => ({ at: performance.now(), server: await serverSnapshot(redis), relay: relay.snapshot() });
  const between = (a: Mark, b: Mark): { seconds: number; flat: Flat } => ({
    seconds: (b.at - a.at) / 1000,
    flat: add(serverDelta(a.server, b.server), relayFlat(relayDelta(a.relay, b.relay))),
  });
  const idle = async (): Promise<Flat> => {
    const a = await mark();
    await sleep(IDLE_S * 1000);
    const { seconds, flat } = between(a, await mark());
    return scale(flat, 1 / seconds);
  };
  /** Waits until the relay has passed no command for `quietMs` (the apps finished what the phase started). */
  const quiet = async (quietMs = 300, maxMs = 5000): Promise<void> => {
    const count = (): number => Object.values(relay.snapshot()).reduce((s, r) => s + Object.values(r.commands).reduce((t, c) => t + c.calls, 0), 0);
    const deadline = Date.now() + maxMs;
    let last = count();
    let since = Date.now();
    while (Date.now() < deadline) {
      await sleep(50);
      const now = count();
      if (now !== last) [last, since] = [now, Date.now()];
      else if (Date.now() - since >= quietMs) return;
    }
  };

  console.log(`bench:redis — Redis ${version}, ${cpus().length} CPUs (${cpus()[0]?.model ?? 'unknown'}), loopback; ${N} async jobs per run, ${NF} sync and ${NF} streamed per run, max_tokens ${T1} and ${T2}, ${C} in flight`);
  console.log('phase: idle, gateway alone');
  const idleGateway = await idle();

  const metricsPort = await freePort();
  const metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
  const worker = await startWorker(prefix, { WORKER_HTTP_PORT: String(metricsPort), FASTVLM_THREADS: '1' }, await relay.listen('worker'));
  cleanups.push(async () => {
    worker.child.kill('SIGCONT');
    await stopProcess(worker, 'SIGKILL');
  });

  const post = (path: string, body: unknown): Promise<Response> =>
    fetch(`${gateway.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` }, body: JSON.stringify(body) });
  let q = 0;
  let imageBytes = 0;
  const bodies = async (n: number, maxTokens: number, extra: Record<string, unknown> = {}): Promise<Record<string, unknown>[]> =>
    Promise.all(Array.from({ length: n }, async () => {
      const i = q++;
      const image = await noisePng(IMAGE_PX, i);
      imageBytes += image.length;
      return chatBody(image, `redis bench ${RUN} question ${i}`, { max_tokens: maxTokens, temperature: 0, ...extra });
    }));
  const submit = async (list: Record<string, unknown>[]): Promise<void> => {
    await runLoad(list.length, C, async (i) => {
      const res = await post('/v1/jobs', list[i]);
      if (res.status !== 202) throw new Error(`POST /v1/jobs: ${res.status} ${await res.text()}`);
      await res.arrayBuffer();
    });
  };
  const waitDone = async (from: WorkerCounters, n: number): Promise<WorkerCounters> => {
    for (;;) {
      const w = await workerCounters(metricsUrl);
      if (w.failed > from.failed) throw new Error(`${w.failed - from.failed} jobs failed`);
      if (w.done - from.done >= n && w.running === 0) return w;
      await sleep(100);
    }
  };

  // Warm-up: scripts loaded, connections open, JIT warm, on every path the phases take.
  console.log('warm-up');
  const before = await workerCounters(metricsUrl);
  await submit(await bodies(4, T1));
  await waitDone(before, 4);
  await runLoad(3, 3, async (i) => void (await syncCall(post, (await bodies(1, T1))[0], i)));
  await runLoad(3, 3, async () => void (await streamCall(post, (await bodies(1, T1, { stream: true }))[0])));
  await quiet();
  console.log('phase: idle, gateway + worker');
  const idleBoth = await idle();

  const phases: Phase[] = [];
  const record = (name: string, a: Mark, b: Mark, idleRate: Flat, jobs: number, tokens: number): Phase => {
    const { seconds, flat } = between(a, b);
    // used_memory is a level that idle time moves both ways (expiries, buffers): not a rate to subtract.
    const p = { name, seconds, jobs, tokens, net: { ...sub(flat, scale({ ...idleRate, 'srv.mem': 0 }, seconds)), jobs, tokens } };
    phases.push(p);
    return p;
  };

  const admission: Phase[] = [];
  const execution: Phase[] = [];
  for (const t of [T1, T2]) {
    const list = await bodies(N, t);
    const counters = await workerCounters(metricsUrl);
    worker.child.kill('SIGSTOP');
    console.log(`phase: admission of ${N} jobs (max_tokens ${t}), worker stopped`);
    const a = await mark();
    await submit(list);
    await quiet();
    const b = await mark();
    admission.push(record(`admission (max_tokens ${t})`, a, b, idleGateway, N, 0));
    console.log(`phase: execution of ${N} jobs, max_tokens ${t}`);
    const c = await mark();
    worker.child.kill('SIGCONT');
    const after = await waitDone(counters, N);
    await quiet();
    const d = await mark();
    execution.push(record(`execution (max_tokens ${t})`, c, d, idleBoth, N, after.tokens - counters.tokens));
  }

  const follow = async (kind: 'sync' | 'stream'): Promise<Phase[]> => {
    const out: Phase[] = [];
    for (const t of [T1, T2]) {
      const list = await bodies(NF, t, kind === 'stream' ? { stream: true } : {});
      console.log(`phase: ${NF} ${kind} chat completions, max_tokens ${t}`);
      const from = await workerCounters(metricsUrl);
      const a = await mark();
      await runLoad(NF, C, async (i) => void (kind === 'sync' ? await syncCall(post, list[i], i) : await streamCall(post, list[i])));
      const w = await waitDone(from, NF);
      await quiet();
      const b = await mark();
      out.push(record(`${kind} (max_tokens ${t})`, a, b, idleBoth, NF, w.tokens - from.tokens));
    }
    return out;
  };
  const syncRuns = await follow('sync');
  const streamRuns = await follow('stream');
  const end = await workerCounters(metricsUrl);

  await Promise.all([stopProcess(gateway, 'SIGTERM'), stopWorker(worker)]);
  await relay.close();
  console.log(`memory: MEMORY USAGE, TYPE and PTTL of every key the ${end.done} jobs left`);
  const held = await keyMemory(redis);
  // The longest stream is a job of T2 tokens: its other entries (queued, started, the result…) are the rest.
  const otherEntries = Math.max(0, held.longestStreamLength - T2);
  const streamAt = async (tokens: number): Promise<number> => (held.longestStream ? streamBytesAt(redis, held.longestStream, tokens + otherEntries) : 0);
  const memory = {
    ...held,
    jobs: end.done,
    tokens: end.tokens,
    otherEntries,
    streamBytes: { [T1]: await streamAt(T1), [T2]: await streamAt(T2), [FLEET.tokensPerJob]: await streamAt(FLEET.tokensPerJob) },
  };
  console.log(`ceilings: redis-benchmark, ${CEILING_REQUESTS} requests per test, 50 connections`);
  await redis.call('FLUSHALL');
  const ceilings = await measureCeilings(redis, server.port, { requests: CEILING_REQUESTS, connections: 50 });

  report({ version, calibration, idleGateway, idleBoth, phases, admission, execution, syncRuns, streamRuns, ceilings, memory, imageBytes: imageBytes / q });
}

// --- The figures. ---

interface Results {
  version: string;
  calibration: Calibration;
  idleGateway: Flat;
  idleBoth: Flat;
  phases: Phase[];
  admission: Phase[];
  execution: Phase[];
  syncRuns: Phase[];
  streamRuns: Phase[];
  ceilings: Ceiling[];
  /** Mean size of the PNGs sent. */
  imageBytes: number;
  memory: KeyMemory & { jobs: number; tokens: number; otherEntries: number; streamBytes: Record<number, number> };
}

function report(r: Results): void {
  const [ex1, ex2] = r.execution;
  const [sy1, sy2] = r.syncRuns;
  const [st1, st2] = r.streamRuns;
  if (!ex1 || !ex2 || !sy1 || !sy2 || !st1 || !st2) throw new Error('missing phases');
  const admit = scale(r.admission.reduce((s, p) => add(s, p.net), {}), 1 / r.admission.reduce((s, p) => s + p.jobs, 0));
  const exec = solveLinear(ex1.net, ex1.jobs, ex1.tokens, ex2.net, ex2.jobs, ex2.tokens);
  const sync = solveLinear(sy1.net, sy1.jobs, sy1.tokens, sy2.net, sy2.jobs, sy2.tokens);
  const stream = solveLinear(st1.net, st1.jobs, st1.tokens, st2.net, st2.jobs, st2.tokens);
  const asyncJob = add(admit, exec.fixed);
  const idleWorker = sub(r.idleBoth, r.idleGateway);
  const units: [string, Flat][] = [
    ['admission, per job (POST /v1/jobs)', admit],
    ['execution, per job (fixed)', exec.fixed],
    ['async job, per job (fixed: admission + execution)', asyncJob],
    ['async, per token', exec.perToken],
    ['sync request, per request (fixed)', sync.fixed],
    ['sync, per token', sync.perToken],
    ['streamed request, per request (fixed)', stream.fixed],
    ['streamed, per token', stream.perToken],
    ['idle gateway, per second', r.idleGateway],
    ['idle worker, per second', idleWorker],
  ];

  const fmt = (x: number): number => (Math.abs(x) >= 100 ? Math.round(x) : Math.round(x * 100) / 100);
  const summaryRow = (label: string, f: Flat, per: number): Record<string, string | number> => {
    const s = summary(scale(f, 1 / per));
    return {
      '': label,
      'srv cmds': fmt(s.serverCommands),
      'client cmds': fmt(s.clientCommands),
      'script calls': fmt(s.scriptCalls),
      publishes: fmt(s.publishes),
      delivered: fmt(s.delivered),
      'bytes in': fmt(s.bytesIn),
      'bytes out': fmt(s.bytesOut),
      'CPU µs': fmt(s.cpuUs),
      'exec µs': fmt(s.execUs),
      'memory B': fmt(s.memory),
    };
  };
  console.log(`\nmachine: ${cpus().length} CPUs (${cpus()[0]?.model ?? 'unknown'}), ${Math.round(totalmem() / 2 ** 30)} GiB, loopback TCP; Redis ${r.version}, one private redis-server, no persistence`);
  console.log(
    `calibration: one EVAL running ${r.calibration.innerCommands} commands moved total_commands_processed by ${r.calibration.totalCommandsDelta} and commandstats by ${r.calibration.commandstatsDelta}: ` +
      `${r.calibration.totalCountsInner ? 'total_commands_processed counts the commands run inside scripts' : 'total_commands_processed counts only client commands'}, ` +
      `${r.calibration.commandstatsCountsInner ? 'and commandstats lists them under their own names' : 'commandstats does not list them'}.`,
  );
  console.log(
    '\nsrv cmds: commands Redis ran (total_commands_processed; includes those inside scripts). client cmds: commands the clients sent (the relay; an EVALSHA is one).\n' +
      'publishes: PUBLISH/SPUBLISH calls (commandstats). delivered: pub/sub messages pushed to subscribers (the relay). bytes in/out: total_net_input/output_bytes.\n' +
      'CPU µs: Redis main-thread CPU (INFO cpu). exec µs: commandstats usec of the client commands (a script includes its inner commands). memory B: used_memory growth.\n',
  );
  const all = r.phases.reduce((f, p) => add(f, p.net), {});
  const whole = summary(all);
  console.log(
    `cross-check over all phases: INFO counted ${fmt(whole.bytesIn / 1e6)} MB in / ${fmt(whole.bytesOut / 1e6)} MB out, the relay ${fmt(whole.relayIn / 1e6)} / ${fmt(whole.relayOut / 1e6)} MB ` +
      `(INFO's figures less the bench's own INFO traffic; the two should agree, the relay seeing every byte the apps exchange with Redis)\n`,
  );
  console.log('phases, per job (idle rate subtracted)');
  console.log(table(r.phases.map((p) => ({ ...summaryRow(p.name, p.net, p.jobs), tokens: p.tokens, seconds: fmt(p.seconds) }))));
  console.log('\nper unit (admission averaged over both runs; fixed and per-token costs solved from the two max_tokens runs)');
  console.log(table(units.map(([label, f]) => summaryRow(label, f, 1))));
  console.log("(the idle rows' CPU is mostly Redis's own timers, whoever is connected; the fleet figures below price idle processes by their commands)");

  // Commands by name: Redis's count (commandstats) and the clients' (relay), per unit.
  const cols: [string, Flat][] = [
    ['admission/job', admit],
    ['exec/job', exec.fixed],
    ['async/token', exec.perToken],
    ['sync/request', sync.fixed],
    ['sync/token', sync.perToken],
  ];
  const names = new Set<string>();
  for (const [, f] of cols) for (const k of Object.keys(f)) if (k.startsWith('srv.calls.') && k !== 'srv.calls.info') names.add(k.slice(10));
  const clientCalls = (f: Flat, cmd: string): number => Object.entries(f).reduce((s, [k, v]) => (/^cli\.[^.]+\.calls\./.test(k) && k.split('.').slice(3).join('.') === cmd ? s + v : s), 0);
  const weight = (cmd: string): number => cols.reduce((s, [, f]) => s + Math.abs(f[`srv.calls.${cmd}`] ?? 0) + Math.abs(clientCalls(f, cmd)), 0);
  const top = [...names].sort((a, b) => weight(b) - weight(a)).filter((c) => weight(c) >= 0.05).slice(0, 16);
  console.log('\ncommands by name, "Redis / clients" (commandstats calls / relay calls); rows with at least 0.05 in some column');
  console.log(table(top.map((cmd) => ({ command: cmd, ...Object.fromEntries(cols.map(([l, f]) => [l, `${fmt(f[`srv.calls.${cmd}`] ?? 0)} / ${fmt(clientCalls(f, cmd))}`])) }))));

  // Ceilings and the cost model.
  console.log('\nceilings (redis-benchmark, 50 connections; ops per CPU-second = requests ÷ Redis main-thread CPU seconds, i.e. one shard with its core fully busy)');
  console.log(
    table(
      r.ceilings.map((c) => ({
        test: c.test,
        pipeline: c.pipeline,
        'rps here': Math.round(c.rps),
        'main thread busy': `${Math.round(c.mainThreadBusy * 100)}%`,
        'CPU µs/op': fmt(c.cpuUsPerOp),
        'exec µs/op': fmt(c.execUsPerOp),
        'ops per CPU-s': Math.round(c.opsPerCpuSecond),
      })),
    ),
  );
  const find = (test: string): Ceiling => {
    const c = r.ceilings.find((x) => x.test === test);
    if (!c) throw new Error(`no ceiling ${test}`);
    return c;
  };
  const ping = find('PING');
  const pub0 = find('PUBLISH, 0 subscribers');
  const pub1 = find('PUBLISH, 1 subscriber');
  const script = find('EVALSHA token script, 1 subscriber');
  const tDispatch = ping.cpuUsPerOp - ping.execUsPerOp;
  const tDeliver = Math.max(0, pub1.cpuUsPerOp - pub1.execUsPerOp - (pub0.cpuUsPerOp - pub0.execUsPerOp));
  const validation = r.ceilings
    .filter((c) => c.pipeline === 1 && c.test !== 'PING')
    .map((c) => {
      const predicted = tDispatch + c.execUsPerOp + c.subscribers * tDeliver;
      return { test: c.test, 'measured CPU µs/op': fmt(c.cpuUsPerOp), 'model µs/op': fmt(predicted), 'model/measured': fmt(predicted / c.cpuUsPerOp) };
    });
  console.log(`\ncost model: µs of Redis main thread = client commands × ${fmt(tDispatch)} µs (dispatch: PING's CPU/op less its exec) + exec µs (commandstats) + delivered messages × ${fmt(tDeliver)} µs (PUBLISH to 1 subscriber less to none)`);
  console.log(table(validation));
  const modelUs = (f: Flat): number => {
    const s = summary(f);
    return s.clientCommands * tDispatch + topLevelExecUs(f) + s.delivered * tDeliver;
  };

  // Capacity of one shard and the fleet example.
  const fleetTokensPerS = FLEET.gpus * FLEET.gpuTokensPerS;
  const fleetJobsPerS = fleetTokensPerS / FLEET.tokensPerJob;
  const mixes: { mix: string; job: Flat; token: Flat }[] = [
    { mix: 'async (no follower)', job: asyncJob, token: exec.perToken },
    { mix: 'sync', job: sync.fixed, token: sync.perToken },
    { mix: 'streamed', job: stream.fixed, token: stream.perToken },
  ];
  const capacity = mixes.map(({ mix, job, token }) => {
    const perTokenModel = modelUs(token);
    const perJobModel = modelUs(job);
    const perTokenCpu = summary(token).cpuUs;
    const perJobCpu = summary(job).cpuUs;
    // Idle processes by the model in both columns: the idle windows' CPU is mostly Redis's own timers, not theirs.
    const idleModel = FLEET.gpus * modelUs(idleWorker) + FLEET.gateways * modelUs(r.idleGateway);
    const loadModel = fleetTokensPerS * perTokenModel + fleetJobsPerS * perJobModel + idleModel;
    const loadCpu = fleetTokensPerS * perTokenCpu + fleetJobsPerS * perJobCpu + idleModel;
    return {
      mix,
      perTokenModelUs: perTokenModel,
      perJobModelUs: perJobModel,
      perTokenCpuUs: perTokenCpu,
      perJobCpuUs: perJobCpu,
      tokensPerShardModel: 1e6 / perTokenModel,
      jobsPerShardModel: 1e6 / perJobModel,
      tokensPerShardCpu: 1e6 / perTokenCpu,
      jobsPerShardCpu: 1e6 / perJobCpu,
      fleetLoadCoresModel: loadModel / 1e6,
      fleetLoadCoresCpu: loadCpu / 1e6,
      shardsModel: Math.ceil(loadModel / 1e6 / FLEET.utilisation),
      shardsCpu: Math.ceil(loadCpu / 1e6 / FLEET.utilisation),
    };
  });
  console.log(
    `\ncapacity of one shard (its main thread 100% busy) and the fleet example: ${FLEET.gpus} GPUs × ${FLEET.gpuTokensPerS} tokens/s = ${fleetTokensPerS} tokens/s, ` +
      `${FLEET.tokensPerJob} tokens per job = ${fleetJobsPerS} jobs/s, plus the idle traffic of ${FLEET.gpus} workers and ${FLEET.gateways} gateways; shards = ⌈load ÷ ${FLEET.utilisation}⌉ (load in busy cores)`,
  );
  console.log('  model: saturation cost model above; run CPU: Redis main-thread CPU measured in the phases (low load, so dearer per op)');
  console.log(
    table(
      capacity.map((c) => ({
        mix: c.mix,
        'µs/token model|run': `${fmt(c.perTokenModelUs)} | ${fmt(c.perTokenCpuUs)}`,
        'µs/job model|run': `${fmt(c.perJobModelUs)} | ${fmt(c.perJobCpuUs)}`,
        'tokens/s/shard model|run': `${Math.round(c.tokensPerShardModel)} | ${Math.round(c.tokensPerShardCpu)}`,
        'jobs/s/shard model|run': `${Math.round(c.jobsPerShardModel)} | ${Math.round(c.jobsPerShardCpu)}`,
        'fleet load cores model|run': `${fmt(c.fleetLoadCoresModel)} | ${fmt(c.fleetLoadCoresCpu)}`,
        [`shards @${FLEET.utilisation} model|run`]: `${c.shardsModel} | ${c.shardsCpu}`,
      })),
    ),
  );
  const scriptPerToken = summary(exec.perToken).scriptCalls;
  const simpleTokensPerShard = script.opsPerCpuSecond / summary(exec.perToken).clientCommands;
  console.log(
    `\nthe issue's simple form: tokens/s per shard = ceiling ÷ ops per token = ${Math.round(script.opsPerCpuSecond)} token-script EVALSHA per CPU-second ÷ ${fmt(summary(exec.perToken).clientCommands)} client commands per token ` +
      `(${fmt(scriptPerToken)} of them script calls) = ${Math.round(simpleTokensPerShard)} tokens/s; ${fleetTokensPerS} tokens/s need ⌈${fleetTokensPerS} ÷ (${Math.round(simpleTokensPerShard)} × ${FLEET.utilisation})⌉ = ${Math.ceil(fleetTokensPerS / (simpleTokensPerShard * FLEET.utilisation))} shards for the tokens alone`,
  );
  // Memory: what the keys hold for as long as they live; streams measured at the fleet's tokens per job.
  const m = r.memory;
  const fleetStreamBytes = m.streamBytes[FLEET.tokensPerJob] ?? 0;
  const otherByteSecondsPerJob = m.byteSecondsOther / m.jobs;
  const jobByteSeconds = otherByteSecondsPerJob + fleetStreamBytes * m.streamTtlS;
  const fleetBytes = fleetJobsPerS * jobByteSeconds;
  const memoryShards = Math.ceil(fleetBytes / (FLEET.shardMemoryGiB * 2 ** 30));
  const gib = (b: number): number => fmt(b / 2 ** 30);
  console.log(
    `\nmemory held (MEMORY USAGE of every key after ${m.jobs} jobs of ${fmt(m.tokens / m.jobs)} tokens on average, ${IMAGE_PX}×${IMAGE_PX} noise PNGs of ${fmt(r.imageBytes)} B; ` +
      `a key's PTTL now ≈ its lifetime): ${m.keys} keys; per job by TTL: ${Object.entries(m.byTtl).map(([k, v]) => `${k} ${fmt(v / m.jobs)} B`).join(', ')}`,
  );
  console.log(
    `  event streams: ${m.streams}, mean TTL ${Math.round(m.streamTtlS)} s, ${fmt(m.bytesStreams / m.streams)} B for ${fmt(m.streamEntries / m.streams)} entries on average; a stream like the longest ` +
      `(${m.otherEntries} entries besides tokens) holds ${Object.entries(m.streamBytes).map(([t, b]) => `${b} B at ${t} tokens`).join(', ')}`,
  );
  console.log(
    `  kept per job at ${FLEET.tokensPerJob} tokens: ${fmt(otherByteSecondsPerJob / 1e6)} MB·s (other keys, memory × TTL) + ${fleetStreamBytes} B × ${Math.round(m.streamTtlS)} s (stream) = ${fmt(jobByteSeconds / 1e6)} MB·s; ` +
      `fleet: ${fleetJobsPerS} jobs/s × ${fmt(jobByteSeconds / 1e6)} MB·s = ${gib(fleetBytes)} GiB at steady state → ⌈÷ ${FLEET.shardMemoryGiB} GiB per shard⌉ = ${memoryShards} shards by memory; ` +
      `keys without a TTL (bounded by count): ${fmt(m.bytesNoTtl / 2 ** 20)} MiB now`,
  );
  const cpuShards = capacity.find((c) => c.mix === 'streamed');
  console.log(
    `  shards for the fleet (streamed mix) = max(CPU ${cpuShards?.shardsModel ?? '?'}–${cpuShards?.shardsCpu ?? '?'}, memory ${memoryShards}) = ${Math.max(cpuShards?.shardsCpu ?? 0, memoryShards)}`,
  );

  const round = (f: Flat): Record<string, number> => Object.fromEntries(Object.entries(f).filter(([, v]) => Math.abs(v) > 1e-9).map(([k, v]) => [k, Math.round(v * 1000) / 1000]));
  const json = {
    bench: 'redis',
    machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', memoryGiB: Math.round(totalmem() / 2 ** 30), network: 'loopback', redis: r.version, persistence: 'none' },
    settings: { jobs: N, follow: NF, t1: T1, t2: T2, concurrency: C, idleSeconds: IDLE_S, imagePx: IMAGE_PX, ceilingRequests: CEILING_REQUESTS, fleet: FLEET },
    calibration: r.calibration,
    phases: r.phases.map((p) => ({ name: p.name, seconds: p.seconds, jobs: p.jobs, tokens: p.tokens, perJob: summary(scale(p.net, 1 / p.jobs)) })),
    units: Object.fromEntries(units.map(([label, f]) => [label, { summary: summary(f), counters: round(f) }])),
    ceilings: r.ceilings,
    model: { dispatchUs: tDispatch, deliverUs: tDeliver, validation },
    capacity,
    simple: { scriptCeilingOpsPerCpuSecond: script.opsPerCpuSecond, clientCommandsPerToken: summary(exec.perToken).clientCommands, tokensPerShard: simpleTokensPerShard },
    memory: { ...r.memory, imageBytes: r.imageBytes, otherByteSecondsPerJob, jobByteSeconds, fleetBytes, memoryShards },
  };
  if (args.json) writeFileSync(args.json, `${JSON.stringify(json, null, 2)}\n`);
}

// --- Helpers. ---

interface Calibration {
  innerCommands: number;
  totalCommandsDelta: number;
  commandstatsDelta: number;
  totalCountsInner: boolean;
  commandstatsCountsInner: boolean;
}

/** Runs one EVAL of three commands and sees how Redis counts it: the answer decides what "commands" means in the tables. */
async function calibrate(redis: Redis): Promise<Calibration> {
  const a = await serverSnapshot(redis);
  await redis.eval("redis.call('SET', KEYS[1], '1'); redis.call('INCR', KEYS[1]); redis.call('DEL', KEYS[1]); return 1", 1, 'bench:calibration');
  const d = serverDelta(a, await serverSnapshot(redis));
  const inner = (d['srv.calls.set'] ?? 0) + (d['srv.calls.incr'] ?? 0) + (d['srv.calls.del'] ?? 0);
  const total = d['srv.total'] ?? 0;
  const stats = Object.entries(d).reduce((s, [k, v]) => (k.startsWith('srv.calls.') && k !== 'srv.calls.info' ? s + v : s), 0);
  return { innerCommands: 3, totalCommandsDelta: total, commandstatsDelta: stats, totalCountsInner: total === 4, commandstatsCountsInner: inner === 3 };
}

/**
 * A Redis-stored API key (the gateway looks it up in Redis per request, as in production), made by the
 * keys CLI so that it lands wherever the code keeps keys today.
 */
function createApiKey(redisUrl: string, prefix: string): string {
  const out = execFileSync(process.execPath, ['--import', 'tsx', join(ROOT, 'libs', 'security', 'src', 'cli.ts'), 'create', '--tenant', 'bench', '--name', 'bench', '--scopes', 'infer,jobs:read', '--json'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', REDIS_URL: redisUrl, FASTVLM_REDIS_PREFIX: prefix },
    encoding: 'utf8',
  });
  const { key } = JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as { key?: string };
  if (!key) throw new Error(`the keys CLI made no key: ${out}`);
  return key;
}

async function syncCall(post: (p: string, b: unknown) => Promise<Response>, body: unknown, i: number): Promise<void> {
  const res = await post('/v1/chat/completions', body);
  if (res.status !== 200 || res.headers.get('x-cache') === 'hit') throw new Error(`sync request ${i}: ${res.status} ${res.headers.get('x-cache')} ${await res.text()}`);
  await res.arrayBuffer();
}

async function streamCall(post: (p: string, b: unknown) => Promise<Response>, body: unknown): Promise<void> {
  const res = await post('/v1/chat/completions', body);
  if (res.status !== 200) throw new Error(`streamed request: ${res.status} ${await res.text()}`);
  let done = false;
  const seen: string[] = [];
  const how = await streamSse(res, (e) => {
    seen.push(e.data.slice(0, 200));
    if (e.data === '[DONE]') done = true;
  });
  if (!done) throw new Error(`a streamed request ended (${how}) without [DONE]: ${seen.slice(-3).join(' | ')}`);
}

/** A PNG of seeded noise, `px` square: every job a different image (no image, feature or answer cache hits), all the same size. */
async function noisePng(px: number, seed: number): Promise<Buffer> {
  const raw = Buffer.alloc(px * px * 3);
  let s = (seed * 2654435761 + 1) >>> 0;
  for (let i = 0; i < raw.length; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    raw[i] = s >>> 24;
  }
  return sharp(raw, { raw: { width: px, height: px, channels: 3 } }).png().toBuffer();
}

async function stopWorker(w: WorkerProcess): Promise<void> {
  w.child.kill('SIGCONT');
  await stopProcess(w, 'SIGTERM');
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function cleanUp(): Promise<void> {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
}

runMain(main, cleanUp);

