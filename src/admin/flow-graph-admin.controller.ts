import { Controller, Get, Param, Query, Res, UseGuards } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiParam, ApiProduces, ApiQuery } from '@nestjs/swagger';
import { ApiAdmin, ApiErrors } from '../common/openapi-schemas.js';
import type { FastifyReply } from 'fastify';
import { BadRequestError, GreenticError } from '../common/errors.js';
import { renderFlowGraph, type GraphFormat } from '../flows/flow-graph.js';
import { PackRegistry } from '../packs/pack-registry.service.js';
import { BundleRegistry } from '../tenancy/bundle-registry.service.js';
import { AdminGuard } from './admin.guard.js';

const CONTENT_TYPES: Record<GraphFormat, string> = {
  svg: 'image/svg+xml; charset=utf-8',
  dot: 'text/vnd.graphviz; charset=utf-8',
  mermaid: 'text/plain; charset=utf-8',
};

/**
 * `GET /admin/flows/{tenant}/{pack}/{flow}/graph`: a picture of a flow as deployed (the pack
 * version serving new conversations), SVG by default, `?format=dot|mermaid` for the sources.
 */
@ApiAdmin()
@Controller('admin/flows')
@UseGuards(AdminGuard)
export class FlowGraphAdminController {
  constructor(
    private readonly registry: BundleRegistry,
    private readonly packs: PackRegistry,
  ) {}

  @Get(':tenant/:pack/:flow/graph')
  @ApiOperation({ summary: 'Graph of a deployed flow: nodes, operations, routes and their conditions' })
  @ApiParam({ name: 'tenant' })
  @ApiParam({ name: 'pack' })
  @ApiParam({ name: 'flow' })
  @ApiQuery({ name: 'format', required: false, enum: ['svg', 'dot', 'mermaid'] })
  @ApiProduces('image/svg+xml', 'text/vnd.graphviz', 'text/plain')
  @ApiOkResponse({
    description: 'The graph as SVG (default), Graphviz dot or Mermaid',
    schema: { type: 'string' },
  })
  @ApiErrors(400, 404)
  async graph(
    @Param('tenant') tenantId: string,
    @Param('pack') packId: string,
    @Param('flow') flowId: string,
    @Query('format') format: string | undefined,
    @Res() res: FastifyReply,
  ): Promise<void> {
    const fmt = (format ?? 'svg') as GraphFormat;
    if (!(fmt in CONTENT_TYPES))
      throw new BadRequestError(`format must be svg, dot or mermaid, not '${format}'`);
    const tenant = this.registry.tenant(tenantId);
    if (!tenant.packs.some((p) => p.id === packId)) {
      throw new GreenticError('pack_not_found', `tenant '${tenant.id}' has no pack '${packId}'`, 404, {
        tenant: tenant.id,
        pack: packId,
      });
    }
    const pack = this.packs.current(tenant.id, packId);
    if (!pack) {
      throw new GreenticError(
        'pack_not_loaded',
        `pack '${packId}' of tenant '${tenant.id}' is not loaded`,
        404,
        {
          tenant: tenant.id,
          pack: packId,
        },
      );
    }
    const flow = pack.flows.get(flowId);
    if (!flow) {
      throw new GreenticError(
        'flow_not_found',
        `pack '${pack.id}@${pack.version}' has no flow '${flowId}' (it has: ${[...pack.flows.keys()].join(', ')})`,
        404,
        { tenant: tenant.id, pack: pack.id, flow: flowId },
      );
    }
    const body = await renderFlowGraph(flow, fmt);
    void res.header('content-type', CONTENT_TYPES[fmt]);
    void res.header('x-greentic-pack-version', pack.version);
    // The picture changes exactly when the pack version does.
    void res.header('etag', `"${pack.digest}:${flow.id}:${fmt}"`);
    void res.code(200).send(body);
  }
}
