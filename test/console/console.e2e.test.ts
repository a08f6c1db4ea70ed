import { join } from 'node:path';
import { Redis } from 'ioredis';
import { type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DECISION_TTL_S, type DecisionRecord } from '@fastvlm/autoscaling';
import { RedisKeys, poolQueue } from '@fastvlm/contracts';
import { ARTIFACTS, launchChromium, openConsole, pageErrors } from '../support/browser';
import { auth, chatBody, png, postJson } from '../support/requests';
import { API_KEYS, REDIS_URL, cleanupPrefix, startGateway, startWorker, stopWorker, uniquePrefix, until, type GatewayHandle, type WorkerProcess } from '../support/stack';

const STREAM_TIMEOUT_MS = 60_000;

interface Completion {
  choices: { message: { content: string } }[];
  usage: { completion_tokens: number };
}

/** Records every text the answer shows while it streams (page scripts run in the browser, hence a string). */
// Rebuilds the answer from each DOM mutation record rather than reading textContent when the observer fires:
// deltas that arrive in one network read are appended in one task, and the observer sees them all at once.
const WATCH_ANSWER = `(() => {
  const out = document.getElementById('answer');
  const states = (window.__answerStates = []);
  let shown = out.textContent;
  new MutationObserver((records) => {
    for (const r of records) {
      // The playground removes nodes only when it clears the answer for a new question.
      if (r.removedNodes.length > 0) shown = '';
      for (const n of r.addedNodes) shown += n.textContent;
      states.push(shown);
    }
  }).observe(out, { childList: true });
})()`;

/** A scaler tick as apps/scaler records it (libs/autoscaling/src/signals/layout.ts). */
const DECISION: DecisionRecord = {
  at: Date.now(),
  queue: poolQueue('tiny-random'),
  scaledObject: 'fastvlm/worker',
  strategy: 'predictive',
  desired: { conservative: 2, aggressive: 5, adaptive: 3, predictive: 4 },
  mode: 'panic',
  forecastRps: null,
  active: true,
  signals: {
    queued: 12,
    active: 8,
    ready: 2,
    loading: 1,
    arrivalsPerSecond: 3.5,
    replicaCapacity: 1.25,
    replicaCapacityMeasured: true,
    startupSeconds: 42,
    startupMeasured: false,
  },
};

