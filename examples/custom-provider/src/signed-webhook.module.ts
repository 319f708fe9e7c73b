import { Module } from '@nestjs/common';
// In a published package this is `from 'greentic-runner/providers'`.
import { SecretsModule } from '../../../src/messaging/providers/index.js';
import { SignedWebhookProvider } from './signed-webhook.provider.js';

/**
 * Adding a channel is this: a module that provides a class decorated with `@GreenticProvider`.
 * The runner's ProviderRegistry finds it with Nest's DiscoveryService; nothing else is registered.
 * It imports what its provider injects (SecretsService, for the channel's signing secret).
 */
@Module({ imports: [SecretsModule], providers: [SignedWebhookProvider] })
export class SignedWebhookModule {}
