import type { ProviderRequest } from '../messaging-provider.js';
import { ProviderAuthError } from '../messaging-provider.js';
import { header, hexSignatureMatches, hmacSha256 } from '../provider-support.js';

/** Slack refuses (and so do we) requests whose timestamp is more than five minutes away from now. */
export const SLACK_MAX_SKEW_S = 300;

export function slackSignature(secret: string, timestamp: string, rawBody: Buffer | string): string {
  return 'v0=' + hmacSha256(secret, 'v0:', timestamp, ':', rawBody).toString('hex');
}

/**
 * Slack's request signing (v0): `X-Slack-Signature` is `v0=` + hex HMAC-SHA256 of
 * `v0:{X-Slack-Request-Timestamp}:{raw body}` under the app's signing secret.
 */
export function verifySlackRequest(
  req: Pick<ProviderRequest, 'headers' | 'rawBody'>,
  secret: string,
  nowS = Date.now() / 1000,
): void {
  const ts = header(req, 'x-slack-request-timestamp');
  const sig = header(req, 'x-slack-signature');
  if (!ts || !sig)
    throw new ProviderAuthError('slack', 'missing X-Slack-Signature or X-Slack-Request-Timestamp header');
  if (!/^\d{1,12}$/.test(ts)) throw new ProviderAuthError('slack', 'malformed X-Slack-Request-Timestamp');
  const skew = Math.abs(nowS - Number(ts));
  if (skew > SLACK_MAX_SKEW_S) {
    throw new ProviderAuthError(
      'slack',
      `stale request: timestamp is ${Math.round(skew)} s away from now (limit ${SLACK_MAX_SKEW_S} s)`,
    );
  }
  if (!hexSignatureMatches(hmacSha256(secret, 'v0:', ts, ':', req.rawBody), sig, 'v0=')) {
    throw new ProviderAuthError('slack', 'signature mismatch');
  }
}
