import { existsSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';

/**
 * What the WebChat browser tests share: Debian's Chromium (headless, through playwright-core),
 * and how a test reads and types in botframework-webchat's transcript.
 */

export const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';

/** Screenshots the browser tests keep (gitignored). */
export const ARTIFACTS = path.resolve('test/artifacts');

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `this test needs Chromium at ${CHROMIUM} (apt-get install -y chromium; .ci/run installs it)`,
    );
  }
  return chromium.launch({
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
}

/** Web Chat renders text as Markdown, which curls apostrophes: match either form. */
export const shown = (text: string) =>
  new RegExp('^' + text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/'/g, "['’]") + '$');

/** A message bubble of the transcript (Web Chat also keeps screen-reader copies of each message). */
export const bubble = (page: Page, text: string) =>
  page.locator('.webchat__bubble__content').getByText(shown(text));

/**
 * Waits for a bubble; on a timeout the error says what the page showed instead (the transcript,
 * each activity's send status such as "Send failed. Retry", the connectivity notice, the page's
 * own errors), so a failure in a loaded CI run can be told apart: message never sent, reply never
 * pushed, or reply shown under another text.
 */
export async function waitForBubble(
  page: Page,
  text: string,
  timeoutMs: number,
  pageErrors: readonly string[] = [],
): Promise<void> {
  const started = Date.now();
  try {
    await bubble(page, text).waitFor({ timeout: timeoutMs });
  } catch (e) {
    const statuses = await page
      .locator('.webchat__activity-status, .webchat__connectivityStatus')
      .allInnerTexts()
      .catch(() => ['(unreadable)']);
    throw new Error(
      [
        `no bubble "${text}" after ${Date.now() - started} ms (${String(e).split('\n')[0]})`,
        `transcript: ${JSON.stringify(await bubbleTexts(page).catch(() => ['(unreadable)']))}`,
        `statuses: ${JSON.stringify(statuses.map((t) => t.trim()).filter(Boolean))}`,
        `page errors: ${JSON.stringify(pageErrors)}`,
      ].join('\n'),
      { cause: e },
    );
  }
}

/**
 * Types `text` and sends it, then waits for its own bubble: Web Chat shows an outgoing message once
 * it is connected, before the runner answers, so a missing bubble means it was never sent (not
 * connected, or the send box lost the text), and the error says what the send box held. The send
 * box is a controlled input: a re-render while the page is still starting can empty it between
 * typing and Enter, so it is checked before Enter. `confirm: false` for a page that must not send.
 */
export async function say(
  page: Page,
  text: string,
  { confirm = true, timeoutMs = 15_000 }: { confirm?: boolean; timeoutMs?: number } = {},
): Promise<void> {
  const box = page.locator('[data-id="webchat-sendbox-input"]');
  await box.fill(text);
  if ((await box.inputValue()) !== text) await box.fill(text);
  await box.press('Enter');
  if (!confirm) return;
  try {
    await bubble(page, text).last().waitFor({ timeout: timeoutMs });
  } catch (e) {
    const held = await box.inputValue().catch(() => '(unreadable)');
    throw new Error(
      `"${text}" was not shown as sent after ${timeoutMs} ms; the send box holds ${JSON.stringify(held)}; ` +
        `transcript: ${JSON.stringify(await bubbleTexts(page).catch(() => ['(unreadable)']))}`,
      { cause: e },
    );
  }
}

/** The texts of the transcript's bubbles, in order, apostrophes uncurled. */
export async function bubbleTexts(page: Page): Promise<string[]> {
  return (await page.locator('.webchat__bubble__content').allInnerTexts()).map((t) =>
    t.trim().replace(/’/g, "'"),
  );
}
