import { Module } from '@nestjs/common';
import { TeamsProvider } from './teams.provider.js';

@Module({ providers: [TeamsProvider] })
export class TeamsModule {}
