/**
 * The extension API for messaging providers: everything a custom channel module needs, in one
 * import. See examples/custom-provider and docs/providers.md.
 */
export {
  EgressError,
  GREENTIC_PROVIDER,
  GreenticProvider,
  ProviderAuthError,
  type InboundMessage,
  type IngressResult,
  type MessagingProvider,
  type ProviderRequest,
  type ProviderResponse,
} from './messaging-provider.js';
export {
  baseUrl,
  channelSecret,
  header,
  hexSignatureMatches,
  hmacSha256,
  httpEgressError,
  isRecord,
  networkEgressError,
  normalizeCard,
  parseJsonObject,
  parseRetryAfter,
  replyText,
  requireSetting,
  safeEqual,
  setting,
  str,
  type NormalCard,
} from './provider-support.js';
export { partKey, type ReplyDelivery } from '../reply-delivery.js';
export { ProviderRegistry } from './provider-registry.service.js';
export type { ResolvedChannel } from '../../tenancy/bundle-registry.service.js';
export type { EgressMessage, OutboundReply } from '../../core/message-envelope.js';
export { SecretsService } from '../../secrets/secrets.service.js';
export { SecretsModule } from '../../secrets/secrets.module.js';
export { BadRequestError, GreenticError } from '../../common/errors.js';
