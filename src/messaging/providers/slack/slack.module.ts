import { Module } from '@nestjs/common';
import { SecretsModule } from '../../../secrets/secrets.module.js';
import { SlackProvider } from './slack.provider.js';

@Module({ imports: [SecretsModule], providers: [SlackProvider] })
export class SlackModule {}
