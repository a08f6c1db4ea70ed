import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI, { toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stopProcess, type GatewayProcess } from '../support/processes';
import { dataUrl, png } from '../support/requests';
import { API_KEYS, until } from '../support/stack';
import { ChaosStack, FAST_LOCKS, reportFigures } from './harness';

const REQUESTS = 48;

interface Line {
  id: string;
  custom_id: string;
  response: { status_code: number; request_id: string } | null;
}

describe('chaos: a batch survives its gateway and a worker killed mid-run (SIGKILL)', () => {
  const filesDir = mkdtempSync(join(tmpdir(), 'fastvlm-batch-chaos-'));
  let stack: ChaosStack;
  const env = { FILES_DIR: filesDir, BATCH_TICK_MS: '100', BATCH_LEASE_MS: '2000', BATCH_RESUBMIT_AFTER_MS: '2000', BATCH_SEGMENT_LINES: '8' };

  beforeAll(async () => {
    stack = await ChaosStack.start();
  });
  afterAll(async () => {
    await stack?.dispose();
    rmSync(filesDir, { recursive: true, force: true });
  });

  it('loses no request and writes no output line twice', async () => {
    const [first, victim] = await Promise.all([stack.gateway(env), stack.worker({ ...FAST_LOCKS, WORKER_CONCURRENCY: '2', FASTVLM_MAX_BATCH: '2' })]);
    const client = (g: GatewayProcess) => new OpenAI({ apiKey: API_KEYS.acme, baseURL: `${g.url}/v1`, maxRetries: 0 });
    const images = await Promise.all(Array.from({ length: 4 }, (_, i) => png(40, 32, 700 + i)));
    const lines = Array.from({ length: REQUESTS }, (_, i) => ({
      custom_id: `crash-${i}`,
      method: 'POST',
      url: '/v1/chat/completions',
      body: { max_tokens: 160, temperature: 0, messages: [{ role: 'user', content: [{ type: 'text', text: `crash question ${i}` }, { type: 'image_url', image_url: { url: dataUrl(images[i % 4] as Buffer) } }] }] },
    }));
    const a = client(first);
    const file = await a.files.create({ file: await toFile(Buffer.from(lines.map((l) => JSON.stringify(l)).join('\n')), 'crash.jsonl'), purpose: 'batch' });
    const batch = await a.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
    const progress = async (c: OpenAI) => {
      const b = await c.batches.retrieve(batch.id);
      return (b.request_counts?.completed ?? 0) + (b.request_counts?.failed ?? 0);
    };

    await until('a few requests to be done', async () => (await progress(a)) >= 6, 120_000);
    await stopProcess(first, 'SIGKILL');
    const b = client(await stack.gateway(env));
    const doneAtGatewayKill = await progress(b);
    await stack.worker(FAST_LOCKS);
    await until('the new gateway to move the batch on', async () => (await progress(b)) >= doneAtGatewayKill + 4, 120_000);
    await stopProcess(victim, 'SIGKILL');
    const doneAtWorkerKill = await progress(b);
    // Both kills happened with work left, or the test proves nothing.
    expect(doneAtWorkerKill).toBeLessThan(REQUESTS);

    const done = await until('the batch to end', async () => {
      const r = await b.batches.retrieve(batch.id);
      return ['completed', 'failed', 'expired', 'cancelled'].includes(r.status) ? r : undefined;
    }, 180_000);
    expect(done.status).toBe('completed');
    expect(done.request_counts).toEqual({ total: REQUESTS, completed: REQUESTS, failed: 0 });
    const out = (await (await b.files.content(done.output_file_id ?? '')).text())
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Line);
    reportFigures('batch-crash', { requests: REQUESTS, doneAtGatewayKill, doneAtWorkerKill, outputLines: out.length });
    expect(out).toHaveLength(REQUESTS);
    expect(out.map((l) => l.custom_id).sort()).toEqual(lines.map((l) => l.custom_id).sort());
    expect(new Set(out.map((l) => l.id)).size).toBe(REQUESTS);
    expect(out.every((l) => l.response?.status_code === 200)).toBe(true);
  }, 360_000);
});
