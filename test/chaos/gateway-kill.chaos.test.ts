import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stopProcess, type GatewayProcess } from '../support/processes';
import { auth, type SseEvent } from '../support/requests';
import { streamSse } from '../support/sse-client';
import { until } from '../support/stack';
import { ChaosStack, jobView, longBody, reportFigures, submitJob } from './harness';

const TOKENS = 600;

describe('chaos: the gateway serving an /events stream is killed (SIGKILL)', () => {
  let stack: ChaosStack;
  let first: GatewayProcess;
  let second: GatewayProcess;

  beforeAll(async () => {
    stack = await ChaosStack.start();
    [first, second] = await Promise.all([stack.gateway(), stack.gateway(), stack.worker()]);
  });
  afterAll(async () => {
    await stack?.dispose();
  });

  it('lets the client resume on another gateway with Last-Event-ID: every index once, and the text is the result', async () => {
    const id = await submitJob(first.url, await longBody('resume me', TOKENS));
    const seen: SseEvent[] = [];
    const before = fetch(`${first.url}/v1/jobs/${id}/events`, { headers: auth() }).then((res) => streamSse(res, (e) => seen.push(e)));
    await until('some tokens to arrive', () => seen.filter((e) => e.event === 'token').length >= 20, 60_000);
    await stopProcess(first, 'SIGKILL');
    const firstEnd = await before;
    const tokensBeforeKill = seen.filter((e) => e.event === 'token').length;
    const lastId = seen.filter((e) => e.id).at(-1)?.id ?? '0';

    const resumedAt = Date.now();
    const res = await fetch(`${second.url}/v1/jobs/${id}/events`, { headers: { ...auth(), 'last-event-id': lastId } });
    expect(res.status).toBe(200);
    expect(await streamSse(res, (e) => seen.push(e))).toBe('ended');

    const tokenEvents = seen.filter((e) => e.event === 'token').map((e) => JSON.parse(e.data) as { index: number; text: string });
    const done = seen.filter((e) => e.event === 'done');
    const view = await jobView(second.url, id);
    reportFigures('gateway-kill-resume', {
      firstStream: firstEnd,
      tokensBeforeKill,
      tokensAfterResume: tokenEvents.length - tokensBeforeKill,
      repeatedIndices: tokenEvents.length - new Set(tokenEvents.map((t) => t.index)).size,
      resumedStreamMs: Date.now() - resumedAt,
    });
    expect(tokenEvents.map((t) => t.index)).toEqual(Array.from({ length: TOKENS }, (_, i) => i));
    expect(done).toHaveLength(1);
    expect(view.status).toBe('succeeded');
    const result = view.result?.choices[0]?.message.content;
    expect(tokenEvents.map((t) => t.text).join('')).toBe(result);
    expect((JSON.parse(done[0]?.data ?? '{}') as { choices: { message: { content: string } }[] }).choices[0]?.message.content).toBe(result);
  }, 180_000);
});
