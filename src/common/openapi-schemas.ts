import { applyDecorators } from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiExtension,
  ApiParam,
  ApiProperty,
  ApiPropertyOptional,
  ApiResponse,
  ApiSecurity,
  ApiTags,
  getSchemaPath,
} from '@nestjs/swagger';

/**
 * Schema classes for `/openapi.json`: the shapes the HTTP surface answers and accepts, and the
 * decorators controllers share. Documentation only: request handling never reads these classes.
 */

/** Security scheme names, registered in openapi.ts. */
export const ADMIN_TOKEN_SCHEME = 'admin-token';
export const DIRECTLINE_TOKEN_SCHEME = 'directline-token';

/** Extension on an `@All()` handler: the methods it really serves, with a summary each (openapi.ts). */
export const SERVED_METHODS_EXTENSION = 'x-greentic-served-methods';

export class ErrorDetail {
  @ApiProperty({ description: 'Stable machine-readable code', example: 'unknown_tenant' })
  code!: string;

  @ApiProperty({ description: 'What went wrong, for people', example: "unknown tenant 'acme'" })
  message!: string;
}

/** The one error shape of every route (GreenticExceptionFilter); errors may add fields such as `retryAfter`. */
export class ErrorResponse {
  @ApiProperty({ type: () => ErrorDetail })
  error!: ErrorDetail;
}

const ERROR_DESCRIPTIONS: Record<number, string> = {
  400: 'Malformed request (bad JSON, a missing or invalid field)',
  401: 'Missing or invalid credentials',
  403: 'Credentials valid but not for this resource (or a caller that is not loopback)',
  404: 'Unknown tenant, env, team, channel, provider or resource',
  405: 'A method the route does not serve; `Allow` lists those it does',
  409: 'Changed concurrently',
  413: "Body larger than the tenant's limit",
  422: 'Refused content (an invalid pack or flow)',
  429: 'Rate limited or component pool busy; see Retry-After',
  503: 'A dependency (bus, session store, coordination) is unavailable, or the runner is draining',
  504: 'The flow did not answer within the sync timeout',
};

/**
 * Error responses in the project's shape, one per status. Always JSON, also on routes that
 * produce something else (SVG, HTML, Prometheus text): hence explicit content, not `type`.
 */
export function ApiErrors(...statuses: number[]): MethodDecorator & ClassDecorator {
  const content = { 'application/json': { schema: { $ref: getSchemaPath(ErrorResponse) } } };
  return applyDecorators(
    ...statuses.map((status) =>
      ApiResponse({ status, description: ERROR_DESCRIPTIONS[status] ?? 'Error', content }),
    ),
  );
}

/** Admin routes: tagged, behind the admin token (or a loopback caller when none is configured). */
export function ApiAdmin(): ClassDecorator {
  return applyDecorators(ApiTags('admin'), ApiSecurity(ADMIN_TOKEN_SCHEME), ApiErrors(401, 403));
}

/** Descriptions of the tenancy path parameters, shared by ApiChannelParams and openapi.ts. */
export const TENANCY_PARAMS: Record<string, { description: string; example: string }> = {
  tenant: { description: 'Tenant id from the bundle', example: 'demo' },
  env: { description: 'Environment id', example: 'dev' },
  team: { description: "Team id ('default' when the bundle names none)", example: 'default' },
  channel: { description: 'Channel id', example: 'web' },
};

/** The `{tenant}/{env}/{team}/{channel}` path parameters of channel routes. */
export function ApiChannelParams(): MethodDecorator {
  return applyDecorators(...Object.entries(TENANCY_PARAMS).map(([name, p]) => ApiParam({ name, ...p })));
}

/** Direct Line routes: bearer token (the channel secret, or a token it generated). */
export function ApiDirectLine(): ClassDecorator {
  return applyDecorators(
    ApiTags('webchat'),
    ApiBearerAuth(DIRECTLINE_TOKEN_SCHEME),
    ApiErrors(400, 401, 403, 404),
  );
}

/** Marks an `@All()` handler with the methods it serves; openapi.ts drops the others. */
export function ApiServedMethods(methods: Partial<Record<'get' | 'head' | 'post', string>>): MethodDecorator {
  return ApiExtension(SERVED_METHODS_EXTENSION, methods);
}

