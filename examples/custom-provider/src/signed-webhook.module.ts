import { Module } from '@nestjs/common';
import { SignedWebhookProvider } from './signed-webhook.provider.js';

/**
 * Adding a channel is this: a module that provides a class decorated with `@GreenticProvider`.
 * The runner's ProviderRegistry finds it with Nest's DiscoveryService; nothing else is registered.
 */
@Module({ providers: [SignedWebhookProvider] })
export class SignedWebhookModule {}
