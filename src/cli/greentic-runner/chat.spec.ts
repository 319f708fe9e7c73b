import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { messageOf, replyLines, runChat } from './chat.js';

describe('chat replies as terminal lines', () => {
  it('shows a card through its text fallback, buttons included, and choices numbered', () => {
    const card = {
      type: 'AdaptiveCard',
      version: '1.5',
      body: [
        { type: 'TextBlock', text: 'Your order', weight: 'Bolder' },
        { type: 'TextBlock', text: 'Ships tomorrow' },
      ],
      actions: [{ type: 'Action.Submit', title: 'Track', data: { action: 'track' } }],
    };
    const lines = replyLines({ text: 'Here it is', card, choices: ['Track', 'Cancel'] });
    expect(lines[0]).toBe('bot> Here it is');
    expect(lines[1]).toMatch(/^bot> \[card\] .*Your order/);
    expect(lines.join('\n')).toContain('Ships tomorrow');
    expect(lines.join('\n')).toContain('Track');
    expect(lines[lines.length - 1]).toBe('     choices: [1] Track  [2] Cancel');
    expect(replyLines({ text: 'plain' })).toEqual(['bot> plain']);
  });
});

describe('chat input lines', () => {
  it('sends text, or a card button press with /action', () => {
    expect(messageOf('hello')).toEqual({ text: 'hello' });
    expect(messageOf('/action {"action":"track"}')).toEqual({ action: { action: 'track' } });
    expect(messageOf('/action [1]')).toMatch(/needs a JSON object/);
    expect(messageOf('/action {')).toMatch(/needs the button's data as JSON/);
  });
});

describe('chat options', () => {
  const run = async (o: Parameters<typeof runChat>[0]): Promise<{ code: number; err: string[] }> => {
    const err: string[] = [];
    const code = await runChat(o, { out: () => undefined, err: (l) => err.push(l) });
    return { code, err };
  };

  it('needs --pack or --bundle, not both', async () => {
    expect(await run({})).toEqual({
      code: 2,
      err: [
        'greentic-runner chat: give --pack FILE, or --bundle FILE with --channel tenant/env/team/channel',
      ],
    });
    expect((await run({ pack: 'a', bundle: 'b' })).code).toBe(2);
  });

  it('refuses a bundle channel that is missing, malformed or not a generic webhook', async () => {
    const bundle = path.resolve('examples/demo/greentic.demo.yaml');
    expect((await run({ bundle })).err[0]).toContain('--bundle needs --channel tenant/env/team/channel');
    expect((await run({ bundle, channel: 'demo/dev/default/nope' })).err[0]).toContain(
      'has no channel demo/dev/default/nope',
    );
    expect((await run({ pack: 'x', channel: 'a/b/c/d' })).err[0]).toContain('--channel goes with --bundle');
  });
});
