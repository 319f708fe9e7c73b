import { Module } from '@nestjs/common';
import { SecretsModule } from '../../../secrets/secrets.module.js';
import { WhatsAppProvider } from './whatsapp.provider.js';

@Module({ imports: [SecretsModule], providers: [WhatsAppProvider] })
export class WhatsAppModule {}
