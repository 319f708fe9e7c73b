import { Controller, Get, Param, UseGuards } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiParam } from '@nestjs/swagger';
import { ApiAdmin, ApiErrors, FlowList } from '../common/openapi-schemas.js';
import { PackRegistry } from '../packs/pack-registry.service.js';
import { BundleRegistry } from '../tenancy/bundle-registry.service.js';
import { AdminGuard } from './admin.guard.js';

export interface FlowView {
  pack: string;
  packVersion: string;
  id: string;
  type: string;
  title?: string;
  start: string;
  nodes: { id: string; operation: string }[];
  /** `env/team/channel` of the channels bound to this flow. */
  boundTo: string[];
}

/** `/admin/tenants/{tenant}/flows`: the flows of a tenant's loaded packs, and which channels use them. */
@ApiAdmin()
@Controller('admin/tenants/:tenant/flows')
@UseGuards(AdminGuard)
export class FlowsAdminController {
  constructor(
    private readonly registry: BundleRegistry,
    private readonly packs: PackRegistry,
  ) {}

  @Get()
  @ApiOperation({ summary: "Flows of a tenant's loaded packs" })
  @ApiParam({ name: 'tenant' })
  @ApiOkResponse({ type: FlowList })
  @ApiErrors(404)
  list(@Param('tenant') tenantId: string): { tenant: string; flows: FlowView[] } {
    const tenant = this.registry.tenant(tenantId);
    const bindings: { flow: string; pack: string; at: string }[] = [];
    for (const env of tenant.envs.values())
      for (const team of env.teams.values())
        for (const c of team.channels.values())
          bindings.push({ pack: c.pack, flow: c.flow, at: `${env.id}/${team.id}/${c.id}` });
    const flows: FlowView[] = [];
    for (const p of tenant.packs) {
      const pack = this.packs.current(tenant.id, p.id);
      if (!pack) continue;
      for (const f of pack.flows.values()) {
        flows.push({
          pack: pack.id,
          packVersion: pack.version,
          id: f.id,
          type: f.type,
          ...(f.title ? { title: f.title } : {}),
          start: f.start,
          nodes: [...f.nodes.values()].map((n) => ({ id: n.id, operation: n.operation })),
          boundTo: bindings.filter((b) => b.pack === pack.id && b.flow === f.id).map((b) => b.at),
        });
      }
    }
    return { tenant: tenant.id, flows };
  }
}
