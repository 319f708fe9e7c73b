import { Module } from '@nestjs/common';
import { WhatsAppProvider } from './whatsapp.provider.js';

@Module({ providers: [WhatsAppProvider] })
export class WhatsAppModule {}
