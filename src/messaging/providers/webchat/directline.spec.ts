import { afterEach, describe, expect, it, vi } from 'vitest';
import { MemoryDirectLineStore } from './directline.store.js';
import { DirectLineTokens } from './directline.tokens.js';
import { toDirectLineContent } from './directline.service.js';

describe('Direct Line tokens', () => {
  const tokens = new DirectLineTokens();

  it('round-trips the conversation and user, and reads as a JWT with a user claim', async () => {
    const t = await tokens.sign(
      'secret',
      'aud',
      { conversationId: 'c1', userId: 'dl_u', scope: 'conversation' },
      60,
    );
    const claims = await tokens.verify('secret', 'aud', t, 'conversation');
    expect(claims).toMatchObject({ conversationId: 'c1', userId: 'dl_u', scope: 'conversation' });
    expect(JSON.parse(Buffer.from(t.split('.')[1]!, 'base64url').toString())).toMatchObject({
      user: 'dl_u',
      conv: 'c1',
    });
  });

  it('refuses another secret, another channel, another scope, and an expired token', async () => {
    const t = await tokens.sign('secret', 'aud', { conversationId: 'c1', scope: 'conversation' }, 60);
    await expect(tokens.verify('other', 'aud', t, 'conversation')).rejects.toMatchObject({
      code: 'BadToken',
      httpStatus: 403,
    });
    await expect(tokens.verify('secret', 'other-channel', t, 'conversation')).rejects.toMatchObject({
      code: 'BadToken',
    });
    await expect(tokens.verify('secret', 'aud', t, 'stream')).rejects.toMatchObject({ code: 'BadToken' });
    const expired = await tokens.sign('secret', 'aud', { conversationId: 'c1', scope: 'conversation' }, -10);
    await expect(tokens.verify('secret', 'aud', expired, 'conversation')).rejects.toMatchObject({
      code: 'TokenExpired',
      httpStatus: 403,
    });
  });
});

describe('Direct Line token lifetime', () => {
  const tokens = new DirectLineTokens();
  afterEach(() => vi.useRealTimers());

  it('lives at least its TTL, even when signed late in a second', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2026-12-05T12:00:00.950Z'));
    const t = await tokens.sign('secret', 'aud', { conversationId: 'c1', scope: 'conversation' }, 1);
    // 0.99 s later (the old rounding had it expired after 50 ms).
    vi.setSystemTime(new Date('2026-12-05T12:00:01.940Z'));
    await expect(tokens.verify('secret', 'aud', t, 'conversation')).resolves.toMatchObject({
      conversationId: 'c1',
    });
    // Refused from its second on: at most a second past the TTL.
    vi.setSystemTime(new Date('2026-12-05T12:00:02.000Z'));
    await expect(tokens.verify('secret', 'aud', t, 'conversation')).rejects.toMatchObject({
      code: 'TokenExpired',
    });
  });
});

describe('MemoryDirectLineStore', () => {
  it('numbers activities, answers from a watermark, keeps a window and de-duplicates by key', async () => {
    const s = new MemoryDirectLineStore({ historyLimit: 3, idleTtlMs: 60_000, maxConversations: 10 });
    await s.create('ch', 'c');
    const seen: string[] = [];
    const off = s.listen('ch', 'c', (set) => seen.push(set.watermark));
    for (let i = 0; i < 5; i++) await s.append('ch', 'c', { type: 'message', text: String(i) });
    expect((await s.since('ch', 'c', 3)).activities.map((a) => a.text)).toEqual(['3', '4']);
    expect((await s.since('ch', 'c')).activities.map((a) => a.id)).toEqual([
      'c|0000003',
      'c|0000004',
      'c|0000005',
    ]);
    expect((await s.since('ch', 'c', 0)).watermark).toBe('5');
    const a = await s.append('ch', 'c', { type: 'message' }, 'k1');
    const b = await s.append('ch', 'c', { type: 'message' }, 'k1');
    expect(b).toEqual({ activity: a.activity, duplicate: true });
    expect(seen).toEqual(['1', '2', '3', '4', '5', '6']);
    off();
    s.close();
  });

  it('keeps channels apart', async () => {
    const s = new MemoryDirectLineStore();
    await s.create('a', 'c');
    expect(await s.exists('b', 'c')).toBe(false);
    s.close();
  });
});

describe('Direct Line reply mapping', () => {
  it('maps choices to suggested actions and cards to hero cards', () => {
    expect(toDirectLineContent({ text: 'Colour?', choices: ['Red'] })).toEqual({
      text: 'Colour?',
      suggestedActions: { actions: [{ type: 'imBack', title: 'Red', value: 'Red' }] },
    });
    expect(toDirectLineContent({ card: { title: 'Paris', buttons: ['Again'] } })).toEqual({
      attachments: [
        {
          contentType: 'application/vnd.microsoft.card.hero',
          content: { title: 'Paris', buttons: [{ type: 'imBack', title: 'Again', value: 'Again' }] },
        },
      ],
    });
  });
});
