import { Body, Controller, Get, HttpCode, Post, Query, Res, UseGuards } from '@nestjs/common';
import { ApiBody, ApiOkResponse, ApiOperation, ApiQuery, ApiResponse } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { BadRequestError, GreenticError } from '../common/errors.js';
import { PackRegistry, type PackStatus, type ReloadResult } from '../packs/pack-registry.service.js';
import { PackTrustService, type TrustSummary } from '../packs/verify/pack-trust.service.js';
import { BundleRegistry } from '../tenancy/bundle-registry.service.js';
import {
  ApiAdmin,
  ApiErrors,
  PackReloadRequest,
  PackReloadResult,
  PacksStatus,
} from '../common/openapi-schemas.js';
import { AdminGuard } from './admin.guard.js';

interface ReloadBody {
  tenant?: unknown;
  pack?: unknown;
}

function optId(v: unknown, name: string): string | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string' || !/^[A-Za-z0-9_.-]+$/.test(v))
    throw new BadRequestError(`'${name}' must be an id`, { field: name });
  return v;
}

/** `/admin/packs`: what is loaded, and a reload that reports each pack's outcome. */
@ApiAdmin()
@Controller('admin/packs')
@UseGuards(AdminGuard)
export class PacksAdminController {
  constructor(
    private readonly packs: PackRegistry,
    private readonly trust: PackTrustService,
    private readonly bundles: BundleRegistry,
  ) {}

  @Get('status')
  @ApiOperation({ summary: 'Loaded packs: versions, digests, signatures, trust and watch settings' })
  @ApiOkResponse({ type: PacksStatus })
  status(): {
    ready: boolean;
    trust: TrustSummary;
    watch?: { intervalMs: number; paths: string[] };
    packs: PackStatus[];
  } {
    return {
      ready: this.packs.ready,
      trust: this.trust.summary(),
      watch: this.packs.watching(),
      packs: this.packs.status(),
    };
  }

  /**
   * Reloads now (all packs, or `{tenant, pack}` from the body or query). 200 when nothing failed,
   * 422 when a pack was refused; the previous version keeps serving either way. An unknown tenant
   * or pack is 404: "reloaded nothing, ok" would hide a typo in a deploy script.
   */
  @Post('reload')
  @HttpCode(200)
  @ApiOperation({
    summary:
      'Reload packs now (all, or one tenant and/or pack); the previous version keeps serving on failure',
  })
  @ApiQuery({ name: 'tenant', required: false, description: 'Only this tenant (also accepted in the body)' })
  @ApiQuery({ name: 'pack', required: false, description: 'Only this pack (also accepted in the body)' })
  @ApiBody({ type: PackReloadRequest, required: false })
  @ApiOkResponse({ type: PackReloadResult, description: 'Nothing failed' })
  @ApiResponse({ status: 422, type: PackReloadResult, description: 'A pack was refused' })
  @ApiErrors(400, 404)
  async reload(
    @Body() body: ReloadBody | undefined,
    @Query('tenant') qTenant: string | undefined,
    @Query('pack') qPack: string | undefined,
    @Res({ passthrough: true }) res: FastifyReply,
  ): Promise<{ ok: boolean; results: ReloadResult[] }> {
    const tenant = optId(body?.tenant ?? qTenant, 'tenant');
    const pack = optId(body?.pack ?? qPack, 'pack');
    this.checkTarget(tenant, pack);
    const results = await this.packs.reload({ tenant, pack });
    const ok = results.every((r) => r.outcome !== 'failed');
    if (!ok) void res.code(422);
    return { ok, results };
  }

  private checkTarget(tenant: string | undefined, pack: string | undefined): void {
    if (tenant !== undefined) this.bundles.tenant(tenant);
    if (pack === undefined) return;
    const scope = tenant !== undefined ? [this.bundles.tenant(tenant)] : this.bundles.tenants();
    if (scope.some((t) => t.packs.some((p) => p.id === pack))) return;
    const known = [...new Set(scope.flatMap((t) => t.packs.map((p) => p.id)))];
    throw new GreenticError(
      'unknown_pack',
      `unknown pack '${pack}'${tenant !== undefined ? ` for tenant '${tenant}'` : ''} (packs: ${known.length ? known.join(', ') : 'none'})`,
      404,
      { pack, ...(tenant !== undefined ? { tenant } : {}) },
    );
  }
}
