import type { Activity, ActivitySet, ChannelAccount } from './directline.types.js';

/** The event that stands in for an activity whose JSON cannot be produced. */
export const OMITTED_ACTIVITY_EVENT = 'greentic.activityOmitted';

/**
 * The JSON of an activity set as Direct Line sends it (`GET …/activities`, the stream). An activity
 * that cannot be serialised (nested past the stack, cyclic) is replaced by an `event` keeping its
 * id, so one bad activity never makes a conversation's history unreadable and watermarks stay
 * continuous. The common case serialises once, as a plain JSON.stringify would.
 */
export function activitySetJson(
  set: ActivitySet,
  onOmitted?: (activity: Activity, err: Error) => void,
): string {
  try {
    return JSON.stringify(set);
  } catch {
    const parts = set.activities.map((a) => {
      try {
        return JSON.stringify(a);
      } catch (e) {
        onOmitted?.(a, e as Error);
        return JSON.stringify(omitted(a));
      }
    });
    return `{"activities":[${parts.join(',')}],"watermark":${JSON.stringify(set.watermark)}}`;
  }
}

const text = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** Only the activity's string fields are kept: any of its objects may be what cannot be serialised. */
function omitted(a: Activity): Activity {
  const out: Activity = {
    type: 'event',
    name: OMITTED_ACTIVITY_EVENT,
    value: { reason: 'activity could not be serialised' },
  };
  const id = text(a.id);
  const timestamp = text(a.timestamp);
  const channelId = text(a.channelId);
  const conversationId = text(a.conversation?.id);
  const replyToId = text(a.replyToId);
  if (id) out.id = id;
  if (timestamp) out.timestamp = timestamp;
  if (channelId) out.channelId = channelId;
  if (conversationId) out.conversation = { id: conversationId };
  if (replyToId) out.replyToId = replyToId;
  const fromId = text(a.from?.id);
  if (fromId) {
    const from: ChannelAccount = { id: fromId };
    if (a.from?.role === 'user' || a.from?.role === 'bot') from.role = a.from.role;
    out.from = from;
  }
  return out;
}
