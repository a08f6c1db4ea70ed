import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GatewayProcess } from '../support/processes';
import type { SseEvent } from '../support/requests';
import { auth } from '../support/requests';
import { streamSse } from '../support/sse-client';
import { until } from '../support/stack';
import { ChaosStack, FAST_LOCKS, backwardSteps, jobView, longBody, reportFigures, submitJob, tokens } from './harness';

const TOKENS = 1200;

describe('chaos: a worker paused (SIGSTOP) past its lock, then resumed while another worker re-runs its job', () => {
  let stack: ChaosStack;
  let gw: GatewayProcess;

  beforeAll(async () => {
    stack = await ChaosStack.start();
    gw = await stack.gateway();
  });
  afterAll(async () => {
    await stack?.dispose();
  });

  it('keeps one run in the stream after the takeover, stores one result, and the /events client sees each index once', async () => {
    const paused = await stack.worker(FAST_LOCKS);
    const id = await submitJob(gw.url, await longBody('pause me', TOKENS));
    const seen: SseEvent[] = [];
    const follower = fetch(`${gw.url}/v1/jobs/${id}/events`, { headers: auth() }).then((res) => streamSse(res, (e) => seen.push(e)));
    await until('the first run to stream', async () => tokens(await stack.stream(id)).length >= 20, 60_000);

    // The rescuer starts only now, so that the first run is the paused worker's.
    await stack.worker(FAST_LOCKS);
    paused.child.kill('SIGSTOP');
    const pausedAt = Date.now();
    await until('another worker to take the job over', async () => (await stack.runsStarted(id)) >= 2, 60_000);
    const takeoverMs = Date.now() - pausedAt;
    const takeoverAt = (await stack.stream(id)).length;
    await until('the takeover run to stream', async () => tokens((await stack.stream(id)).slice(takeoverAt)).length >= 20, 60_000);
    paused.child.kill('SIGCONT');

    await until('the job to end', async () => ['succeeded', 'failed', 'cancelled'].includes((await stack.record(id)).status ?? ''), 120_000);
    await until('the /events client to see the end', () => seen.some((e) => e.event === 'done' || e.event === 'error'), 30_000);
    await follower;

    const entries = await stack.stream(id);
    const all = tokens(entries);
    const afterTakeover = tokens(entries.slice(takeoverAt));
    const dones = entries.filter((e) => e.event.type === 'done');
    const seenIndices = seen.filter((e) => e.event === 'token').map((e) => (JSON.parse(e.data) as { index: number }).index);
    const view = await jobView(gw.url, id);
    const result = view.result?.choices[0]?.message.content;
    reportFigures('sigstop-takeover', {
      tokensPerRun: TOKENS,
      takeoverAfterPauseMs: takeoverMs,
      tokenEvents: all.length,
      tokenEventsAfterTakeover: afterTakeover.length,
      backwardStepsAfterTakeover: backwardSteps(afterTakeover),
      attemptsAfterTakeover: [...new Set(afterTakeover.map((t) => t.attempt ?? null))],
      doneEvents: dones.length,
      status: view.status,
      sseTokenEvents: seenIndices.length,
      sseRepeatedIndices: seenIndices.length - new Set(seenIndices).size,
    });

    expect(view.status).toBe('succeeded');
    expect(dones).toHaveLength(1);
    // After the takeover, one run only: indices rise from 0 to the end, and the text is the stored result.
    expect(afterTakeover.map((t) => t.index)).toEqual(Array.from({ length: TOKENS }, (_, i) => i));
    expect(new Set(afterTakeover.map((t) => t.attempt ?? null)).size).toBe(1);
    expect(afterTakeover.map((t) => t.text).join('')).toBe(result);
    // The /events client sees each index once, and (greedy decoding: both runs agree) the same text.
    expect(seenIndices).toEqual(Array.from({ length: TOKENS }, (_, i) => i));
    expect(seen.filter((e) => e.event === 'token').map((e) => (JSON.parse(e.data) as { text: string }).text).join('')).toBe(result);
  });
});
