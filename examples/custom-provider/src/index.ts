export { SignedWebhookModule } from './signed-webhook.module.js';
export { MAX_SKEW_S, sign, SignedWebhookProvider } from './signed-webhook.provider.js';
