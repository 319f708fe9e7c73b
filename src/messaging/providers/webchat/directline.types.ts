/** Direct Line 3.0 shapes, as the REST reference names them. */

export interface ChannelAccount {
  id: string;
  name?: string;
  role?: 'user' | 'bot';
}

/** A Bot Framework activity; only the fields the service reads are typed, the rest travel as sent. */
export interface Activity {
  type: string;
  id?: string;
  timestamp?: string;
  channelId?: string;
  conversation?: { id: string };
  from?: ChannelAccount;
  text?: string;
  value?: unknown;
  attachments?: { contentType: string; content?: unknown; contentUrl?: string; name?: string }[];
  suggestedActions?: { actions: { type: string; title: string; value: unknown }[]; to?: string[] };
  channelData?: Record<string, unknown>;
  replyToId?: string;
  [key: string]: unknown;
}

export interface ActivitySet {
  activities: Activity[];
  watermark: string;
}

/** `POST conversations`, `GET conversations/{id}`, `tokens/*` answers. */
export interface ConversationInfo {
  conversationId: string;
  token: string;
  expires_in: number;
  streamUrl?: string;
  referenceGrammarId?: string;
}
