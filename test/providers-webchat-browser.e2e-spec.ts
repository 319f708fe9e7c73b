import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CARD_FLOW,
  QUESTION,
  startProviderApp,
  WELCOME,
  type ProviderApp,
} from './support/fakes/provider-harness.js';
import { ARTIFACTS, bubbleTexts, launchChromium, say, waitForBubble } from './support/webchat-browser.js';

/**
 * The WebChat page in a real browser: Debian's Chromium, headless, on a phone-sized screen, holds
 * the two-turn demo conversation through botframework-webchat and the runner's Direct Line.
 */

let h: ProviderApp;
let browser: Browser;

beforeAll(async () => {
  browser = await launchChromium();
  h = await startProviderApp({
    channels: {
      webchat: {
        provider: 'webchat',
        settings: { title: 'Weather bot', bot_name: 'Weather' },
        secret_refs: { directline_secret: 'webchat_directline_secret' },
      },
      cardchat: {
        provider: 'webchat',
        flow: 'card',
        settings: { title: 'Tickets', bot_name: 'Tickets' },
        secret_refs: { directline_secret: 'webchat_directline_secret' },
      },
    },
    flows: { 'card.ygtc': CARD_FLOW },
    secrets: { webchat_directline_secret: 'dl-secret-browser-0123456789' },
  });
});

afterAll(async () => {
  await browser?.close();
  await h?.close();
});

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
      await waitForBubble(page, WELCOME, 15_000, errors);
      await waitForBubble(page, QUESTION, 15_000, errors);

      await say(page, 'Paris');
      const forecast = await h.forecast('Paris');
      await waitForBubble(page, forecast, 15_000, errors);

      // The transcript shows both turns in order, and the layout fits the phone's width.
      // (Bubbles, not the transcript's text: its live region may repeat the latest reply first.)
      expect(await bubbleTexts(page)).toEqual(['hi', WELCOME, QUESTION, 'Paris', forecast]);
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

  it('renders an Adaptive Card reply, and a click on its Action.Submit comes back into the flow with the browser locale', async () => {
    const context = await browser.newContext({ viewport: { width: 390, height: 844 }, locale: 'de-DE' });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    try {
      await page.goto(`${h.url}/webchat/acme/dev/default/cardchat`);
      await page.locator('[data-id="webchat-sendbox-input"]').waitFor({ timeout: 20_000 });
      await say(page, 'hi');
      const card = page.locator('.ac-adaptiveCard').filter({ hasText: 'Ticket INC-7' });
      await card.waitFor({ timeout: 15_000 });
      expect(await card.innerText()).toContain('Status');
      mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: path.join(ARTIFACTS, 'webchat-adaptive-card.png') });

      await card.getByRole('button', { name: 'Close' }).click();
      await waitForBubble(page, 'action=close', 15_000, errors);
      const submitted = h.envelopes().find((e) => e.channel === 'cardchat' && e.action);
      expect(submitted).toMatchObject({
        locale: 'de-DE',
        action: { type: 'value', action_id: 'close', ticket: 'INC-7' },
      });
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  });
});
