import { execFile, spawn } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { join, relative, resolve, sep } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parseDtypeSpec } from '../engine/dtype';
import { pullModel } from './pull';
import { useHubFixture } from './test-hub-server';

const fx = useHubFixture();
const fp32 = parseDtypeSpec(undefined);
const ROOT = resolve(import.meta.dirname, '../../../..');
const CLI = join(ROOT, 'libs/pipeline/src/hub/cli.ts');

async function servedFiles(): Promise<string[]> {
  const entries = await readdir(fx.served, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => relative(fx.served, join(e.parentPath, e.name)).split(sep).join('/'));
}

/** `npm run model:pull` without npm: the same tsx entry point, as its own process. */
function runCli(args: string[], env: Record<string, string>): Promise<{ stdout: string; stderr: string }> {
  return promisify(execFile)(process.execPath, ['--import', 'tsx', CLI, ...args], {
    cwd: ROOT,
    env: { ...process.env, HF_TOKEN: '', HF_HUB_OFFLINE: '', FASTVLM_DTYPE: '', ...env },
  });
}

/** The CLI as a running process whose output can be watched. */
function startCli(args: string[], env: Record<string, string>): { stderr: () => string; exit: Promise<{ code: number | null; stdout: string }> } {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], {
    cwd: ROOT,
    env: { ...process.env, HF_TOKEN: '', HF_HUB_OFFLINE: '', FASTVLM_DTYPE: '', ...env },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exit = new Promise<{ code: number | null; stdout: string }>((ok) => child.on('close', (code) => ok({ code, stdout })));
  return { stderr: () => stderr, exit };
}

async function until(what: string, ok: () => boolean, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting: ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}

describe('pulls sharing one cache', () => {
  it('two pulls at once download each file once; the second waits and finds the files there', async () => {
    const hub = await fx.hub();
    const cacheDir = fx.cacheDir();
    const waits: string[] = [];
    const options = { endpoint: hub.endpoint, progress: 'none' as const, lockPollMs: 20, log: (l: string) => waits.push(l) };
    const [a, b] = await Promise.all([pullModel('acme/vlm', cacheDir, fp32, options), pullModel('acme/vlm', cacheDir, fp32, options)]);
    expect(a.dir).toBe(b.dir);
    expect([a.downloaded.length, b.downloaded.length].sort((x, y) => x - y)).toEqual([0, (await servedFiles()).length]);
    for (const f of await servedFiles()) expect(hub.downloads(f)).toHaveLength(1);
    expect(waits.some((l) => l.includes('waiting'))).toBe(true);
  });

  it('a worker waits for the model:pull command running in another process, then downloads nothing', async () => {
    const hub = await fx.hub();
    const cacheDir = fx.cacheDir();
    // The command stalls on the tokenizer while holding the lock.
    const release = hub.hold('tokenizer.json');
    const cli = startCli(['acme/vlm', '--cache-dir', cacheDir], { HF_ENDPOINT: hub.endpoint });
    await until('the command asks for the tokenizer', () => hub.downloads('tokenizer.json').length === 1);
    const lines: string[] = [];
    const worker = pullModel('acme/vlm', cacheDir, fp32, { endpoint: hub.endpoint, progress: 'none', lockPollMs: 20, log: (l) => lines.push(l) });
    await until('the worker waits for the lock', () => lines.some((l) => l.includes('waiting')));
    release();
    const [done, pulled] = await Promise.all([cli.exit, worker]);
    expect(done.code).toBe(0);
    expect(done.stdout.trim()).toBe(pulled.dir);
    expect(cli.stderr()).toContain('downloaded tokenizer.json');
    expect(pulled.downloaded).toEqual([]);
    for (const f of await servedFiles()) expect(hub.downloads(f)).toHaveLength(1);
  });

  it('the model:pull command fails with the reason and a non-zero status when the hub refuses', async () => {
    const hub = await fx.hub({ token: 'hf_secret' });
    const run = runCli(['acme/vlm', '--cache-dir', fx.cacheDir(), '--dtype', 'q4'], { HF_ENDPOINT: hub.endpoint });
    await expect(run).rejects.toMatchObject({ code: 1, stderr: expect.stringContaining('model_not_found') as unknown });
  });
});
