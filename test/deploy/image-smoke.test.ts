import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentials } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROTO_FILE, loadExternalScaler } from '../../apps/scaler/src/grpc/proto';
import { freePort } from '../support/redis-server';
import { REDIS_URL, ROOT, cleanupPrefix, testCacheDir, uniquePrefix, until } from '../support/stack';
import { parseDockerfile, stageNamed, type ImageName, type ParsedDockerfile } from './support/dockerfile';
import { DockerIgnore, layoutFinalStage, openToAll, productionDependencies, reproduceBuildStage, type ImageRoot } from './support/image-root';
import { K8S, expandK8s, parseYamlDocuments } from './support/manifests';

/**
 * Each image's final stage reproduced from its Dockerfile and started from
 * there: a file the image forgets, or a package it does not install, fails here.
 * The worker-cuda image ships the same files as worker-cpu (dockerfiles.test.ts
 * checks it) but installs CUDA libraries that need a GPU and a download.
 */
const RUN: readonly ImageName[] = ['worker-cpu', 'gateway', 'scaler'];

/** The uid:gid the images run as (USER), used here when the tests run as root so that the image's files are read-only to the app. */
const asRoot = process.getuid?.() === 0;

interface Started {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

let work = '';
/**
 * The images' own `node` (Node 24, as the one running these tests): a copy of this process's binary
 * inside the laid-out tree, since the checkout it comes from may sit where the image's user cannot reach.
 */
let imageNode = '';
const dockerfiles = new Map<ImageName, ParsedDockerfile>();
const roots = new Map<ImageName, ImageRoot>();
let deps = '';
const prefix = uniquePrefix();
const started: Started[] = [];

function userOf(df: ParsedDockerfile): { uid: number; gid: number } {
  const [uid = '', gid = uid] = (df.final.user ?? '').split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

function start(image: ImageName, env: Record<string, string>): Started {
  const df = dockerfiles.get(image);
  const root = roots.get(image);
  if (!df || !root || !df.final.cmd) throw new Error(`${image} is not laid out`);
  const [cmd, ...args] = df.final.cmd;
  // The image's `node` is Node 24; so is the one running these tests.
  const child = spawn(cmd === 'node' ? imageNode : (cmd ?? ''), args, {
    cwd: root.appDir,
    env: { PATH: process.env.PATH ?? '', HOME: '/nonexistent', ...df.final.env, REDIS_URL, FASTVLM_REDIS_PREFIX: prefix, LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(asRoot ? userOf(df) : {}),
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const s = { child, output: () => out, exited };
  started.push(s);
  return s;
}

async function untilReady(what: string, s: Started, url: string): Promise<void> {
  let gone = false;
  void s.exited.then(() => (gone = true));
  await until(
    `${what} to be ready at ${url}`,
    async () => {
      if (gone) throw new Error(`${what} exited before it was ready:\n${s.output()}`);
      return (await fetch(url).catch(() => null))?.status === 200;
    },
    90_000,
  ).catch((err: unknown) => {
    throw new Error(`${err instanceof Error ? err.message : String(err)}\n${s.output()}`);
  });
}

/** Runs the image's HEALTHCHECK command as Docker would, inside the image, and returns its exit code. */
function healthcheck(image: ImageName, env: Record<string, string>): number {
  const df = dockerfiles.get(image);
  const root = roots.get(image);
  const [cmd, ...args] = df?.final.healthcheck?.command ?? [];
  if (!df || !root || !cmd) throw new Error(`${image} has no HEALTHCHECK`);
  try {
    execFileSync(cmd === 'node' ? imageNode : cmd, args, { cwd: root.appDir, env: { PATH: process.env.PATH ?? '', ...df.final.env, ...env }, stdio: 'ignore', timeout: 10_000 });
    return 0;
  } catch (err) {
    return (err as { status?: number }).status ?? 1;
  }
}

/** Bare package names a bundle imports (static, dynamic and require), without Node's built-ins. */
function importedPackages(code: string): Set<string> {
  const names = new Set<string>();
  // A specifier has no white space: so a string that merely follows the word "from" in some message is not taken for one.
  const patterns = [/\bfrom\s*["']([^"'\s]+)["']/g, /\bimport\s*\(\s*["']([^"'\s]+)["']\s*\)/g, /\brequire\s*\(\s*["']([^"'\s]+)["']\s*\)/g, /^\s*import\s*["']([^"'\s]+)["']/gm];
  for (const re of patterns) {
    for (const m of code.matchAll(re)) {
      const spec = m[1] ?? '';
      if (spec.startsWith('.') || spec.startsWith('/') || spec.startsWith('node:') || builtinModules.includes(spec)) continue;
      const parts = spec.split('/');
      names.add(spec.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] ?? spec));
    }
  }
  return names;
}

function jsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? jsFiles(p) : p.endsWith('.js') ? [p] : [];
  });
}

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'fastvlm-images-'));
  const ignore = DockerIgnore.fromContext();
  for (const image of RUN) {
    const df = parseDockerfile(image);
    dockerfiles.set(image, df);
    const build = stageNamed(df, 'build');
    if (!build) throw new Error(`${image}: no build stage`);
    const buildRoot = join(work, `${image}-build`);
    reproduceBuildStage(buildRoot, build, ignore);
    roots.set(image, layoutFinalStage(df, join(work, image), new Map([['build', buildRoot]]), ignore));
  }
  // One install serves every image: each copies the same manifests and runs the same npm ci under the same variables.
  const installs = new Set(
    RUN.map((image) => {
      const final = dockerfiles.get(image)?.final;
      const manifests = final?.copies.find((c) => c.sources.includes('package-lock.json'))?.sources;
      const env = { NODE_ENV: final?.env.NODE_ENV ?? '', ONNXRUNTIME_NODE_INSTALL: final?.env.ONNXRUNTIME_NODE_INSTALL ?? '' };
      return JSON.stringify({ npmCi: roots.get(image)?.npmCi, manifests, env });
    }),
  );
  expect(installs.size, 'every image installs alike').toBe(1);
  const install = JSON.parse([...installs][0] ?? '{}') as { npmCi: string; manifests: string[]; env: Record<string, string> };
  expect(install.manifests).toEqual(['package.json', 'package-lock.json', '.npmrc']);
  deps = productionDependencies(install.npmCi, install.env);
  for (const root of roots.values()) symlinkSync(join(deps, 'node_modules'), join(root.appDir, 'node_modules'), 'dir');
  imageNode = join(work, 'node');
  copyFileSync(process.execPath, imageNode);
  chmodSync(imageNode, 0o755);
  // The images' own files are read-only to their user: as root here, the apps run as the image's USER.
  if (asRoot) openToAll(work);
  else for (const image of RUN) execFileSync('chmod', ['-R', 'a-w', join(work, image)]);
}, 300_000);

