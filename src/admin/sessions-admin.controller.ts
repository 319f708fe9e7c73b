import { Controller, Delete, Get, HttpCode, Logger, Param, UseGuards } from '@nestjs/common';
import { ApiNoContentResponse, ApiOkResponse, ApiOperation, ApiParam } from '@nestjs/swagger';
import { ApiAdmin, ApiErrors, SessionView as SessionViewSchema } from '../common/openapi-schemas.js';
import { GreenticError } from '../common/errors.js';
import { TenantSessions } from '../sessions/tenant-sessions.service.js';
import { BundleRegistry } from '../tenancy/bundle-registry.service.js';
import { TenantScopes } from '../tenancy/tenant-scopes.service.js';
import { AdminGuard } from './admin.guard.js';
import { redactForAdmin } from './admin-redaction.js';

export class SessionNotFoundError extends GreenticError {
  constructor(tenant: string, key: string) {
    super('session_not_found', `no session '${key}' for tenant '${tenant}'`, 404, { tenant, key });
  }
}

export interface SessionView {
  tenant: string;
  env: string;
  team: string;
  key: string;
  version: number;
  updatedAt: string;
  /** Where the flow waits, when it is parked. */
  parked: {
    pack: string;
    packVersion: string;
    flow: string;
    node: string;
    pending?: Record<string, unknown>;
  } | null;
  state: Record<string, unknown> | null;
  data: Record<string, unknown>;
  recentMessages: string[];
}

/**
 * `/admin/tenants/{tenant}/{env}/{team}/sessions/{key}`: look a session up, or end it (the next
 * message starts its flow afresh). The session key is `{tenant}:{provider}:{conversation}:{user}`;
 * a key of another tenant is not found, whatever the store holds.
 */
@ApiAdmin()
@ApiParam({ name: 'tenant' })
@ApiParam({ name: 'env' })
@ApiParam({ name: 'team' })
@ApiErrors(404)
@Controller('admin/tenants/:tenant/:env/:team/sessions')
@UseGuards(AdminGuard)
export class SessionsAdminController {
  private readonly logger = new Logger(SessionsAdminController.name);

  constructor(
    private readonly registry: BundleRegistry,
    private readonly scopes: TenantScopes,
  ) {}

  @Get(':key')
  @ApiOperation({ summary: 'Look up a session: where its flow is parked, its state and data' })
  @ApiParam({ name: 'key', description: '{tenant}:{provider}:{conversation}:{user}' })
  @ApiOkResponse({ type: SessionViewSchema })
  async get(
    @Param('tenant') tenant: string,
    @Param('env') env: string,
    @Param('team') team: string,
    @Param('key') key: string,
  ): Promise<SessionView> {
    const sessions = await this.sessionsOf(tenant, env, team, key);
    const s = await sessions.load(key);
    if (!s || s.version === 0) throw new SessionNotFoundError(tenant, key);
    return redactForAdmin({
      tenant,
      env,
      team,
      key: s.key,
      version: s.version,
      updatedAt: s.updatedAt,
      parked: s.snapshot
        ? {
            pack: s.snapshot.packId,
            packVersion: s.snapshot.packVersion,
            flow: s.snapshot.flowId,
            node: s.snapshot.nodeId,
            ...(s.snapshot.pending ? { pending: s.snapshot.pending } : {}),
          }
        : null,
      state: s.snapshot?.state ?? null,
      data: s.data,
      recentMessages: (s.processed ?? []).map((p) => p.id),
    });
  }

  @Delete(':key')
  @HttpCode(204)
  @ApiOperation({ summary: 'End a session: its parked flow and data are dropped' })
  @ApiParam({ name: 'key', description: '{tenant}:{provider}:{conversation}:{user}' })
  @ApiNoContentResponse({ description: 'Ended' })
  async end(
    @Param('tenant') tenant: string,
    @Param('env') env: string,
    @Param('team') team: string,
    @Param('key') key: string,
  ): Promise<void> {
    const sessions = await this.sessionsOf(tenant, env, team, key);
    const s = await sessions.load(key);
    if (!s || s.version === 0) throw new SessionNotFoundError(tenant, key);
    await sessions.delete(key);
    this.logger.log({ tenant, env, team, session: key }, 'session ended by an operator');
  }

  /** The tenant's own sessions (404 for an unknown tenancy or a key of another tenant). */
  private sessionsOf(tenant: string, env: string, team: string, key: string): Promise<TenantSessions> {
    const { ctx } = this.registry.resolveTenant({ tenant, env, team });
    // Keys start with their tenant; anything else is not this tenant's, even if a store has it.
    if (!key.startsWith(`${tenant}:`)) throw new SessionNotFoundError(tenant, key);
    return this.scopes.get(ctx, TenantSessions);
  }
}
