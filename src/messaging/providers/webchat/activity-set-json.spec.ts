import { describe, expect, it, vi } from 'vitest';
import { activitySetJson, OMITTED_ACTIVITY_EVENT } from './activity-set-json.js';
import type { Activity, ActivitySet } from './directline.types.js';

const user: Activity = {
  type: 'message',
  id: 'c1|0000001',
  timestamp: '2026-12-05T02:00:00.000Z',
  channelId: 'directline',
  conversation: { id: 'c1' },
  from: { id: 'u1', role: 'user' },
  text: 'hi',
};
const deep = (): unknown => JSON.parse('['.repeat(100_000) + ']'.repeat(100_000));

describe('activitySetJson', () => {
  it('is JSON.stringify of the set when every activity serialises', () => {
    const set: ActivitySet = {
      activities: [user, { ...user, id: 'c1|0000002', text: 'Paris' }],
      watermark: '2',
    };
    const onOmitted = vi.fn();
    expect(activitySetJson(set, onOmitted)).toBe(JSON.stringify(set));
    expect(onOmitted).not.toHaveBeenCalled();
  });

  it('replaces only the activity that cannot be serialised, keeping its id, sender and order', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic['self'] = cyclic;
    const tooDeep: Activity = {
      ...user,
      id: 'c1|0000002',
      from: { id: 'bot', role: 'bot', name: 'Weather' },
      replyToId: 'c1|0000001',
      attachments: [{ contentType: 'application/vnd.microsoft.card.adaptive', content: deep() }],
    };
    const withCycle: Activity = { ...user, id: 'c1|0000003', channelData: cyclic };
    const last: Activity = { ...user, id: 'c1|0000004', text: 'still here' };
    const onOmitted = vi.fn();
    const parsed = JSON.parse(
      activitySetJson({ activities: [user, tooDeep, withCycle, last], watermark: '4' }, onOmitted),
    ) as ActivitySet;

    expect(parsed.watermark).toBe('4');
    expect(parsed.activities[0]).toEqual(user);
    expect(parsed.activities[1]).toEqual({
      type: 'event',
      name: OMITTED_ACTIVITY_EVENT,
      value: { reason: 'activity could not be serialised' },
      id: 'c1|0000002',
      timestamp: user.timestamp,
      channelId: 'directline',
      conversation: { id: 'c1' },
      replyToId: 'c1|0000001',
      from: { id: 'bot', role: 'bot' },
    });
    expect(parsed.activities[2]).toMatchObject({
      type: 'event',
      name: OMITTED_ACTIVITY_EVENT,
      id: 'c1|0000003',
    });
    expect(parsed.activities[3]).toEqual(last);
    expect(onOmitted.mock.calls.map(([a, e]) => [(a as Activity).id, (e as Error).name])).toEqual([
      ['c1|0000002', 'RangeError'],
      ['c1|0000003', 'TypeError'],
    ]);
  });

  it('keeps no field of an omitted activity that is not a plain string', () => {
    const hostile = {
      type: 'message',
      id: 'c1|0000001',
      from: deep(),
      conversation: deep(),
    } as unknown as Activity;
    const parsed = JSON.parse(activitySetJson({ activities: [hostile], watermark: '1' })) as ActivitySet;
    expect(parsed.activities).toEqual([
      {
        type: 'event',
        name: OMITTED_ACTIVITY_EVENT,
        value: { reason: 'activity could not be serialised' },
        id: 'c1|0000001',
      },
    ]);
  });
});
