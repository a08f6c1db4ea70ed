import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../support/stack';
import { unknownKeys } from './support/app-config';
import { IMAGES, IMAGE_APP, npmCiOf, parseDockerfile, stageNamed, type ParsedDockerfile } from './support/dockerfile';
import { DockerIgnore } from './support/image-root';

const OCI_LABELS = ['title', 'description', 'version', 'revision', 'created', 'source', 'licenses'].map((k) => `org.opencontainers.image.${k}`);
/** Variables the images set for npm and Node themselves, not for the apps. */
const RUNTIME_ENV = new Set(['NODE_ENV', 'ONNXRUNTIME_NODE_INSTALL']);
/** The HTTP port variable of each app: its health check must use it. */
const HTTP_PORT = { gateway: 'PORT', worker: 'WORKER_HTTP_PORT', scaler: 'SCALER_HTTP_PORT' } as const;

/** The Node major of the image a stage is built from, through any stage it names. */
function nodeBase(df: ParsedDockerfile, base: string): string {
  return stageNamed(df, base)?.base ?? base;
}

describe.each(IMAGES)('docker/%s.Dockerfile', (image) => {
  const df = parseDockerfile(image);
  const app = IMAGE_APP[image];

  it('builds in stages and ships a final stage on Node 24 with production dependencies only', () => {
    expect(df.stages.length).toBeGreaterThanOrEqual(2);
    const build = stageNamed(df, 'build');
    expect(build, 'a build stage').toBeDefined();
    expect(nodeBase(df, build?.base ?? '')).toMatch(/^node:24[-.]/);
    if (image === 'worker-cuda') {
      // Node 24 copied from the official image into the CUDA base.
      const node = df.final.copies.find((c) => c.sources.includes('/usr/local/bin/node'));
      expect(nodeBase(df, node?.from ?? '')).toMatch(/^node:24[-.]/);
    } else expect(nodeBase(df, df.final.base)).toMatch(/^node:24[-.]/);
    const installs = df.final.runs.map(npmCiOf).filter((x): x is string => x !== null);
    expect(installs).toHaveLength(1);
    expect(installs[0]).toMatch(/--omit=dev\b/);
    expect(df.final.runs.join('\n')).not.toMatch(/npm (install|i) /);
    // The build stage's full install never reaches the final stage: only built files are copied from it.
    for (const c of df.final.copies.filter((x) => x.from === 'build')) for (const s of c.sources) expect(s).toMatch(/^\/src\/dist\//);
  });

  it('runs as a numeric non-root user, with a health check on /health/ready, OCI labels and the app as its command', () => {
    expect(df.final.user).toMatch(/^[1-9]\d*(:[1-9]\d*)?$/);
    const hc = df.final.healthcheck;
    expect(hc?.command[0]).toBe('node');
    const port = df.final.env[HTTP_PORT[app]];
    expect(port, `${HTTP_PORT[app]} set in the image`).toBeDefined();
    expect(hc?.command.join(' ')).toContain(`process.env.${HTTP_PORT[app]}`);
    expect(hc?.command.join(' ')).toContain('/health/ready');
    expect(hc?.flags['start-period']).toBeDefined();
    for (const label of OCI_LABELS) expect(df.final.labels[label], label).toBeTruthy();
    expect(df.final.labels['org.opencontainers.image.licenses']).toBe((JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { license: string }).license);
    expect(df.final.cmd).toEqual(['node', '--enable-source-maps', `dist/apps/${app}/main.js`]);
    expect(df.final.copies.some((c) => c.dest === `./dist/apps/${app}`)).toBe(true);
    expect(df.final.exposes).toContain(Number(port));
  });

  it('sets only the app’s own config variables, listening beyond loopback', () => {
    const appKeys = Object.keys(df.final.env).filter((k) => !RUNTIME_ENV.has(k));
    expect(unknownKeys(app, appKeys)).toEqual([]);
    for (const [k, v] of Object.entries(df.final.env)) if (k.endsWith('HOST')) expect(v, k).toBe('0.0.0.0');
  });

  it('skips onnxruntime-node’s CUDA download wherever npm installs, except where the CUDA image installs it on purpose', () => {
    for (const stage of df.stages.filter((s) => s.runs.some((r) => npmCiOf(r) !== null))) {
      expect(stage.env.ONNXRUNTIME_NODE_INSTALL, `stage ${stage.name ?? 'final'}`).toBe('skip');
    }
    const cudaInstall = df.final.runs.some((r) => /ONNXRUNTIME_NODE_INSTALL=cuda12 node script\/install\.js/.test(r));
    expect(cudaInstall).toBe(image === 'worker-cuda');
  });
});

describe('docker/worker-cuda.Dockerfile', () => {
  const cuda = parseDockerfile('worker-cuda');
  const cpu = parseDockerfile('worker-cpu');

  it('runs on a CUDA 12 + cuDNN 9 runtime base, installs onnxruntime-node’s CUDA 12 libraries, checks them, and says which driver it needs', () => {
    expect(cuda.final.base).toMatch(/^nvidia\/cuda:12\.\d+(\.\d+)?-cudnn-runtime-/);
    const run = cuda.final.runs.find((r) => r.includes('script/install.js')) ?? '';
    expect(run).toMatch(/ONNXRUNTIME_NODE_INSTALL=cuda12/);
    expect(run).toMatch(/test -f \S*libonnxruntime_providers_cuda\.so/);
    expect(cuda.final.env.FASTVLM_DEVICE).toBe('cuda');
    expect(cuda.text).toMatch(/driver[^\n]*>= ?\d{3}/i);
  });

  it('ships exactly the worker-cpu image’s app files, built the same way', () => {
    const appFiles = (df: ParsedDockerfile) => df.final.copies.filter((c) => c.from !== 'node').map((c) => ({ ...c, workdir: c.workdir }));
    expect(appFiles(cuda)).toEqual(appFiles(cpu));
    expect(stageNamed(cuda, 'build')?.steps).toEqual(stageNamed(cpu, 'build')?.steps);
    expect(cuda.final.cmd).toEqual(cpu.final.cmd);
  });
});

describe('.dockerignore', () => {
  const ignore = DockerIgnore.fromContext();

  it('keeps local installs, builds, caches and tests out of the build context, and the sources in', () => {
    for (const p of ['node_modules', 'libs/pipeline/node_modules/x', 'dist/apps/gateway/main.js', '.git/HEAD', '.cache/test/tiny-random/config.json', 'test/e2e/chat.e2e.test.ts', 'libs/jobs/src/job-store.test.ts']) {
      expect(ignore.ignores(p), p).toBe(true);
    }
    for (const p of ['package.json', 'package-lock.json', '.npmrc', 'tsconfig.json', 'scripts/build.mjs', 'apps/gateway/src/main.ts', 'libs/pipeline/src/hub/cli.ts', 'apps/gateway/src/console/web/index.html']) {
      expect(ignore.ignores(p), p).toBe(false);
    }
  });

  it('is read as Docker reads it: ** across folders, a folder’s exclusion covers its files, ! re-includes, the last match wins', () => {
    const d = new DockerIgnore('**/*.md\nbuild\n!build/keep.txt\n');
    expect(d.ignores('README.md')).toBe(true);
    expect(d.ignores('a/b/c.md')).toBe(true);
    expect(d.ignores('build/x/y.js')).toBe(true);
    expect(d.ignores('build/keep.txt')).toBe(false);
    expect(d.ignores('src/build.ts')).toBe(false);
  });
});
