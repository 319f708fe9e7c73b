import { Controller, Get, HttpStatus, Inject, Res } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { HealthCheck, HealthCheckService, HealthIndicatorService } from '@nestjs/terminus';
import { MESSAGE_BUS, type MessageBus } from '../core/message-bus.js';
import { ProviderRegistry } from '../messaging/providers/provider-registry.service.js';
import { PackRegistry } from '../packs/pack-registry.service.js';
import { SESSION_STORE, type SessionStore } from '../core/session-store.js';
import { componentsHealth } from '../wasm/component-health.js';
import { COMPONENT_RUNTIME, type ComponentRuntime } from '../core/component-runtime.js';
import { LiveResponse, ReadyResponse } from '../common/openapi-schemas.js';
import { LifecycleService } from './lifecycle.service.js';

/** `/health`: one indicator per dependency a message needs (bus, session store, packs). */
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
  ) {}

  @Get()
  @ApiOperation({ summary: 'Each dependency a message needs: bus, session store, packs, components' })
  @HealthCheck()
  check() {
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
    @Res({ passthrough: true }) res: FastifyReply,
  ): Promise<{ status: 'ok' | 'unavailable'; checks: Record<string, unknown> }> {
    const r = await this.lifecycle.readiness();
    if (!r.ready) void res.code(HttpStatus.SERVICE_UNAVAILABLE);
    return { status: r.ready ? 'ok' : 'unavailable', checks: r.checks };
  }
}
