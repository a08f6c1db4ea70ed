import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { poolQueue } from '@fastvlm/contracts';
import { stopProcess, type GatewayProcess } from '../support/processes';
import { postJson } from '../support/requests';
import { streamSse } from '../support/sse-client';
import { until } from '../support/stack';
import { ChaosStack, FAST_LOCKS, longBody, reportFigures, tokens } from './harness';

interface Chunk {
  id: string;
  choices: { delta: { content?: string }; finish_reason: string | null }[];
}

describe('chaos: a worker killed in the middle of a sampled streamed answer (temperature > 0, no seed)', () => {
  let stack: ChaosStack;
  let gw: GatewayProcess;

  beforeAll(async () => {
    stack = await ChaosStack.start();
    gw = await stack.gateway();
  });
  afterAll(async () => {
    await stack?.dispose();
  });

  it('streams exactly the text that is stored as the result, though another worker finished it', async () => {
    const victim = await stack.worker(FAST_LOCKS);
    const res = await postJson(`${gw.url}/v1/chat/completions`, await longBody('sample me', 600, { stream: true, temperature: 1.2 }));
    expect(res.status).toBe(200);
    const chunks: Chunk[] = [];
    let extra: string[] = [];
    const reading = streamSse(res, (e) => {
      if (e.data === '[DONE]') return;
      const parsed = JSON.parse(e.data) as Chunk | { error: unknown };
      if ('choices' in parsed) chunks.push(parsed);
      else extra = [...extra, e.data];
    });
    const contentChunks = (): number => chunks.filter((c) => c.choices[0]?.delta.content).length;
    await until('some of the answer to stream', () => contentChunks() >= 20, 60_000);
    const streamedAtKill = contentChunks();
    await stopProcess(victim, 'SIGKILL');
    await stack.worker(FAST_LOCKS);
    expect(await reading).toBe('ended');

    const streamed = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
    const jobId = `job_${(chunks[0]?.id ?? '').replace(/^chatcmpl-/, '')}`;
    const stored = (JSON.parse((await stack.record(jobId)).result ?? '{}') as { text?: string }).text;
    let firstDifference = -1;
    for (let i = 0; i < Math.max(streamed.length, stored?.length ?? 0); i++) {
      if (streamed[i] !== stored?.[i]) {
        firstDifference = i;
        break;
      }
    }
    reportFigures('sampled-rerun', {
      chunksBeforeKill: streamedAtKill,
      runs: await stack.runsStarted(jobId),
      streamedChars: streamed.length,
      storedChars: stored?.length ?? null,
      firstDifferentChar: firstDifference,
      errorEvents: extra,
      runSeed: (JSON.parse((await stack.redis.hget(`${stack.keys.bull()}:${poolQueue('tiny-random')}:${jobId}`, 'data')) ?? '{}') as { runSeed?: number }).runSeed ?? null,
      attempts: [...new Set(tokens(await stack.stream(jobId)).map((t) => t.attempt ?? null))],
      firstIndexWhereRunsDiffer: await firstDisagreement(stack, jobId),
    });
    expect(extra).toEqual([]);
    expect(await stack.runsStarted(jobId)).toBe(2);
    expect(streamed).toBe(stored);
  });
});

/** The first token index at which the two runs in the stream wrote different text (-1: they agree). */
async function firstDisagreement(stack: ChaosStack, jobId: string): Promise<number> {
  const entries = await stack.stream(jobId);
  const second = entries.map((e) => e.event.type === 'status' && e.event.status === 'running').lastIndexOf(true);
  const before = new Map(tokens(entries.slice(0, second)).map((t) => [t.index, t.text]));
  for (const t of tokens(entries.slice(second))) if (before.has(t.index) && before.get(t.index) !== t.text) return t.index;
  return -1;
}
