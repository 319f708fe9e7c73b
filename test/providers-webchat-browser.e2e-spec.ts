import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CARD_FLOW,
  QUESTION,
  startProviderApp,
  WELCOME,
  type ProviderApp,
} from './support/fakes/provider-harness.js';
import type { MessageEnvelope } from '../src/core/message-envelope.js';
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
    // Web Chat reports a post the runner refused only on the console ("Failed to post activity").
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    const stream = watchStream(page);
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
      // The submit is hidden (a postBack) and the statuses shown are the other activities', so a
      // timeout says where the reply stopped: never posted, refused, or not streamed. 30 s: had the
      // stream dropped, DirectLineJS reconnects (from its watermark) after a random 3 to 15 s.
      await waitForBubble(page, 'action=close', 30_000, errors).catch((e: Error) => {
        throw new Error(
          [
            e.message,
            `runner received: ${JSON.stringify(
              h
                .envelopes()
                .filter((x) => x.channel === 'cardchat')
                .map(received),
            )}`,
            `runner warnings: ${JSON.stringify(h.warnings().map((w) => w.msg))}`,
            `stream: ${JSON.stringify(stream)}`,
          ].join('\n'),
          { cause: e },
        );
      });
      const submitted = h.envelopes().find((e) => e.channel === 'cardchat' && e.action);
      expect(submitted).toMatchObject({
        locale: 'de-DE',
        action: { type: 'value', action_id: 'close', ticket: 'INC-7' },
      });
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  }, 90_000);
});

/** What reached the runner's bus: a text, or the card action it carried. */
function received(e: MessageEnvelope): string {
  return e.action ? `action ${String(e.action['action_id'])}` : `text ${JSON.stringify(e.text)}`;
}

/**
 * The page's Direct Line WebSockets as they happen: opened, closed, and each activity pushed
 * (who sent it, and its text, card or submitted value), with ms since the watch began.
 */
function watchStream(page: Page): string[] {
  const seen: string[] = [];
  const t0 = Date.now();
  const at = (what: string) => seen.push(`+${Date.now() - t0}ms ${what}`);
  page.on('websocket', (ws) => {
    const watermark = /[?&]watermark=(\d+)/.exec(ws.url())?.[1];
    at(watermark === undefined ? 'open' : `open after watermark ${watermark}`);
    ws.on('close', () => at('closed'));
    ws.on('framereceived', (f) => {
      let set: { activities?: Record<string, unknown>[] };
      try {
        set = JSON.parse(String(f.payload)) as typeof set;
      } catch {
        at('unreadable frame');
        return;
      }
      for (const a of set.activities ?? []) {
        const role = (a['from'] as { role?: string } | undefined)?.role ?? '?';
        const card = Array.isArray(a['attachments']) && a['attachments'].length > 0;
        at(
          `${role} ${a['text'] ? JSON.stringify(a['text']) : a['value'] ? 'value' : card ? 'card' : String(a['type'])}`,
        );
      }
    });
  });
  return seen;
}
