import { createHmac } from 'node:crypto';
import { errors as joseErrors, jwtVerify, SignJWT } from 'jose';
import { ProviderAuthError } from '../messaging-provider.js';

const ISSUER = 'greentic-webchat';

export type TokenScope = 'conversation' | 'stream';

export interface DirectLineClaims {
  /** The one conversation this token opens. */
  conversationId: string;
  /** Set when the token was generated for a user: activities must come from that id. */
  userId?: string;
  scope: TokenScope;
  expiresAt: number;
}

/**
 * Direct Line tokens: JWTs (HS256, `jose`) signed with a key derived from the channel's Direct
 * Line secret, bound to one conversation and to the channel (audience), short-lived. A token
 * never opens another conversation, another channel's, or outlives its `exp`.
 * Claim `user` is what botframework-directlinejs reads to learn a token's user id.
 */
export class DirectLineTokens {
  async sign(
    secret: string,
    audience: string,
    claims: Omit<DirectLineClaims, 'expiresAt'>,
    ttlS: number,
  ): Promise<string> {
    // `exp` is in whole seconds and a token is refused from that second on: rounding up makes it
    // live at least the `expires_in` the client was told (rounding down left 0–1 s of a 1 s TTL).
    const exp = Math.ceil(Date.now() / 1000 + ttlS);
    return new SignJWT({
      conv: claims.conversationId,
      scope: claims.scope,
      ...(claims.userId ? { user: claims.userId } : {}),
    })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setIssuer(ISSUER)
      .setAudience(audience)
      .setIssuedAt()
      .setExpirationTime(exp)
      .sign(signingKey(secret));
  }

  async verify(
    secret: string,
    audience: string,
    token: string,
    scope: TokenScope,
  ): Promise<DirectLineClaims> {
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, signingKey(secret), {
        issuer: ISSUER,
        audience,
        algorithms: ['HS256'],
        requiredClaims: ['exp'],
      }));
    } catch (e) {
      if (e instanceof joseErrors.JWTExpired)
        throw new ProviderAuthError('webchat', 'token expired', 403, 'TokenExpired');
      throw new ProviderAuthError('webchat', 'token invalid', 403, 'BadToken');
    }
    if (payload['scope'] !== scope || typeof payload['conv'] !== 'string') {
      throw new ProviderAuthError('webchat', `token is not a ${scope} token`, 403, 'BadToken');
    }
    return {
      conversationId: payload['conv'],
      ...(typeof payload['user'] === 'string' ? { userId: payload['user'] } : {}),
      scope,
      expiresAt: (payload['exp'] as number) * 1000,
    };
  }
}

/** A key of its own for tokens, so the secret itself never signs anything a client holds. */
function signingKey(secret: string): Uint8Array {
  return new Uint8Array(createHmac('sha256', secret).update('greentic-directline-token-v1').digest());
}
