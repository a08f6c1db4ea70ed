import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import OpenAI, { toFile } from 'openai';
import { type Browser, type BrowserContext, type Locator, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisKeys } from '@fastvlm/contracts';
import { ARTIFACTS, launchChromium, openConsole, pageErrors } from '../support/browser';
import { auth, dataUrl, png } from '../support/requests';
import { API_KEYS, REDIS_URL, cleanupPrefix, startGateway, startWorker, stopWorker, until, uniquePrefix, type GatewayHandle, type WorkerProcess } from '../support/stack';

const BATCH_TIMEOUT_MS = 90_000;

const request = (customId: string, image: Buffer, text: string) => ({
  custom_id: customId,
  method: 'POST',
  url: '/v1/chat/completions',
  body: { model: 'tiny-random', max_tokens: 6, messages: [{ role: 'user', content: [{ type: 'text', text }, { type: 'image_url', image_url: { url: dataUrl(image) } }] }] },
});
const jsonl = (lines: unknown[]): string => `${lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n')}\n`;

describe('web console: the Batches view in headless Chromium', () => {
  const prefix = uniquePrefix();
  const filesDir = mkdtempSync(join(tmpdir(), 'fastvlm-console-files-'));
  let gw: GatewayHandle;
  let worker: WorkerProcess;
  let browser: Browser;
  let acme: OpenAI;
  let images: Buffer[];

  beforeAll(async () => {
    [gw, worker, browser, images] = await Promise.all([
      startGateway(prefix, { FILES_DIR: filesDir, BATCH_TICK_MS: '50', BATCH_SEGMENT_LINES: '5' }),
      startWorker(prefix),
      launchChromium(),
      Promise.all([0, 1, 2].map((i) => png(40, 32, 500 + i))),
    ]);
    acme = new OpenAI({ apiKey: API_KEYS.acme, baseURL: `${gw.url}/v1`, maxRetries: 0 });
  });
  afterAll(async () => {
    await browser?.close();
    await gw?.close();
    if (worker) await stopWorker(worker);
    await cleanupPrefix(prefix);
    rmSync(filesDir, { recursive: true, force: true });
  });

  const open = async (context: BrowserContext, key: string = API_KEYS.acme): Promise<Page> => (await openConsole(context, gw.url, 'batches', key)).page;

  async function createBatch(lines: unknown[], name: string): Promise<OpenAI.Batch> {
    const file = await acme.files.create({ file: await toFile(Buffer.from(jsonl(lines)), name), purpose: 'batch' });
    return acme.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
  }

  const rowOf = (page: Page, id: string): Locator => page.locator(`tr[data-batch-id="${id}"]`);

  it('shows a new batch without a reload, its progress up to the total, and downloads its output file', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
    try {
      const page = await open(context);
      const empty = page.getByTestId('batches-empty');
      await empty.waitFor();
      expect(await empty.textContent()).toMatch(/No batches yet/);
      expect(await page.getByTestId('batches-table').isHidden()).toBe(true);
      await page.screenshot({ path: join(ARTIFACTS, 'console-batches-empty.png'), fullPage: true });

      // Created while the view is open: only its polling can bring the row in.
      const lines = Array.from({ length: 12 }, (_, i) => request(`req-${i}`, images[i % 3] as Buffer, `What is in picture ${i}?`));
      const created = await createBatch(lines, 'questions.jsonl');
      const row = rowOf(page, created.id);
      await row.waitFor({ timeout: 10_000 });
      expect(await empty.isHidden()).toBe(true);
      await page.locator(`tr[data-batch-id="${created.id}"][data-status="completed"]`).waitFor({ timeout: BATCH_TIMEOUT_MS });

      const done = await acme.batches.retrieve(created.id);
      const counts = done.request_counts ?? { total: -1, completed: -1, failed: -1 };
      expect(counts.total).toBe(12);
      expect(await row.getByTestId('batch-progress-text').textContent()).toBe(`${counts.completed} done · ${counts.failed} failed / ${counts.total}`);
      const bar = row.getByTestId('batch-progress');
      expect(await bar.getAttribute('aria-valuenow')).toBe(String(counts.completed + counts.failed));
      expect(await bar.getAttribute('aria-valuemax')).toBe(String(counts.total));
      // Widths set through CSSOM (the CSP refuses style attributes in markup) still show in the attribute.
      expect(await row.locator('.progress-done').getAttribute('style')).toBe(`width: ${(100 * counts.completed) / counts.total}%;`);
      expect(await row.getByTestId('batch-status').textContent()).toBe('completed');
      expect(await row.locator('td').nth(3).innerText()).toMatch(/^24h\nends \w+ \d+, /);
      expect(await row.getByTestId('batch-cancel').isHidden()).toBe(true);
      expect(await row.getByTestId('batch-download-errors').isHidden()).toBe(true);
      expect(await row.getByTestId('batch-at-risk').count()).toBe(0);

      // The download goes through fetch with the key, then a Blob URL: the file is the API's, byte for byte.
      const outputId = done.output_file_id ?? '';
      const api = await fetch(`${gw.url}/v1/files/${outputId}/content`, { headers: auth('acme') });
      expect(api.status).toBe(200);
      const expected = await api.text();
      const downloading = page.waitForEvent('download');
      await row.getByTestId('batch-download-output').click();
      const download = await downloading;
      expect(download.suggestedFilename()).toBe(`${created.id}_output.jsonl`);
      const saved = readFileSync(await download.path()).toString('utf8');
      expect(saved).toBe(expected);
      expect(saved.trim().split('\n')).toHaveLength(12);
      await page.screenshot({ path: join(ARTIFACTS, 'console-batches.png'), fullPage: true });

      // On a phone the table scrolls inside its frame; the page itself does not scroll sideways.
      await page.setViewportSize({ width: 390, height: 844 });
      expect(await page.evaluate('document.documentElement.scrollWidth <= window.innerWidth')).toBe(true);
      await page.screenshot({ path: join(ARTIFACTS, 'console-batches-phone.png'), fullPage: true });
      expect(pageErrors(page)).toEqual([]);
      await page.close();
    } finally {
      await context.close();
    }
  });

  it('shows the validation errors of a failed batch with their line numbers', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    try {
      const lines = [request('a', images[0] as Buffer, 'fine'), '{not json', request('a', images[1] as Buffer, 'duplicate id')];
      const created = await createBatch(lines, 'bad.jsonl');
      const page = await open(context);
      const row = rowOf(page, created.id);
      await page.locator(`tr[data-batch-id="${created.id}"][data-status="failed"]`).waitFor({ timeout: BATCH_TIMEOUT_MS });
      const errors = (await acme.batches.retrieve(created.id)).errors?.data ?? [];
      expect(errors.map((e) => [e.line, e.code])).toEqual([
        [2, 'invalid_json_line'],
        [3, 'duplicate_custom_id'],
      ]);
      expect(await row.locator('.tag.bad').textContent()).toBe('2 errors');
      expect(await row.getByTestId('batch-progress-text').textContent()).toBe('no requests');
      expect(await row.getByTestId('batch-download-output').isHidden()).toBe(true);

      // Closed until opened; the toggle says which.
      const details = page.locator(`#batch-details-${created.id}`);
      expect(await details.isHidden()).toBe(true);
      const toggle = row.getByTestId('batch-toggle');
      await toggle.click();
      await details.waitFor();
      expect(await toggle.getAttribute('aria-expanded')).toBe('true');
      const table = details.getByTestId('batch-errors');
      const column = (n: number): Promise<string[]> => table.locator(`tbody td:nth-child(${n})`).allTextContents();
      expect(await column(1)).toEqual(errors.map((e) => String(e.line)));
      expect(await column(2)).toEqual(errors.map((e) => e.code));
      expect(await column(3)).toEqual(errors.map((e) => (e.param ? `${e.message} (${e.param})` : e.message)));
      expect(await table.locator('tbody tr[data-line="3"] td').nth(1).textContent()).toBe('duplicate_custom_id');
      // Still open after the next polls redraw the row.
      await page.getByTestId('batches-status').filter({ hasNotText: await page.getByTestId('batches-status').innerText() }).waitFor({ timeout: 10_000 });
      expect(await details.isVisible()).toBe(true);
      await row.scrollIntoViewIfNeeded();
      await page.screenshot({ path: join(ARTIFACTS, 'console-batches-failed.png'), fullPage: true });
      expect(pageErrors(page)).toEqual([]);
      await page.close();
    } finally {
      await context.close();
    }
  });

  it('says what is wrong when the API refuses the key', async () => {
    const context = await browser.newContext();
    try {
      const page = await open(context, 'not-a-valid-key-0000000000');
      await page.getByTestId('batches-error').filter({ hasText: /^Could not list the batches: .+ \(\w+\)$/ }).waitFor({ timeout: 10_000 });
      expect(await page.getByTestId('batches-table').isHidden()).toBe(true);
    } finally {
      await context.close();
    }
  });

  // Last: it stops the worker, so that the batch stays in progress until the page cancels it.
  it('marks a batch whose window is at risk, and cancels a running batch from its row', async () => {
    const redis = new Redis(REDIS_URL);
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    try {
      await stopWorker(worker);
      const created = await createBatch([0, 1, 2].map((i) => request(`r-${i}`, images[i] as Buffer, `no worker ${i}`)), 'stuck.jsonl');
      await until('the batch to run', async () => (await acme.batches.retrieve(created.id)).status === 'in_progress', BATCH_TIMEOUT_MS);
      const page = await open(context);
      const row = rowOf(page, created.id);
      await page.locator(`tr[data-batch-id="${created.id}"][data-status="in_progress"]`).waitFor({ timeout: 10_000 });
      expect(await row.getByTestId('batch-progress-text').textContent()).toBe('0 done · 0 failed / 3');
      expect(await row.getByTestId('batch-at-risk').count()).toBe(0);

      // The runner's projection (Unix ms in the batch's record), an hour past the window's end: the next poll marks it.
      expect(created.expires_at).toBeGreaterThan(0);
      await redis.hset(new RedisKeys(prefix).batch(created.id), 'projected_at', ((created.expires_at ?? 0) + 3600) * 1000);
      await row.getByTestId('batch-at-risk').waitFor({ timeout: 10_000 });
      // An extension of this gateway's Batch object, which the SDK's type does not know.
      const risky = (await acme.batches.retrieve(created.id)) as OpenAI.Batch & { completion_window_at_risk: boolean };
      expect(risky.completion_window_at_risk).toBe(true);
      await row.getByTestId('batch-toggle').click();
      expect(await page.locator(`#batch-details-${created.id}`).textContent()).toMatch(/Projected end.*ends after its completion window/);
      await page.screenshot({ path: join(ARTIFACTS, 'console-batches-at-risk.png'), fullPage: true });

      await row.getByTestId('batch-cancel').click();
      await page.locator(`tr[data-batch-id="${created.id}"][data-status="cancelled"]`).waitFor({ timeout: BATCH_TIMEOUT_MS });
      const done = await acme.batches.retrieve(created.id);
      expect(done.status).toBe('cancelled');
      expect(await row.getByTestId('batch-cancel').isHidden()).toBe(true);
      // Ended: no projection, no marker; every request is a batch_cancelled line of its error file.
      expect(await row.getByTestId('batch-at-risk').count()).toBe(0);
      expect(await row.getByTestId('batch-progress-text').textContent()).toBe(`0 done · 3 failed / 3`);
      expect(done.error_file_id).not.toBeNull();
      const downloading = page.waitForEvent('download');
      await row.getByTestId('batch-download-errors').click();
      const download = await downloading;
      expect(download.suggestedFilename()).toBe(`${created.id}_error.jsonl`);
      const saved = readFileSync(await download.path()).toString('utf8');
      expect(saved).toBe(await (await acme.files.content(done.error_file_id ?? '')).text());
      expect(pageErrors(page)).toEqual([]);
      await page.close();
    } finally {
      await context.close();
      redis.disconnect();
    }
  });
});
