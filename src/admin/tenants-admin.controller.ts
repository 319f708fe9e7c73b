import { Controller, Get, Param, UseGuards } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiParam } from '@nestjs/swagger';
import {
  ApiAdmin,
  ApiErrors,
  TenantList,
  TenantView as TenantViewSchema,
} from '../common/openapi-schemas.js';
import { PackRegistry } from '../packs/pack-registry.service.js';
import { SecretsService } from '../secrets/secrets.service.js';
import { BundleRegistry } from '../tenancy/bundle-registry.service.js';
import type { TenantBinding } from '../tenancy/bundle.types.js';
import { AdminGuard } from './admin.guard.js';
import { redactForAdmin } from './admin-redaction.js';

export interface ChannelView {
  env: string;
  team: string;
  channel: string;
  provider: string;
  pack: string;
  flow: string;
  sessionTtlSeconds: number;
  settings: Record<string, unknown>;
  /** Names only: the secrets this channel may read, and which provider secret maps to which name. */
  secrets: string[];
  secretRefs: Record<string, string>;
}

export interface TenantView {
  tenant: string;
  envs: string[];
  packs: { id: string; source: string; loadedVersion?: string }[];
  channels: ChannelView[];
  secrets: { backend: string; nameTemplate?: string; cache?: unknown };
  limits: TenantBinding['limits'];
}

/** `/admin/tenants`: tenants with their bindings (channels → provider, pack, flow). Never a secret value. */
@ApiAdmin()
@Controller('admin/tenants')
@UseGuards(AdminGuard)
export class TenantsAdminController {
  constructor(
    private readonly registry: BundleRegistry,
    private readonly packs: PackRegistry,
    private readonly secrets: SecretsService,
  ) {}

  @Get()
  @ApiOperation({ summary: 'List tenants and their channel bindings' })
  @ApiOkResponse({ type: TenantList })
  list(): { tenants: TenantView[] } {
    return { tenants: this.registry.tenants().map((t) => this.view(t)) };
  }

  @Get(':tenant')
  @ApiOperation({ summary: "One tenant's envs, teams, channels, packs and secrets backend" })
  @ApiParam({ name: 'tenant' })
  @ApiOkResponse({ type: TenantViewSchema })
  @ApiErrors(404)
  one(@Param('tenant') tenant: string): TenantView {
    return this.view(this.registry.tenant(tenant));
  }

  private view(t: TenantBinding): TenantView {
    const channels: ChannelView[] = [];
    for (const env of t.envs.values())
      for (const team of env.teams.values())
        for (const c of team.channels.values())
          channels.push({
            env: env.id,
            team: team.id,
            channel: c.id,
            provider: c.provider,
            pack: c.pack,
            flow: c.flow,
            sessionTtlSeconds: c.sessionTtlSeconds,
            settings: c.settings,
            secrets: c.secrets,
            secretRefs: c.secretRefs,
          });
    const s = this.secrets.status().find((x) => x.tenant === t.id);
    return redactForAdmin({
      tenant: t.id,
      envs: [...t.envs.keys()],
      packs: t.packs.map((p) => ({
        id: p.id,
        source: p.source,
        loadedVersion: this.packs.current(t.id, p.id)?.version,
      })),
      channels,
      secrets: { backend: t.secrets.backend, nameTemplate: s?.nameTemplate, cache: s?.cache },
      limits: t.limits,
    });
  }
}
