import { describe, expect, it } from 'vitest';
import { LATENCY_BUCKETS, METRICS, metricNames } from './catalogue';
import { GatewayMetrics } from './gateway-metrics';
import { WorkerMetrics } from './worker-metrics';

/** `name{labels} value` lines of a scrape, keyed by the series as written. */
function series(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const cut = line.lastIndexOf(' ');
    out.set(line.slice(0, cut), Number(line.slice(cut + 1)));
  }
  return out;
}

describe('metrics registry', () => {
  it('scrapes counters with _total, histograms with the catalogue buckets, and the values recorded', async () => {
    const m = new GatewayMetrics(undefined, ['tiny-random', 'tiny-random@other']);
    m.httpRequest('/v1/chat/completions', 'POST', 200, 0.3);
    m.httpRequest('/v1/chat/completions', 'POST', 200, 7);
    m.httpRequest('/v1/jobs/:id', 'GET', 404, 0.002);
    m.cacheLookup('tiny-random', 'answer_l1', true);
    m.rejected('unauthorized');
    const text = await m.scrape();
    expect(text).toContain('# TYPE fastvlm_requests_total counter');
    expect(text).toContain('# TYPE fastvlm_request_duration_seconds histogram');
    const s = series(text);
    expect(s.get('fastvlm_requests_total{route="/v1/chat/completions",method="POST",status="200"}')).toBe(2);
    expect(s.get('fastvlm_requests_total{route="/v1/jobs/:id",method="GET",status="404"}')).toBe(1);
    const bucket = (le: string) => s.get(`fastvlm_request_duration_seconds_bucket{route="/v1/chat/completions",method="POST",le="${le}"}`);
    expect(bucket('0.25')).toBe(0);
    expect(bucket('0.5')).toBe(1);
    expect(bucket('10')).toBe(2);
    expect(bucket('+Inf')).toBe(2);
    const les = [...s.keys()].filter((k) => k.startsWith('fastvlm_request_duration_seconds_bucket{route="/v1/chat')).length;
    expect(les).toBe(LATENCY_BUCKETS.length + 1);
    expect(s.get('fastvlm_request_duration_seconds_sum{route="/v1/chat/completions",method="POST"}')).toBeCloseTo(7.3);
    expect(s.get('fastvlm_cache_hits_total{model="tiny-random",level="answer_l1"}')).toBe(1);
    expect(s.get('fastvlm_cache_hits_total{model="tiny-random",level="answer_l2"}')).toBe(0);
    // Every configured model's series exists before its first lookup.
    expect(s.get('fastvlm_cache_hits_total{model="tiny-random@other",level="answer_l1"}')).toBe(0);
    expect(s.get('fastvlm_cache_misses_total{model="tiny-random@other",level="answer_l2"}')).toBe(0);
    expect(s.get('fastvlm_rejections_total{reason="unauthorized"}')).toBe(1);
  });

  it('reads scrape-time gauges once per scrape and leaves out a series whose read fails', async () => {
    const errors: unknown[] = [];
    const m = new GatewayMetrics((e) => errors.push(e));
    let reads = 0;
    m.observeQueues(() => {
      reads += 1;
      return Promise.resolve([
        { model: 'a', queue: 'inference-a', counts: { wait: 3, active: 1 }, oldestWaitSeconds: 2.5 },
        { model: 'b/c', queue: 'inference-b~2fc', counts: { wait: 0, active: 2 }, oldestWaitSeconds: 0 },
      ]);
    });
    m.observeWorkers(() => Promise.reject(new Error('redis is away')));
    const s = series(await m.scrape());
    expect(reads).toBe(1);
    expect(s.get('fastvlm_queue_depth{model="a",queue="inference-a",state="wait"}')).toBe(3);
    expect(s.get('fastvlm_queue_depth{model="b/c",queue="inference-b~2fc",state="active"}')).toBe(2);
    expect(s.get('fastvlm_queue_oldest_wait_seconds{model="a",queue="inference-a"}')).toBe(2.5);
    expect(s.get('fastvlm_queue_oldest_wait_seconds{model="b/c",queue="inference-b~2fc"}')).toBe(0);
    expect([...s.keys()].some((k) => k.startsWith('fastvlm_workers_alive'))).toBe(false);
    expect(errors).toHaveLength(1);
  });

  it('keeps the counts of two registries in one process apart', async () => {
    const a = new WorkerMetrics('tiny-random');
    const b = new WorkerMetrics('tiny-random');
    a.succeeded('length', 1.5, { promptTokens: 300, completionTokens: 12 });
    a.setModel('tiny-random', 'fp32', true);
    const sa = series(await a.scrape());
    const sb = series(await b.scrape());
    expect(sa.get('fastvlm_generation_tokens_total{model="tiny-random"}')).toBe(12);
    expect(sa.get('fastvlm_prompt_tokens_total{model="tiny-random"}')).toBe(300);
    expect(sa.get('fastvlm_request_success_total{model="tiny-random",finish_reason="length"}')).toBe(1);
    expect(sa.get('fastvlm_model_loaded{model="tiny-random",dtype="fp32"}')).toBe(1);
    expect(sb.get('fastvlm_generation_tokens_total{model="tiny-random"}')).toBe(0);
    expect(sb.has('fastvlm_model_loaded{model="tiny-random",dtype="fp32"}')).toBe(false);
  });

  it('names every metric with the fastvlm_ prefix, and counters with _total', () => {
    for (const m of Object.values(METRICS)) {
      expect(m.name).toMatch(/^fastvlm_[a-z0-9_]+$/);
      expect(m.name.endsWith('_total')).toBe(m.type === 'counter');
    }
    expect(metricNames('worker')).toContain('fastvlm_time_to_first_token_seconds');
    expect(metricNames('gateway')).not.toContain('fastvlm_time_to_first_token_seconds');
  });
});
