import { Module } from '@nestjs/common';
import { SlackProvider } from './slack.provider.js';

@Module({ providers: [SlackProvider] })
export class SlackModule {}
