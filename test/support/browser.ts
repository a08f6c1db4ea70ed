import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page, type Response } from 'playwright-core';
import { expect } from 'vitest';
import { ROOT } from './stack';

/** Debian's chromium package (installed by .ci/run), driven over CDP by playwright-core. */
const CHROMIUM = '/usr/bin/chromium';
/** Screenshots for a person to look at after a run (ignored by git). */
export const ARTIFACTS = join(ROOT, 'test-artifacts');

/** Errors each page reported (script errors, CSP refusals, failed loads), for a test to check before the page closes. */
const reported = new WeakMap<Page, string[]>();

export function pageErrors(page: Page): string[] | undefined {
  return reported.get(page);
}

/** Headless Chromium; the screenshots folder exists once it runs, since screenshots are what the tests take with it. */
export async function launchChromium(): Promise<Browser> {
  mkdirSync(ARTIFACTS, { recursive: true });
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
}

/**
 * Opens the console at a view and enters the key as a user would (typed, then
 * Enter). Returns the page's response for the checks of its headers.
 */
export async function openConsole(context: BrowserContext, gatewayUrl: string, view: string, key: string): Promise<{ page: Page; response: Response | null }> {
  const page = await context.newPage();
  const errors: string[] = [];
  reported.set(page, errors);
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  const response = await page.goto(`${gatewayUrl}/console/#${view}`);
  expect(response?.status()).toBe(200);
  await page.locator('#api-key').fill(key);
  await page.locator('#api-key').press('Enter');
  await page.locator('#key-status').filter({ hasText: /Key set/ }).waitFor();
  return { page, response };
}