afterAll(async () => {
  for (const s of started) if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGTERM');
  await Promise.all(started.map((s) => Promise.race([s.exited, new Promise((r) => setTimeout(r, 15_000))])));
  for (const s of started) if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
  if (work) {
    if (!asRoot) execFileSync('chmod', ['-R', 'u+w', work]);
    rmSync(work, { recursive: true, force: true });
  }
  await cleanupPrefix(prefix);
}, 60_000);

describe('container images, reproduced from their Dockerfiles’ final stages', () => {
  it('every package the bundles import is a production dependency: nothing at run time needs tsx or another devDependency', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };
    let seen = 0;
    for (const image of RUN) {
      const root = roots.get(image);
      if (!root) throw new Error(`${image} is not laid out`);
      for (const file of jsFiles(join(root.appDir, 'dist'))) {
        for (const name of importedPackages(readFileSync(file, 'utf8'))) {
          seen += 1;
          expect(Object.keys(pkg.dependencies), `${image}: ${file.slice(root.appDir.length)} imports ${name}`).toContain(name);
          expect(existsSync(join(deps, 'node_modules', name, 'package.json')), `${name} is installed by npm ci --omit=dev`).toBe(true);
        }
      }
    }
    expect(seen).toBeGreaterThan(10);
    expect(existsSync(join(deps, 'node_modules', 'tsx'))).toBe(false);
    expect(existsSync(join(deps, 'node_modules', 'esbuild'))).toBe(false);
  });

  it('the image installs onnxruntime-node without its CUDA download', () => {
    const bin = join(deps, 'node_modules', 'onnxruntime-node', 'bin', 'napi-v6', 'linux', 'x64');
    if (process.arch === 'x64') {
      expect(existsSync(join(bin, 'onnxruntime_binding.node'))).toBe(true);
      expect(existsSync(join(bin, 'libonnxruntime_providers_cuda.so'))).toBe(false);
    }
  });

  it('worker-cpu: the init container’s model pull, run from the image, finds the model in the cache volume', () => {
    const df = dockerfiles.get('worker-cpu');
    const root = roots.get('worker-cpu');
    if (!df || !root) throw new Error('worker-cpu is not laid out');
    // The cache volume: a copy of the suite's generated tiny-random model, writable by the image's user.
    const cache = join(work, 'model-cache');
    mkdirSync(cache, { recursive: true });
    cpSync(join(testCacheDir(), 'tiny-random'), join(cache, 'tiny-random'), { recursive: true });
    if (asRoot) execFileSync('chown', ['-R', `${userOf(df).uid}:${userOf(df).gid}`, cache]);
    else chmodSync(cache, 0o755);
    const [deployment] = parseYamlDocuments(readFileSync(join(K8S, 'base', 'worker', 'deployment.yaml'), 'utf8'));
    const init = (deployment as unknown as { spec: { template: { spec: { initContainers: { command: string[] }[] } } } }).spec.template.spec.initContainers[0];
    const env = { FASTVLM_MODEL: 'tiny-random', FASTVLM_CACHE_DIR: cache, HF_HUB_OFFLINE: 'true' };
    const [cmd, ...args] = (init?.command ?? []).map((a) => expandK8s(a, env));
    const out = execFileSync(cmd === 'node' ? imageNode : (cmd ?? ''), args, {
      cwd: root.appDir,
      env: { PATH: process.env.PATH ?? '', HOME: '/nonexistent', ...df.final.env, ...env },
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(asRoot ? userOf(df) : {}),
    });
    expect(out.trim()).toBe(join(cache, 'tiny-random'));
  });

  it('worker-cpu starts from the image and becomes ready on the tiny-random model; its HEALTHCHECK passes, and fails where nothing answers', async () => {
    const port = await freePort();
    const env = {
      FASTVLM_MODEL: 'tiny-random',
      FASTVLM_CACHE_DIR: join(work, 'model-cache'),
      FASTVLM_THREADS: '1',
      HF_HUB_OFFLINE: 'true',
      WORKER_HTTP_HOST: '127.0.0.1',
      WORKER_HTTP_PORT: String(port),
    };
    const worker = start('worker-cpu', env);
    await untilReady('the worker', worker, `http://127.0.0.1:${port}/health/ready`);
    expect(healthcheck('worker-cpu', env)).toBe(0);
    expect(healthcheck('worker-cpu', { ...env, WORKER_HTTP_PORT: String(await freePort()) })).not.toBe(0);
  });

  it('the gateway starts from the image and becomes ready once the worker serves its model; its HEALTHCHECK passes', async () => {
    const port = await freePort();
    const env = { FASTVLM_MODEL: 'tiny-random', HOST: '127.0.0.1', PORT: String(port) };
    const gateway = start('gateway', env);
    await untilReady('the gateway', gateway, `http://127.0.0.1:${port}/health/ready`);
    expect(healthcheck('gateway', env)).toBe(0);
    // The web console is part of the image.
    expect((await fetch(`http://127.0.0.1:${port}/console/`)).status).toBe(200);
  });

  it('the scaler starts from the image and becomes ready; its HEALTHCHECK passes, and it answers KEDA for the manifests’ ScaledObject', async () => {
    const [grpc, http] = [await freePort(), await freePort()];
    const env = { SCALER_GRPC_HOST: '127.0.0.1', SCALER_GRPC_PORT: String(grpc), SCALER_HTTP_HOST: '127.0.0.1', SCALER_HTTP_PORT: String(http) };
    const scaler = start('scaler', env);
    await untilReady('the scaler', scaler, `http://127.0.0.1:${http}/health/ready`);
    expect(healthcheck('scaler', env)).toBe(0);
    // KEDA's call, with the trigger metadata of deploy/k8s (scalerAddress included, as KEDA sends it), through the .proto the image ships.
    const [so] = parseYamlDocuments(readFileSync(join(K8S, 'base', 'worker', 'scaledobject.yaml'), 'utf8'));
    const metadata = (so as unknown as { spec: { triggers: { metadata: Record<string, string> }[] } }).spec.triggers[0]?.metadata ?? {};
    const { Client } = loadExternalScaler(join(roots.get('scaler')?.appDir ?? '', 'dist', 'apps', 'scaler', PROTO_FILE));
    const client = new Client(`127.0.0.1:${grpc}`, credentials.createInsecure()) as unknown as {
      GetMetricSpec(ref: object, cb: (err: Error | null, res: { metricSpecs: { targetSize: number }[] }) => void): void;
      close(): void;
    };
    try {
      const res = await new Promise<{ metricSpecs: { targetSize: number }[] }>((resolve, reject) =>
        client.GetMetricSpec({ name: 'fastvlm-worker', namespace: 'fastvlm', scalerMetadata: metadata }, (err, r) => (err ? reject(err) : resolve(r))),
      );
      expect(res.metricSpecs).toHaveLength(1);
      expect(res.metricSpecs[0]?.targetSize).toBeGreaterThan(0);
    } finally {
      client.close();
    }
  });
});
