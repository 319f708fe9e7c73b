import { Controller, Get, HttpStatus, Inject, Req, Res } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import {
  HealthCheck,
  HealthCheckService,
  HealthIndicatorService,
  type HealthCheckResult,
  type HealthIndicatorResult,
} from '@nestjs/terminus';
import { adminAccess } from '../common/admin-access.js';
import { RunnerConfig } from '../config/runner-config.js';
import { MESSAGE_BUS, type MessageBus } from '../core/message-bus.js';
import { ProviderRegistry } from '../messaging/providers/provider-registry.service.js';
import { PackRegistry } from '../packs/pack-registry.service.js';
import { SESSION_STORE, type SessionStore } from '../core/session-store.js';
import { componentsHealth } from '../wasm/component-health.js';
import { COMPONENT_RUNTIME, type ComponentRuntime } from '../core/component-runtime.js';
import { LiveResponse, ReadyResponse } from '../common/openapi-schemas.js';
import { LifecycleService } from './lifecycle.service.js';

/** One indicator's status, without its details. */
function statusOnly(r: Partial<HealthIndicatorResult> | undefined): HealthIndicatorResult | undefined {
  if (!r) return undefined;
  const out: HealthIndicatorResult = {};
  for (const [k, v] of Object.entries(r)) if (v) out[k] = { status: v.status };
  return out;
}

/**
 * `/health`: one indicator per dependency a message needs (bus, session store, packs, components).
 * Anyone gets each check's status; the details (pack sources, digests and signer fingerprints,
 * bus and store connection facts, per-tenant pools) only callers the admin API admits (a valid
 * `x-admin-token`, or loopback when no token is configured), as they are the admin API's facts.
 */
@ApiTags('health')
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly indicators: HealthIndicatorService,
    @Inject(MESSAGE_BUS) private readonly bus: MessageBus,
    @Inject(SESSION_STORE) private readonly sessions: SessionStore,
    private readonly packs: PackRegistry,
    private readonly providers: ProviderRegistry,
    private readonly lifecycle: LifecycleService,
    @Inject(COMPONENT_RUNTIME) private readonly components: ComponentRuntime,
    private readonly config: RunnerConfig,
  ) {}

  private detailed(req: FastifyRequest): boolean {
    return adminAccess(req, this.config.GREENTIC_ADMIN_TOKEN).granted;
  }

  @Get()
  @ApiOperation({
    summary: 'Each dependency a message needs: bus, session store, packs, components',
    description:
      'Status per check for anyone; the details (paths, digests, fingerprints) only for admin callers (x-admin-token, or loopback without a token).',
  })
  @HealthCheck()
  async check(@Req() req: FastifyRequest): Promise<HealthCheckResult> {
    // A failed check throws (503); the exception filter answers it without the report's details.
    const r = await this.report();
    if (this.detailed(req)) return r;
    return {
      status: r.status,
      info: statusOnly(r.info),
      error: statusOnly(r.error),
      details: statusOnly(r.details) ?? {},
    };
  }

  private report(): Promise<HealthCheckResult> {
    return this.health.check([
      async () => {
        const h = await this.bus.health();
        const s = this.indicators.check('bus');
        return h.up ? s.up(h.details) : s.down(h.details);
      },
      async () => {
        const h = await this.sessions.health();
        const s = this.indicators.check('sessions');
        return h.up ? s.up(h.details) : s.down(h.details);
      },
      async () => {
        const status = this.packs.status();
        const s = this.indicators.check('packs');
        const failed = status.filter((p) => !p.version);
        const details = {
          loaded: status.length - failed.length,
          packs: status,
          providers: this.providers.ids(),
        };
        return this.packs.ready && failed.length === 0 ? s.up(details) : s.down(details);
      },
      () => {
        const h = componentsHealth(this.components);
        const s = this.indicators.check('components');
        return h.up ? s.up(h.details) : s.down(h.details);
      },
    ]);
  }

  /** Liveness: the process and its event loop answer. Stays up while draining. */
  @Get('live')
  @ApiOperation({ summary: 'Liveness: the process answers (also while draining)' })
  @ApiOkResponse({ type: LiveResponse })
  live(): { status: 'ok' } {
    return { status: 'ok' };
  }

  /** Readiness: packs loaded, bus and session store reachable, not draining; 503 otherwise. */
  @Get('ready')
  @ApiOperation({ summary: 'Readiness: packs loaded, dependencies reachable, not draining' })
  @ApiOkResponse({ type: ReadyResponse })
  @ApiResponse({ status: 503, description: 'Not ready', type: ReadyResponse })
  async ready(
    @Req() req: FastifyRequest,
    @Res({ passthrough: true }) res: FastifyReply,
  ): Promise<{ status: 'ok' | 'unavailable'; checks: Record<string, unknown> }> {
    const r = await this.lifecycle.readiness();
    if (!r.ready) void res.code(HttpStatus.SERVICE_UNAVAILABLE);
    // Unresolved secrets name tenants, secrets and variables: details for admin callers only.
    const checks = this.detailed(req)
      ? r.checks
      : Object.fromEntries(Object.entries(r.checks).map(([k, c]) => [k, { up: c.up }]));
    return { status: r.ready ? 'ok' : 'unavailable', checks };
  }
}
