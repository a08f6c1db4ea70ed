#!/usr/bin/env node
// `npm start`: builds the apps and runs one gateway, one worker per model pool
// (FASTVLM_MODELS, else FASTVLM_MODEL) and the autoscaler (KEDA external
// scaler) in the foreground, with a Redis of its own when none answers.
// Ctrl-C stops all.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import net from 'node:net';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..');
const env = { ...process.env };
env.PORT ??= '8080';
env.REDIS_URL ??= 'redis://127.0.0.1:6379';
env.FASTVLM_MODEL ??= 'onnx-community/FastVLM-0.5B-ONNX';
// One pool per model the gateway serves, each with a worker of its own (the gateway and the scaler read the same list).
const models = (env.FASTVLM_MODELS ?? env.FASTVLM_MODEL).split(',').map((m) => m.trim()).filter((m) => m !== '');
const workerPort = Number(env.WORKER_HTTP_PORT ?? 9464);
env.SCALER_HTTP_PORT ??= '9466';
const say = (msg) => process.stdout.write(`[start] ${msg}\n`);

const build = spawnSync(process.execPath, [join(ROOT, 'scripts', 'build.mjs')], { cwd: ROOT, stdio: 'inherit' });
if (build.status !== 0) process.exit(build.status ?? 1);

/** Sends PING and reads the reply, so a port that answers but is not Redis does not count. */
function redisAnswers(url) {
  const u = new URL(url);
  return new Promise((res) => {
    const sock = net.connect({ host: u.hostname, port: Number(u.port || 6379) });
    const done = (ok) => {
      sock.destroy();
      res(ok);
    };
    sock.setTimeout(1000, () => done(false));
    sock.on('error', () => done(false));
    sock.on('connect', () => sock.write('PING\r\n'));
    sock.on('data', (d) => done(/^\+PONG|^-NOAUTH/.test(d.toString())));
  });
}

function freePort() {
  return new Promise((res, rej) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => res(port));
    });
    srv.on('error', rej);
  });
}

function portFree(port) {
  return new Promise((res) => {
    const srv = net.createServer();
    srv.once('error', () => res(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => res(true)));
  });
}

const children = [];
let stopping = false;
function stopAll(code) {
  if (stopping) return;
  stopping = true;
  say('stopping…');
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
  const force = setTimeout(() => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  }, 15_000);
  force.unref();
  Promise.all(children.map((c) => (c.exitCode !== null ? null : new Promise((r) => c.on('exit', r))))).then(() => process.exit(code));
}
process.on('SIGINT', () => stopAll(0));
process.on('SIGTERM', () => stopAll(0));

if (!(await redisAnswers(env.REDIS_URL))) {
  const which = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' });
  if (which.status !== 0) {
    say(`Redis at ${env.REDIS_URL} does not answer and redis-server is not on the PATH. Start Redis or set REDIS_URL.`);
    process.exit(1);
  }
  const port = await freePort();
  const dir = join(ROOT, '.cache', 'redis');
  mkdirSync(dir, { recursive: true });
  const redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--appendfsync', 'everysec', '--maxmemory-policy', 'noeviction', '--save', ''], { stdio: 'ignore' });
  children.push(redis);
  env.REDIS_URL = `redis://127.0.0.1:${port}`;
  const deadline = Date.now() + 10_000;
  while (!(await redisAnswers(env.REDIS_URL))) {
    if (Date.now() > deadline) {
      say('redis-server did not start');
      stopAll(1);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  say(`started redis-server on ${env.REDIS_URL} (data in ${dir}, AOF on, noeviction)`);
}

// 9090 is also Prometheus's default port: when it is taken and no port was asked for, the scaler takes a free one.
if (!env.SCALER_GRPC_PORT) {
  env.SCALER_GRPC_PORT = (await portFree(9090)) ? '9090' : String(await freePort());
}

if (!env.FASTVLM_API_KEYS) {
  const key = `fvlm-dev-${randomBytes(16).toString('hex')}`;
  // The laptop's own key may also manage keys and tenants (/v1/admin/*).
  env.FASTVLM_API_KEYS = `dev:${key}:infer+jobs:read+admin`;
  env.FASTVLM_DEV_KEY = key;
}

function run(name, extraEnv = {}, label = name) {
  const c = spawn(process.execPath, ['--enable-source-maps', join(ROOT, 'dist', 'apps', name, 'main.js')], { cwd: ROOT, env: { ...env, ...extraEnv }, stdio: 'inherit' });
  children.push(c);
  c.on('exit', (code, signal) => {
    if (stopping) return;
    say(`${label} exited (${signal ?? code}); stopping the stack`);
    stopAll(code || 1);
  });
  return c;
}

// Each worker serves one model (its pool's queue) and takes the next /metrics port.
models.forEach((model, i) => run('worker', { FASTVLM_MODEL: model, WORKER_HTTP_PORT: String(workerPort + i) }, `worker (${model})`));
run('gateway');
// Shares the stack's Redis and prefix: it reads the queue the gateway fills and the workers drain.
run('scaler');
const key = env.FASTVLM_DEV_KEY ?? env.FASTVLM_API_KEYS.split(',')[0].split(':')[1];
say(`gateway: http://127.0.0.1:${env.PORT}   ${models.length === 1 ? `model: ${models[0]}` : `models: ${models.join(', ')} (one pool and one worker each)`}`);
say(`console: http://127.0.0.1:${env.PORT}/console/   metrics: http://127.0.0.1:${env.PORT}/metrics, ${models.map((m, i) => `worker${models.length > 1 ? ` (${m})` : ''} http://127.0.0.1:${workerPort + i}/metrics`).join(', ')}`);
say(`scaler:  KEDA external scaler (gRPC) at 127.0.0.1:${env.SCALER_GRPC_PORT}   metrics: http://127.0.0.1:${env.SCALER_HTTP_PORT}/metrics`);
say(`API key: ${key}${env.FASTVLM_DEV_KEY ? ' (generated for this run; set FASTVLM_API_KEYS=tenant:key to choose your own)' : ''}`);
say(`try:     curl -s http://127.0.0.1:${env.PORT}/v1/models -H "Authorization: Bearer ${key}"`);
say('Ctrl-C stops everything.');
