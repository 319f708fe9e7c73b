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

export async function say(page: Page, text: string): Promise<void> {
  const box = page.locator('[data-id="webchat-sendbox-input"]');
  await box.fill(text);
  await box.press('Enter');
}

/** The texts of the transcript's bubbles, in order, apostrophes uncurled. */
export async function bubbleTexts(page: Page): Promise<string[]> {
  return (await page.locator('.webchat__bubble__content').allInnerTexts()).map((t) =>
    t.trim().replace(/’/g, "'"),
  );
}
