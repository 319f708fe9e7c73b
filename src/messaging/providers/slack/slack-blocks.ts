import type { OutboundReply } from '../../../core/message-envelope.js';
import { normalizeCard, replyText } from '../provider-support.js';

/** Block Kit limits we must respect, or chat.postMessage answers `invalid_blocks`. */
const HEADER_MAX = 150;
const SECTION_MAX = 3000;
const BUTTON_TEXT_MAX = 75;
const BUTTON_VALUE_MAX = 2000;
const ACTIONS_MAX = 25;

/** Prefix of the action id of a button that submits an Adaptive Card's data (JSON in `value`). */
export const CARD_SUBMIT_ACTION = 'card_submit_';

export type SlackBlock = Record<string, unknown>;

export interface SlackMessageParts {
  text: string;
  blocks?: SlackBlock[];
}

const cut = (s: string, n: number) => (s.length > n ? s.slice(0, n - 1) + '…' : s);
/** mrkdwn reads `<…>` as links and mentions and `&` as an entity: flow text is shown as written. */
const mrkdwn = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/**
 * A flow reply as chat.postMessage arguments: plain `text` always (notifications and
 * accessibility use it), Block Kit `blocks` for cards and choices. A card that already holds
 * `blocks` is Block Kit and is passed through.
 */
export function toSlackMessage(reply: OutboundReply): SlackMessageParts | undefined {
  const native = reply.card?.['blocks'];
  if (Array.isArray(native)) {
    return {
      text: reply.text ?? (typeof reply.card?.['text'] === 'string' ? reply.card['text'] : ' '),
      blocks: native as SlackBlock[],
    };
  }
  const text = replyText(reply) || reply.choices?.join(' / ') || '';
  if (!reply.card && !reply.choices?.length) return text ? { text } : undefined;
  const blocks: SlackBlock[] = [];
  const buttons: { title: string; value: string; url?: string; data?: Record<string, unknown> }[] = [];
  if (reply.card) {
    const c = normalizeCard(reply.card);
    if (c.title)
      blocks.push({ type: 'header', text: { type: 'plain_text', text: cut(c.title, HEADER_MAX) } });
    const body = [reply.text, c.subtitle, c.text].filter(Boolean).join('\n');
    if (body)
      blocks.push({ type: 'section', text: { type: 'mrkdwn', text: cut(mrkdwn(body), SECTION_MAX) } });
    if (c.imageUrl) blocks.push({ type: 'image', image_url: c.imageUrl, alt_text: c.title ?? 'image' });
    buttons.push(...c.buttons);
  } else if (reply.text) {
    blocks.push({ type: 'section', text: { type: 'mrkdwn', text: cut(mrkdwn(reply.text), SECTION_MAX) } });
  }
  for (const choice of reply.choices ?? []) buttons.push({ title: choice, value: choice });
  if (buttons.length > 0) {
    blocks.push({
      type: 'actions',
      block_id: 'greentic_choices',
      elements: buttons.slice(0, ACTIONS_MAX).map((b, i) => {
        const text = { type: 'plain_text', text: cut(b.title, BUTTON_TEXT_MAX) };
        if (b.url) return { type: 'button', action_id: `choice_${i}`, text, url: b.url };
        // A card's Submit: its data as the value, named by the action id, so a click comes back as it.
        const data = b.data ? JSON.stringify(b.data) : undefined;
        if (data !== undefined && data.length <= BUTTON_VALUE_MAX)
          return { type: 'button', action_id: `${CARD_SUBMIT_ACTION}${i}`, text, value: data };
        return { type: 'button', action_id: `choice_${i}`, text, value: cut(b.value, BUTTON_VALUE_MAX) };
      }),
    });
  }
  return { text: text || ' ', blocks };
}