// Webhook bodies. The generic `webhook` provider's is the runner's own; the others are the
// platforms' payloads, documented here by the fields the providers read.

export class GenericWebhookMessage {
  @ApiProperty({ maxLength: 256, example: 'u-42' })
  userId!: string;

  @ApiProperty({ maxLength: 65536, example: 'weather in Paris' })
  text!: string;

  @ApiPropertyOptional({ maxLength: 256, description: 'Defaults to userId' })
  conversationId?: string;

  @ApiPropertyOptional({
    maxLength: 256,
    description: 'Idempotency key: a repeated id is processed once (defaults to a random UUID)',
  })
  messageId?: string;

  @ApiPropertyOptional({
    maxLength: 35,
    example: 'de-CH',
    description: "The user's language tag (BCP-47): selects the pack's i18n strings; a malformed one is 400",
  })
  locale?: string;

  @ApiPropertyOptional({
    type: 'object',
    additionalProperties: true,
    example: { action_id: 'close' },
    description: "A card's Action.Submit data sent back (`text` may then be left out)",
  })
  action?: Record<string, unknown>;
}

export class SlackEventPayload {
  @ApiProperty({
    enum: ['url_verification', 'event_callback'],
    description: 'Slack Events API envelope type',
  })
  type!: string;

  @ApiPropertyOptional({ description: 'url_verification: echoed back' })
  challenge?: string;

  @ApiPropertyOptional({
    type: 'object',
    additionalProperties: true,
    description: 'event_callback: the event',
  })
  event?: Record<string, unknown>;
}

export class BotFrameworkActivity {
  @ApiProperty({ example: 'message' })
  type!: string;

  @ApiPropertyOptional()
  id?: string;

  @ApiPropertyOptional({ example: 'Hello' })
  text?: string;

  @ApiPropertyOptional({ type: 'object', additionalProperties: true })
  from?: Record<string, unknown>;

  @ApiPropertyOptional({ type: 'object', additionalProperties: true })
  conversation?: Record<string, unknown>;

  @ApiPropertyOptional({ description: 'Where replies are posted' })
  serviceUrl?: string;
}

export class TelegramUpdate {
  @ApiProperty()
  update_id!: number;

  @ApiPropertyOptional({ type: 'object', additionalProperties: true })
  message?: Record<string, unknown>;

  @ApiPropertyOptional({ type: 'object', additionalProperties: true })
  callback_query?: Record<string, unknown>;
}

export class WhatsAppWebhook {
  @ApiProperty({ example: 'whatsapp_business_account' })
  object!: string;

  @ApiProperty({ type: 'array', items: { type: 'object', additionalProperties: true } })
  entry!: Record<string, unknown>[];
}

export const WEBHOOK_BODY_MODELS = [
  GenericWebhookMessage,
  SlackEventPayload,
  BotFrameworkActivity,
  TelegramUpdate,
  WhatsAppWebhook,
];

/** `oneOf` the providers' bodies; which one applies follows from `{provider}`. */
export const WEBHOOK_BODY_SCHEMA = {
  description:
    "The provider's payload: `webhook` takes GenericWebhookMessage; `slack` a Slack Events API body; " +
    '`teams` a Bot Framework activity; `telegram` an Update; `whatsapp` a Cloud API notification. ' +
    'Providers with signatures (Slack, Teams, WhatsApp) check them over these exact bytes.',
  oneOf: WEBHOOK_BODY_MODELS.map((m) => ({ $ref: getSchemaPath(m) })),
};

export class WebhookAccepted {
  @ApiProperty({ enum: [true] })
  accepted!: boolean;

  @ApiPropertyOptional()
  messageId?: string;

  @ApiProperty({ type: [String] })
  messageIds!: string[];

  @ApiPropertyOptional({
    enum: [true],
    description: 'Every message repeats an id its session already sent: nothing new runs',
  })
  duplicate?: boolean;

  @ApiPropertyOptional({
    type: [String],
    description: 'Ids among messageIds that repeat one their session already sent (not run again)',
  })
  duplicates?: string[];
}

export class ReplyMessage {
  @ApiPropertyOptional({ description: "The reply's text; for a card without text, the card read as text" })
  text?: string;

  @ApiPropertyOptional({
    type: 'array',
    items: { type: 'object', additionalProperties: true },
    description:
      'An Adaptive Card reply as `{ contentType: "application/vnd.microsoft.card.adaptive", content }`',
  })
  attachments?: Record<string, unknown>[];

