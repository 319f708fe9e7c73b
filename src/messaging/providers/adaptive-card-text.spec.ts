import { describe, expect, it } from 'vitest';
import {
  adaptiveCardFallback,
  adaptiveCardText,
  decodeCardSubmit,
  encodeCardSubmit,
  isAdaptiveCard,
  submitEcho,
} from './adaptive-card-text.js';
import { normalizeCard, replyText } from './provider-support.js';

/** Shaped like the cards upstream's demo packs ship (helpdesk / hr-onboarding style). */
const TICKET_CARD = {
  type: 'AdaptiveCard',
  $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
  version: '1.5',
  body: [
    { type: 'TextBlock', text: 'Ticket INC-1042', size: 'Large', weight: 'Bolder', wrap: true },
    { type: 'TextBlock', text: 'Your laptop request was received.', wrap: true },
    {
      type: 'FactSet',
      facts: [
        { title: 'Status', value: 'Open' },
        { title: 'Priority', value: 'P2' },
      ],
    },
    {
      type: 'ColumnSet',
      columns: [
        { type: 'Column', items: [{ type: 'TextBlock', text: 'Assignee' }] },
        { type: 'Column', items: [{ type: 'TextBlock', text: 'Dana' }] },
      ],
    },
    {
      type: 'Container',
      items: [
        {
          type: 'RichTextBlock',
          inlines: [
            { type: 'TextRun', text: 'Due ' },
            { type: 'TextRun', text: 'Friday', weight: 'Bolder' },
          ],
        },
        { type: 'Image', url: 'https://example.com/laptop.png', altText: 'Laptop photo' },
        { type: 'TextBlock', text: 'hidden detail', isVisible: false },
      ],
    },
    {
      type: 'Input.ChoiceSet',
      id: 'urgency',
      label: 'How urgent is it?',
      choices: [
        { title: 'Today', value: 'today' },
        { title: 'This week', value: 'week' },
      ],
    },
  ],
  actions: [
    { type: 'Action.Submit', title: 'Send', data: { action_id: 'set_urgency', ticket: 'INC-1042' } },
    { type: 'Action.OpenUrl', title: 'Open in portal', url: 'https://itsm.example.com/INC-1042' },
    { type: 'Action.ToggleVisibility', title: 'Details', targetElements: ['x'] },
  ],
};

