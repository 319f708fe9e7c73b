import { Module } from '@nestjs/common';
import { awsSecretsFactory } from './backends/aws-secrets.factory.js';
import { azureSecretsFactory } from './backends/azure-secrets.factory.js';
import { envSecretsFactory } from './backends/env-secrets.backend.js';
import { fileSecretsFactory } from './backends/file-secrets.backend.js';
import { gcpSecretsFactory } from './backends/gcp-secrets.factory.js';
import { vaultSecretsFactory } from './backends/vault-secrets.backend.js';
import { TenancyModule } from '../tenancy/tenancy.module.js';
import { SECRETS_BACKEND_FACTORIES } from './secrets-backend.js';
import { SecretsService } from './secrets.service.js';
import { TenantSecrets } from './tenant-secrets.service.js';

/** Backends by the `secrets.backend` name a tenant's bundle entry uses. */
export const SECRETS_FACTORIES = [
  envSecretsFactory,
  fileSecretsFactory,
  vaultSecretsFactory,
  awsSecretsFactory,
  gcpSecretsFactory,
  azureSecretsFactory,
];

/** Secrets by tenant binding (BundleRegistry) and the tenant-bound TenantSecrets (TENANT_CTX). */
@Module({
  imports: [TenancyModule],
  providers: [
    { provide: SECRETS_BACKEND_FACTORIES, useValue: SECRETS_FACTORIES },
    SecretsService,
    TenantSecrets,
  ],
  exports: [SecretsService, TenantSecrets, SECRETS_BACKEND_FACTORIES],
})
export class SecretsModule {}
