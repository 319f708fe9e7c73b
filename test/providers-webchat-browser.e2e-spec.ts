import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QUESTION, startProviderApp, WELCOME, type ProviderApp } from './support/fakes/provider-harness.js';

/**
 * The WebChat page in a real browser: Debian's Chromium, headless, on a phone-sized screen, holds
 * the two-turn demo conversation through botframework-webchat and the runner's Direct Line.
 */

const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
const ARTIFACTS = path.resolve('test/artifacts');

let h: ProviderApp;
let browser: Browser;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `this test needs Chromium at ${CHROMIUM} (apt-get install -y chromium; .ci/run installs it)`,
    );
  }
  h = await startProviderApp({
    channels: {
      webchat: {
        provider: 'webchat',
        settings: { title: 'Weather bot', bot_name: 'Weather' },
        secret_refs: { directline_secret: 'webchat_directline_secret' },
      },
    },
    secrets: { webchat_directline_secret: 'dl-secret-browser-0123456789' },
  });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
});

afterAll(async () => {
  await browser?.close();
  await h?.close();
});

/** Web Chat renders text as Markdown, which curls apostrophes: match either form. */
const shown = (text: string) =>
  new RegExp('^' + text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/'/g, "['’]") + '$');

/** A message bubble of the transcript (Web Chat also keeps screen-reader copies of each message). */
const bubble = (page: Page, text: string) => page.locator('.webchat__bubble__content').getByText(shown(text));

async function say(page: Page, text: string): Promise<void> {
  const box = page.locator('[data-id="webchat-sendbox-input"]');
  await box.fill(text);
  await box.press('Enter');
}

describe('WebChat page in Chromium', () => {
  it('holds the two-turn demo conversation on a phone-sized screen', async () => {
    const context = await browser.newContext({
      viewport: { width: 390, height: 844 },
      deviceScaleFactor: 2,
      isMobile: true,
      hasTouch: true,
    });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    try {
      const res = await page.goto(`${h.url}/webchat/acme/dev/default/webchat`);
      expect(res?.status()).toBe(200);
      expect(await page.title()).toBe('Weather bot');
      await page.locator('[data-id="webchat-sendbox-input"]').waitFor({ timeout: 20_000 });

      await say(page, 'hi');
      await bubble(page, WELCOME).waitFor({ timeout: 15_000 });
      await bubble(page, QUESTION).waitFor({ timeout: 15_000 });

      await say(page, 'Paris');
      const forecast = await h.forecast('Paris');
      await bubble(page, forecast).waitFor({ timeout: 15_000 });

      // The transcript shows both turns in order, and the layout fits the phone's width.
      const transcript = (await page.locator('.webchat__basic-transcript').first().innerText()).replace(
        /’/g,
        "'",
      );
      const order = [WELCOME, QUESTION, 'Paris', forecast].map((t) => transcript.indexOf(t));
      expect(order.every((i) => i >= 0)).toBe(true);
      expect([...order].sort((a, b) => a - b)).toEqual(order);
      // A string, so this file needs no DOM typings: it runs in the page.
      const overflow = Number(
        await page.evaluate('document.documentElement.scrollWidth - window.innerWidth'),
      );
      expect(overflow).toBeLessThanOrEqual(0);
      expect(errors).toEqual([]);

      mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: path.join(ARTIFACTS, 'webchat-two-turn.png') });
      expect(existsSync(path.join(ARTIFACTS, 'webchat-two-turn.png'))).toBe(true);
    } finally {
      await context.close();
    }
  });
});
