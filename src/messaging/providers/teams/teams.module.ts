import { Module } from '@nestjs/common';
import { SecretsModule } from '../../../secrets/secrets.module.js';
import { TeamsProvider } from './teams.provider.js';

@Module({ imports: [SecretsModule], providers: [TeamsProvider] })
export class TeamsModule {}