  @ApiPropertyOptional({ type: 'object', additionalProperties: true, description: "The flow's card" })
  card?: Record<string, unknown>;

  @ApiPropertyOptional({ type: [String], description: 'Choices offered with the reply' })
  choices?: string[];
}

export class WebhookSyncReply {
  @ApiPropertyOptional()
  messageId?: string;

  @ApiPropertyOptional()
  sessionKey?: string;

  @ApiPropertyOptional({ description: "The flow's status after this message", example: 'waiting' })
  status?: string;

  @ApiProperty({ type: [ReplyMessage] })
  replies!: ReplyMessage[];

  @ApiPropertyOptional({ type: () => ErrorDetail })
  error?: ErrorDetail;
}

// Health.

export class LiveResponse {
  @ApiProperty({ enum: ['ok'] })
  status!: string;
}

export class ReadyResponse {
  @ApiProperty({ enum: ['ok', 'unavailable'] })
  status!: string;

  @ApiProperty({ type: 'object', additionalProperties: true, description: 'Each check and its outcome' })
  checks!: Record<string, unknown>;
}

// Admin views.

export class PackRefView {
  @ApiProperty() id!: string;
  @ApiProperty() source!: string;
  @ApiPropertyOptional() loadedVersion?: string;
}

export class ChannelView {
  @ApiProperty() env!: string;
  @ApiProperty() team!: string;
  @ApiProperty() channel!: string;
  @ApiProperty() provider!: string;
  @ApiProperty() pack!: string;
  @ApiProperty() flow!: string;
  @ApiProperty() sessionTtlSeconds!: number;
  @ApiProperty({ type: 'object', additionalProperties: true, description: 'Credentials redacted' })
  settings!: Record<string, unknown>;
  @ApiProperty({ type: [String], description: 'Secret names only, never values' })
  secrets!: string[];
  @ApiProperty({ type: 'object', additionalProperties: { type: 'string' } })
  secretRefs!: Record<string, string>;
}

export class TenantView {
  @ApiProperty() tenant!: string;
  @ApiProperty({ type: [String] }) envs!: string[];
  @ApiProperty({ type: [PackRefView] }) packs!: PackRefView[];
  @ApiProperty({ type: [ChannelView] }) channels!: ChannelView[];
  @ApiProperty({
    type: 'object',
    additionalProperties: true,
    description: 'Backend kind; never a secret value',
  })
  secrets!: Record<string, unknown>;
  @ApiProperty({ type: 'object', additionalProperties: true }) limits!: Record<string, unknown>;
}

export class TenantList {
  @ApiProperty({ type: [TenantView] }) tenants!: TenantView[];
}

export class FlowNodeView {
  @ApiProperty() id!: string;
  @ApiProperty() operation!: string;
}

export class FlowView {
  @ApiProperty() pack!: string;
  @ApiProperty() packVersion!: string;
  @ApiProperty() id!: string;
  @ApiProperty() type!: string;
  @ApiPropertyOptional() title?: string;
  @ApiProperty() start!: string;
  @ApiProperty({ type: [FlowNodeView] }) nodes!: FlowNodeView[];
  @ApiProperty({ type: [String], description: '`env/team/channel` of the channels bound to this flow' })
  boundTo!: string[];
}

export class FlowList {
  @ApiProperty() tenant!: string;
  @ApiProperty({ type: [FlowView] }) flows!: FlowView[];
}

export class ParkedFlowView {
  @ApiProperty() pack!: string;
  @ApiProperty() packVersion!: string;
  @ApiProperty() flow!: string;
  @ApiProperty() node!: string;
  @ApiPropertyOptional({ type: 'object', additionalProperties: true }) pending?: Record<string, unknown>;
}

export class SessionView {
  @ApiProperty() tenant!: string;
  @ApiProperty() env!: string;
  @ApiProperty() team!: string;
  @ApiProperty() key!: string;
  @ApiProperty() version!: number;
  @ApiProperty({ format: 'date-time' }) updatedAt!: string;
  @ApiProperty({ type: () => ParkedFlowView, nullable: true }) parked!: ParkedFlowView | null;
  @ApiProperty({ type: 'object', additionalProperties: true, nullable: true })
  state!: Record<string, unknown> | null;
  @ApiProperty({ type: 'object', additionalProperties: true }) data!: Record<string, unknown>;
  @ApiProperty({ type: [String], description: 'Ids of the last messages processed' })
  recentMessages!: string[];
}