describe('web console at /console in headless Chromium', () => {
  const prefix = uniquePrefix();
  let gw: GatewayHandle;
  let worker: WorkerProcess;
  let browser: Browser;
  let image: Buffer;

  beforeAll(async () => {
    [gw, worker, image, browser] = await Promise.all([startGateway(prefix), startWorker(prefix), png(96, 72, 31), launchChromium()]);
  });
  afterAll(async () => {
    await browser?.close();
    await gw?.close();
    if (worker) await stopWorker(worker);
    await cleanupPrefix(prefix);
  });

  async function open(context: BrowserContext, view: 'playground' | 'cluster' = 'playground'): Promise<Page> {
    const { page, response } = await openConsole(context, gw.url, view, API_KEYS.acme);
    expect(response?.headers()['content-security-policy']).toContain("script-src 'self'");
    // The key typed and entered is stored for this tab only.
    expect(await page.evaluate(`sessionStorage.getItem('fastvlm.apiKey')`)).toBe(API_KEYS.acme);
    expect(await page.evaluate('localStorage.length')).toBe(0);
    return page;
  }

  async function expectText(page: Page, selector: string, pattern: RegExp): Promise<void> {
    await page.locator(selector).filter({ hasText: pattern }).first().waitFor({ timeout: STREAM_TIMEOUT_MS });
  }

  /** Asks and waits for the end of the stream; returns the final text and every intermediate one. */
  async function ask(page: Page, question: string, maxTokens: number): Promise<{ text: string; states: string[] }> {
    await page.locator('#question').fill(question);
    await page.locator('#max-tokens').fill(String(maxTokens));
    await page.evaluate(WATCH_ANSWER);
    await page.locator('#ask').press('Enter');
    await page.locator('#answer[data-state="done"]').waitFor({ timeout: STREAM_TIMEOUT_MS });
    const states = await page.evaluate<string[]>('window.__answerStates');
    return { text: (await page.locator('#answer').textContent()) ?? '', states };
  }

  it('playground: keyboard-chosen image, streamed answer equal to the API answer, with TTFT, tokens/s and usage', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    try {
      const page = await open(context);
      // Keyboard only: focus the drop zone and press Enter to open the file chooser.
      await page.locator('#drop-zone').focus();
      const chooser = page.waitForEvent('filechooser');
      // A round trip after subscribing: the browser intercepts the chooser before the key is pressed.
      await page.evaluate('0');
      await page.keyboard.press('Enter');
      await (await chooser).setFiles({ name: 'gradient.png', mimeType: 'image/png', buffer: image });
      await page.locator('#preview:not([hidden])').waitFor();
      await expectText(page, '#image-name', /gradient\.png/);

      const question = 'What do you see in this picture?';
      const { text, states } = await ask(page, question, 24);
      expect(text.length).toBeGreaterThan(0);
      // Token by token: each delta was appended on its own, giving several growing prefixes of the final text.
      const distinct = [...new Set(states.filter((s) => s.length > 0))];
      expect(distinct.length).toBeGreaterThan(3);
      for (const s of distinct) expect(text.startsWith(s)).toBe(true);

      // The same request through the API, for another tenant (so the cache cannot answer it), gives the same text.
      const res = await postJson(`${gw.url}/v1/chat/completions`, chatBody(image, question, { max_tokens: 24 }), auth('globex'));
      expect(res.headers.get('x-cache')).toBe('miss');
      const api = (await res.json()) as Completion;
      expect(text).toBe(api.choices[0]?.message.content);

      await expectText(page, '#stat-ttft', /\d+(\.\d+)? (ms|s)$/);
      expect(await page.locator('#stat-tps').textContent()).toMatch(/^\d+(\.\d+)?$/);
      expect(await page.locator('#stat-completion').textContent()).toBe(String(api.usage.completion_tokens));
      expect(Number(await page.locator('#stat-prompt').textContent())).toBeGreaterThan(16);
      expect(await page.locator('#stat-cache').textContent()).toBe('miss');
      expect(await page.locator('#stat-job').textContent()).toMatch(/^job_[A-Za-z0-9_-]+$/);
      await page.screenshot({ path: join(ARTIFACTS, 'console-playground.png'), fullPage: true });

      // The cluster view lists this job of the key's tenant as succeeded, with the live queue and the worker.
      const jobId = (await page.locator('#stat-job').textContent()) ?? '';
      await page.locator('#nav-cluster').press('Enter');
      // The view changes on the hashchange event that follows the link, not within press().
      await expect.poll(() => page.evaluate('document.activeElement && document.activeElement.id'), { timeout: 5_000 }).toBe('h-cluster');
      await page.locator(`#jobs tr[data-job-id="${jobId}"] .status.succeeded`).waitFor({ timeout: 10_000 });
      await expectText(page, '#workers', /tiny-random/);
      await expectText(page, '#queue-cards [data-state="completed"] dd', /^[1-9]\d*$/);
      // Traffic while the view polls moves its charts (the second poll gives the first interval).
      await until('the charts to show the traffic', async () => {
        await postJson(`${gw.url}/v1/chat/completions`, chatBody(image, `traffic ${Date.now()}`, { max_tokens: 4 }));
        // Both legends of one render, read together.
        const [latency = '', throughput = ''] = await page.evaluate<string[]>(
          `['chart-latency-text', 'chart-throughput-text'].map((id) => document.getElementById(id).textContent)`,
        );
        return /p50: \d/.test(latency) && Number(/this gateway\): ([\d.]+)/.exec(throughput)?.[1]) > 0;
      });
      await page.locator('#chart-throughput polyline').first().waitFor({ state: 'attached', timeout: 10_000 });
      await page.screenshot({ path: join(ARTIFACTS, 'console-cluster.png'), fullPage: true });
      expect(pageErrors(page)).toEqual([]);
      await page.close();
    } finally {
      await context.close();
    }
  });

  it('on a phone-sized screen: a dropped image, a streamed answer, and both views without sideways scrolling', async () => {
    const context = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
    try {
      const page = await open(context);
      const dropped = await page.evaluateHandle(`(() => {
        const bytes = Uint8Array.from(atob('${image.toString('base64')}'), (c) => c.charCodeAt(0));
        const dt = new DataTransfer();
        dt.items.add(new File([bytes], 'dropped.png', { type: 'image/png' }));
        return dt;
      })()`);
      await page.dispatchEvent('#drop-zone', 'drop', { dataTransfer: dropped });
      await expectText(page, '#image-name', /dropped\.png/);
      const { text } = await ask(page, 'Describe it briefly.', 8);
      expect(text.length).toBeGreaterThan(0);
      const fits = 'document.documentElement.scrollWidth <= window.innerWidth';
      expect(await page.evaluate(fits)).toBe(true);
      await page.screenshot({ path: join(ARTIFACTS, 'console-playground-phone.png'), fullPage: true });

      await page.locator('#nav-cluster').click();
      await page.locator('#jobs tbody tr[data-job-id]').first().waitFor({ timeout: 10_000 });
      await expectText(page, '#chart-latency-text', /p50/);
      expect(await page.evaluate(fits)).toBe(true);
      await page.screenshot({ path: join(ARTIFACTS, 'console-cluster-phone.png'), fullPage: true });
      expect(pageErrors(page)).toEqual([]);
      await page.close();
    } finally {
      await context.close();
    }
  });

  it("cluster view: the Autoscaler panel shows the scaler's decision, follows the next one, and says when no scaler reports", async () => {
    const redis = new Redis(REDIS_URL);
    const decisionKey = new RedisKeys(prefix).autoscale(poolQueue('tiny-random'), 'decision');
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const texts = (page: Page, selector: string): Promise<string[]> => page.locator(selector).allTextContents();
    try {
      await redis.set(decisionKey, JSON.stringify(DECISION), 'EX', DECISION_TTL_S);
      const page = await open(context, 'cluster');
      await page.locator('#autoscaler-desired tr.chosen[data-strategy="predictive"]').waitFor({ timeout: 10_000 });
      expect(await texts(page, '#autoscaler-desired tbody tr')).toEqual(['conservative2', 'aggressive5', 'adaptive3', 'predictive chosen4']);
      expect(await page.locator('#autoscaler-desired tr.chosen').count()).toBe(1);
      expect(await texts(page, '#autoscaler-decision dd')).toEqual(['predictive', '4', 'panic', 'learning']);
      expect(await texts(page, '#autoscaler-decision dt')).toEqual(['strategy', 'desired replicas', 'mode', 'forecast']);
      expect(await texts(page, '#autoscaler-signals dt')).toEqual(['queued', 'active', 'ready', 'loading', 'arrivals/s', 'capacity / replica', 'start-up']);
      expect(await texts(page, '#autoscaler-signals dd')).toEqual(['12', '8', '2', '1', '3.5', '1.25 jobs/s (measured)', '42 s (prior)']);
      expect(await page.locator('#autoscaler-status').textContent()).toMatch(/^Decision for fastvlm\/worker on queue inference-tiny-random at .+ · queue active$/);
      await page.locator('#h-autoscaler').scrollIntoViewIfNeeded();
      await page.screenshot({ path: join(ARTIFACTS, 'console-autoscaler.png'), fullPage: true });
      await page.locator('section[aria-labelledby="h-autoscaler"]').screenshot({ path: join(ARTIFACTS, 'console-autoscaler-panel.png') });

      // The scaler's next tick: another strategy chosen, calm again, a forecast learned, capacity not measured yet.
      const next: DecisionRecord = {
        ...DECISION,
        at: Date.now(),
        strategy: 'adaptive',
        desired: { conservative: 1, aggressive: 3, adaptive: 2, predictive: 2 },
        mode: 'stable',
        forecastRps: 2.75,
        active: false,
        signals: { ...DECISION.signals, queued: 0, active: 0, arrivalsPerSecond: 0.25, replicaCapacity: 1, replicaCapacityMeasured: false, startupSeconds: 37.5, startupMeasured: true },
      };
      await redis.set(decisionKey, JSON.stringify(next), 'EX', DECISION_TTL_S);
      await page.locator('#autoscaler-desired tr.chosen[data-strategy="adaptive"]').waitFor({ timeout: 10_000 });
      expect(await texts(page, '#autoscaler-desired tbody tr')).toEqual(['conservative1', 'aggressive3', 'adaptive chosen2', 'predictive2']);
      expect(await texts(page, '#autoscaler-decision dd')).toEqual(['adaptive', '2', 'stable', '2.75/s']);
      expect(await texts(page, '#autoscaler-signals dd')).toEqual(['0', '0', '2', '1', '0.25', '1 jobs/s (prior)', '37.5 s (measured)']);
      expect(await page.locator('#autoscaler-status').textContent()).toMatch(/ · queue idle$/);

      // The scaler stopped: its record expires, and the panel says so instead of showing a stale decision.
      await redis.del(decisionKey);
      await expectText(page, '#autoscaler-status', /^No scaler is reporting: no decision in the last 30 s\. Start one with npm start, which runs the scaler/);
      expect(await page.locator('#autoscaler-body').isHidden()).toBe(true);
      expect(await page.locator('#autoscaler-status code').textContent()).toBe('npm start');
      await page.screenshot({ path: join(ARTIFACTS, 'console-autoscaler-none.png'), fullPage: true });
      expect(pageErrors(page)).toEqual([]);
      await page.close();
    } finally {
      await context.close();
      await redis.del(decisionKey);
      redis.disconnect();
    }
  });

  it('says what is wrong with a bad key instead of failing silently', async () => {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await page.goto(`${gw.url}/console/#cluster`);
      await page.locator('#api-key').fill('not-a-valid-key-0000000000');
      await page.locator('#api-key').press('Enter');
      await expectText(page, '#cluster-status', /Could not read the cluster/);
    } finally {
      await context.close();
    }
  });
});