describe('Adaptive Card text fallback', () => {
  it('reads a realistic card as title, lines, choice buttons carrying the Submit data, and links', () => {
    expect(adaptiveCardFallback(TICKET_CARD)).toEqual({
      title: 'Ticket INC-1042',
      lines: [
        'Your laptop request was received.',
        'Status: Open',
        'Priority: P2',
        'Assignee | Dana',
        'Due Friday',
        'Laptop photo',
        'How urgent is it?',
        '• Today',
        '• This week',
      ],
      images: [{ url: 'https://example.com/laptop.png', alt: 'Laptop photo' }],
      buttons: [
        { title: 'Today', data: { action_id: 'set_urgency', ticket: 'INC-1042', urgency: 'today' } },
        { title: 'This week', data: { action_id: 'set_urgency', ticket: 'INC-1042', urgency: 'week' } },
        { title: 'Open in portal', url: 'https://itsm.example.com/INC-1042' },
      ],
    });
    expect(adaptiveCardText(TICKET_CARD)).toBe(
      [
        'Ticket INC-1042',
        'Your laptop request was received.',
        'Status: Open',
        'Priority: P2',
        'Assignee | Dana',
        'Due Friday',
        'Laptop photo',
        'How urgent is it?',
        '• Today',
        '• This week',
        'Open in portal: https://itsm.example.com/INC-1042',
      ].join('\n'),
    );
  });

  it('keeps Submit buttons as they are when the card asks more than one thing, with Execute verbs and ShowCard inline', () => {
    const card = {
      type: 'AdaptiveCard',
      body: [
        { type: 'Input.Text', id: 'name', label: 'Your name' },
        {
          type: 'Input.ChoiceSet',
          id: 'team',
          choices: [{ title: 'Ops', value: 'ops' }],
          isMultiSelect: false,
        },
      ],
      actions: [
        { type: 'Action.Submit', title: 'Save', data: { action: 'save' } },
        { type: 'Action.Execute', title: 'Refresh', verb: 'refresh', data: { card: 'c1' } },
        {
          type: 'Action.ShowCard',
          title: 'More',
          card: {
            type: 'AdaptiveCard',
            body: [{ type: 'TextBlock', text: 'Extra options' }],
            actions: [{ type: 'Action.Submit', title: 'Cancel', data: 'cancel' }],
          },
        },
      ],
    };
    const fb = adaptiveCardFallback(card);
    expect(fb.lines).toEqual(['Your name', '• Ops', 'More', 'Extra options']);
    expect(fb.buttons).toEqual([
      { title: 'Save', data: { action: 'save' } },
      { title: 'Refresh', data: { card: 'c1', verb: 'refresh' } },
      { title: 'Cancel', text: 'cancel' },
    ]);
  });

  it('falls back to fallbackText, then speak, when the body has nothing readable; unknown elements use their fallback', () => {
    expect(adaptiveCardText({ type: 'AdaptiveCard', body: [], fallbackText: 'A card' })).toBe('A card');
    expect(adaptiveCardText({ type: 'AdaptiveCard', body: [], speak: '<s>Hello <b>there</b></s>' })).toBe(
      'Hello there',
    );
    expect(
      adaptiveCardText({
        type: 'AdaptiveCard',
        body: [{ type: 'Carousel', fallback: { type: 'TextBlock', text: 'Swipe on a newer client' } }],
      }),
    ).toBe('Swipe on a newer client');
  });

  it('is what normalizeCard and replyText give for an Adaptive Card', () => {
    expect(isAdaptiveCard(TICKET_CARD)).toBe(true);
    expect(isAdaptiveCard({ title: 'hero' })).toBe(false);
    const n = normalizeCard(TICKET_CARD);
    expect(n.title).toBe('Ticket INC-1042');
    expect(n.text).toContain('Status: Open');
    expect(n.buttons[0]).toEqual({
      title: 'Today',
      value: 'Today',
      data: { action_id: 'set_urgency', ticket: 'INC-1042', urgency: 'today' },
    });
    expect(n.buttons[2]).toEqual({
      title: 'Open in portal',
      value: 'https://itsm.example.com/INC-1042',
      url: 'https://itsm.example.com/INC-1042',
    });
    expect(replyText({ card: TICKET_CARD })).toBe(adaptiveCardText(TICKET_CARD));
  });

  it('encodes Submit data compactly within a byte limit and reads it back', () => {
    const flat = { action_id: 'goto_view_tickets', routeToCardId: 'view_tickets' };
    const short = encodeCardSubmit(flat, 64)!;
    expect(short).toBe('~?action_id=goto_view_tickets&routeToCardId=view_tickets');
    expect(decodeCardSubmit(short)).toEqual(flat);
    const nested = { action: 'pick', n: 2, tags: ['a'] };
    expect(encodeCardSubmit(nested, 64)).toBe('~{"action":"pick","n":2,"tags":["a"]}');
    expect(decodeCardSubmit(encodeCardSubmit(nested, 64)!)).toEqual(nested);
    expect(encodeCardSubmit({ long: 'x'.repeat(80) }, 64)).toBeUndefined();
    expect(decodeCardSubmit('Red')).toBeUndefined();
    expect(decodeCardSubmit('~{not json')).toBeUndefined();
  });

  it('echoes a Submit as readable text', () => {
    expect(submitEcho({ type: 'value', action: 'about_card' })).toBe('about_card');
    expect(submitEcho({ type: 'card_submit', ticket: 'INC-1', note: 'asap' })).toBe('INC-1 asap');
    expect(submitEcho({ type: 'value', n: 2 })).toBe('{"n":2}');
  });
});
