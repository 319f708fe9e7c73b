import { Logger } from '@nestjs/common';
import {
  createRemoteJWKSet,
  errors as joseErrors,
  jwtVerify,
  type JWTPayload,
  type RemoteJWKSet,
} from 'jose';
import { GreenticError } from '../../../common/errors.js';
import { ProviderAuthError } from '../messaging-provider.js';
import { isRecord, str } from '../provider-support.js';

/** Bot Framework's channel → bot OpenID metadata; the issuer its tokens carry. */
export const BOT_FRAMEWORK_OPENID_METADATA =
  'https://login.botframework.com/v1/.well-known/openidconfiguration';
export const BOT_FRAMEWORK_ISSUER = 'https://api.botframework.com';
/** The Bot Framework docs allow five minutes of clock skew. */
const CLOCK_TOLERANCE_S = 300;
/** The metadata document is re-read daily (the docs ask for at least once every 24 hours). */
const METADATA_TTL_MS = 24 * 3600_000;

interface OpenIdConfig {
  issuer: string;
  jwks: RemoteJWKSet;
  at: number;
}

export interface VerifiedBotToken {
  payload: JWTPayload;
  serviceUrl?: string;
}

/**
 * Verifies the `Authorization: Bearer` JWT the Bot Connector sends with each activity, as the Bot
 * Framework authentication docs list: signed by a key of the JWKS named in the OpenID metadata
 * (and endorsed for the activity's channel), issuer, audience = the bot's app id, not expired,
 * and a `serviceurl` claim equal to the activity's serviceUrl. `jose` does the JOSE work.
 */
export class BotFrameworkAuth {
  private readonly logger = new Logger(BotFrameworkAuth.name);
  private readonly configs = new Map<string, Promise<OpenIdConfig>>();

  async verify(
    authorization: string | undefined,
    opts: { metadataUrl: string; appId: string; issuer?: string; channelId?: string; serviceUrl?: string },
  ): Promise<VerifiedBotToken> {
    if (!authorization || !/^Bearer\s+\S+$/i.test(authorization))
      throw new ProviderAuthError('teams', 'missing Authorization: Bearer token');
    const token = authorization.replace(/^Bearer\s+/i, '');
    const cfg = await this.config(opts.metadataUrl);
    let payload: JWTPayload;
    let kid: string | undefined;
    try {
      const r = await jwtVerify(token, cfg.jwks, {
        issuer: opts.issuer ?? cfg.issuer,
        audience: opts.appId,
        algorithms: ['RS256', 'RS384', 'RS512'],
        clockTolerance: CLOCK_TOLERANCE_S,
        requiredClaims: ['exp'],
      });
      payload = r.payload;
      kid = r.protectedHeader.kid;
    } catch (e) {
      // Key-set trouble on our side (unreachable JWKS) is not the caller's fault: 503, so the service retries.
      if (e instanceof joseErrors.JWKSTimeout || !(e instanceof joseErrors.JOSEError)) {
        throw new GreenticError('openid_unavailable', `JWKS unavailable: ${(e as Error).message}`, 503);
      }
      throw new ProviderAuthError('teams', `token refused: ${reason(e)}`);
    }
    const key = cfg.jwks.jwks()?.keys.find((k) => k.kid === kid) as Record<string, unknown> | undefined;
    const endorsements = key?.['endorsements'];
    if (opts.channelId && Array.isArray(endorsements) && !endorsements.includes(opts.channelId)) {
      throw new ProviderAuthError(
        'teams',
        `signing key is not endorsed for channel '${opts.channelId}'`,
        403,
      );
    }
    const claimed = str(payload['serviceurl']) ?? str(payload['serviceUrl']);
    if (!claimed) throw new ProviderAuthError('teams', 'token has no serviceurl claim');
    if (opts.serviceUrl !== undefined && trimSlash(claimed) !== trimSlash(opts.serviceUrl)) {
      throw new ProviderAuthError('teams', 'serviceUrl of the activity does not match the token', 403);
    }
    return { payload, serviceUrl: claimed };
  }

  private config(url: string): Promise<OpenIdConfig> {
    const cached = this.configs.get(url);
    if (cached) {
      return cached.then((c) => {
        if (Date.now() - c.at < METADATA_TTL_MS) return c;
        this.configs.delete(url);
        return this.config(url);
      });
    }
    const p = this.load(url);
    this.configs.set(url, p);
    // A failed load must not stick: the next request tries again.
    p.catch(() => this.configs.delete(url));
    return p;
  }

  private async load(url: string): Promise<OpenIdConfig> {
    let doc: unknown;
    try {
      const res = await fetch(url, {
        signal: AbortSignal.timeout(5_000),
        headers: { accept: 'application/json' },
      });
      if (!res.ok) throw new Error(`answered ${res.status}`);
      doc = await res.json();
    } catch (e) {
      this.logger.error({ url, err: (e as Error).message }, 'Bot Framework OpenID metadata unavailable');
      throw new GreenticError(
        'openid_unavailable',
        `OpenID metadata ${url} unavailable: ${(e as Error).message}`,
        503,
      );
    }
    const jwksUri = isRecord(doc) ? str(doc['jwks_uri']) : undefined;
    if (!jwksUri)
      throw new GreenticError('openid_unavailable', `OpenID metadata ${url} has no jwks_uri`, 503);
    const issuer = (isRecord(doc) ? str(doc['issuer']) : undefined) ?? BOT_FRAMEWORK_ISSUER;
    return {
      issuer,
      jwks: createRemoteJWKSet(new URL(jwksUri), { cacheMaxAge: METADATA_TTL_MS }),
      at: Date.now(),
    };
  }
}

const trimSlash = (s: string) => s.replace(/\/+$/, '');

function reason(e: unknown): string {
  if (e instanceof joseErrors.JWTExpired) return 'expired';
  if (e instanceof joseErrors.JWTClaimValidationFailed) return `claim '${e.claim}' invalid (${e.reason})`;
  if (e instanceof joseErrors.JWKSNoMatchingKey) return 'signed by an unknown key';
  if (e instanceof joseErrors.JWSSignatureVerificationFailed) return 'signature invalid';
  if (e instanceof joseErrors.JOSEAlgNotAllowed) return 'algorithm not allowed';
  if (e instanceof joseErrors.JWTInvalid || e instanceof joseErrors.JWSInvalid) return 'malformed token';
  return (e as Error).message;
}
