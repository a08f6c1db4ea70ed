import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GatewayProcess } from '../support/processes';
import { PrivateRedis } from '../support/redis-server';
import { postJson } from '../support/requests';
import { ChaosStack, longBody, reportFigures } from './harness';

interface Completion {
  choices: { message: { content: string } }[];
  usage: { completion_tokens: number };
}

describe('chaos: the cache Redis (CACHE_REDIS_URL) goes down', () => {
  let stack: ChaosStack;
  let cache: PrivateRedis;
  let gw: GatewayProcess;

  beforeAll(async () => {
    [stack, cache] = await Promise.all([ChaosStack.start(), PrivateRedis.start()]);
    // A sync request that cannot get its answer says so in 20 s instead of the default 5 minutes.
    [gw] = await Promise.all([
      stack.gateway({ CACHE_REDIS_URL: cache.url, SYNC_TIMEOUT_MS: '20000' }),
      stack.worker({ CACHE_REDIS_URL: cache.url }),
    ]);
  });
  afterAll(async () => {
    await stack?.dispose();
    await cache?.dispose();
  });

  it('still answers temperature-0 requests with 200 (cache errors are misses), new questions and repeated ones', async () => {
    const ask = async (q: string): Promise<{ status: number; ms: number; body: string }> => {
      const started = Date.now();
      const res = await postJson(`${gw.url}/v1/chat/completions`, await longBody(q, 6));
      return { status: res.status, ms: Date.now() - started, body: await res.text() };
    };
    const warm = await ask('cached before the outage');
    expect(warm.status).toBe(200);
    const answer = (JSON.parse(warm.body) as Completion).choices[0]?.message.content;

    await cache.down();
    const outcomes = [];
    // One at a time: a wedged worker slot would show on the next request.
    for (const q of ['new question 1', 'new question 2', 'new question 3', 'cached before the outage', 'new question 4']) outcomes.push({ q, ...(await ask(q)) });
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    reportFigures('cache-down', {
      statuses: outcomes.map((o) => o.status),
      msEach: outcomes.map((o) => o.ms),
      cacheErrorMetrics: metrics.split('\n').filter((l) => /cache/i.test(l) && /error/i.test(l) && !l.startsWith('#')),
    });
    expect(outcomes.map((o) => o.status)).toEqual(outcomes.map(() => 200));
    for (const o of outcomes) expect((JSON.parse(o.body) as Completion).usage.completion_tokens).toBe(6);
    expect((JSON.parse(outcomes[3]?.body ?? '{}') as Completion).choices[0]?.message.content).toBe(answer);
  }, 180_000);
});
