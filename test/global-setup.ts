import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Redis } from 'ioredis';
import { generateModel } from '../libs/pipeline/src/generator/index';

const ROOT = resolve(import.meta.dirname, '..');
/** Where the suite keeps its generated model; reused across runs (generation is deterministic). */
export const TEST_CACHE_DIR = join(ROOT, '.cache', 'test');

async function redisAnswers(url: string): Promise<boolean> {
  const r = new Redis(url, { lazyConnect: true, connectTimeout: 1000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  try {
    await r.connect();
    return (await r.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    r.disconnect();
  }
}

/**
 * Real Redis at 127.0.0.1:6379 (started here when none answers), the tiny
 * generated model, and built apps for tests that run workers as processes.
 */
export default async function setup(): Promise<() => void> {
  let redis: ChildProcess | null = null;
  const url = 'redis://127.0.0.1:6379';
  if (!(await redisAnswers(url))) {
    redis = spawn('redis-server', ['--port', '6379', '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    const deadline = Date.now() + 10_000;
    while (!(await redisAnswers(url))) {
      if (Date.now() > deadline) throw new Error('could not start redis-server for the tests');
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const modelDir = join(TEST_CACHE_DIR, 'tiny-random');
  if (!existsSync(join(modelDir, 'config.json'))) await generateModel({ preset: 'tiny', outDir: modelDir, seed: 0 });
  // Tests that run workers as processes use the bundles; a run of library tests alone may skip the build.
  if (process.env.FASTVLM_TEST_SKIP_BUILD !== '1') {
    execFileSync(process.execPath, [join(ROOT, 'scripts', 'build.mjs')], { cwd: ROOT, stdio: 'inherit' });
  }
  process.env.FASTVLM_TEST_CACHE_DIR = TEST_CACHE_DIR;
  return () => {
    redis?.kill('SIGTERM');
  };
}