export class DeadLetterView {
  @ApiProperty() id!: string;
  @ApiProperty({ description: 'The dead-letter subject it arrived on' }) subject!: string;
  @ApiProperty({ description: 'Where it was going when it failed: replay publishes here' })
  originalSubject!: string;
  @ApiProperty({ enum: ['ingress', 'egress'] }) direction!: string;
  @ApiProperty() tenant!: string;
  @ApiProperty() env!: string;
  @ApiProperty() team!: string;
  @ApiProperty() channel!: string;
  @ApiPropertyOptional() messageId?: string;
  @ApiProperty({ type: () => ErrorDetail }) error!: ErrorDetail;
  @ApiPropertyOptional() deliveries?: number;
  @ApiProperty({ format: 'date-time' }) receivedAt!: string;
  @ApiProperty({ description: 'Times replayed' }) replays!: number;
}

export class DeadLetterList {
  @ApiProperty() tenant!: string;
  @ApiProperty({ type: [DeadLetterView] }) deadLetters!: DeadLetterView[];
}

export class DeadLetterReplayed {
  @ApiProperty({ enum: [true] }) replayed!: boolean;
  @ApiProperty() subject!: string;
  @ApiProperty() msgId!: string;
  @ApiProperty({ type: () => DeadLetterView }) deadLetter!: DeadLetterView;
}

export class PacksStatus {
  @ApiProperty({ description: 'Every pack has been loaded once' }) ready!: boolean;
  @ApiProperty({ type: 'object', additionalProperties: true, description: 'Trusted keys and policy' })
  trust!: Record<string, unknown>;
  @ApiPropertyOptional({ type: 'object', additionalProperties: true }) watch?: Record<string, unknown>;
  @ApiProperty({ type: 'array', items: { type: 'object', additionalProperties: true } })
  packs!: Record<string, unknown>[];
}

export class PackReloadRequest {
  @ApiPropertyOptional({ description: 'Only this tenant', pattern: '^[A-Za-z0-9_.-]+$' }) tenant?: string;
  @ApiPropertyOptional({ description: 'Only this pack', pattern: '^[A-Za-z0-9_.-]+$' }) pack?: string;
}

export class PackReloadResult {
  @ApiProperty({ description: 'false when a pack was refused (422)' }) ok!: boolean;
  @ApiProperty({
    type: 'array',
    items: { type: 'object', additionalProperties: true },
    description: "Each pack's outcome: reloaded, unchanged or failed (with the reason)",
  })
  results!: Record<string, unknown>[];
}

// WebChat / Direct Line 3.0.

export class ConversationInfo {
  @ApiProperty() conversationId!: string;
  @ApiProperty() token!: string;
  @ApiProperty() expires_in!: number;
  @ApiPropertyOptional({ description: 'WebSocket URL of the activity stream' }) streamUrl?: string;
  @ApiPropertyOptional() referenceGrammarId?: string;
}

export class DirectLineActivity {
  @ApiProperty({ example: 'message' }) type!: string;
  @ApiPropertyOptional() id?: string;
  @ApiPropertyOptional({ format: 'date-time' }) timestamp?: string;
  @ApiPropertyOptional({ type: 'object', additionalProperties: true }) from?: Record<string, unknown>;
  @ApiPropertyOptional() text?: string;
  @ApiPropertyOptional({ type: 'array', items: { type: 'object', additionalProperties: true } })
  attachments?: Record<string, unknown>[];
  @ApiPropertyOptional({ type: 'object', additionalProperties: true }) value?: Record<string, unknown>;
}

export class ActivitySet {
  @ApiProperty({ type: [DirectLineActivity] }) activities!: DirectLineActivity[];
  @ApiProperty() watermark!: string;
}

export class ResourceId {
  @ApiProperty() id!: string;
}

export class DirectLineUser {
  @ApiProperty({ maxLength: 256 }) id!: string;
  @ApiPropertyOptional() name?: string;
}

export class DirectLineTokenRequest {
  @ApiPropertyOptional({ type: () => DirectLineUser, description: 'Binds the token to this user id' })
  user?: DirectLineUser;
}
