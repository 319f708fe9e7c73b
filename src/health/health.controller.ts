import { Controller, Get, Inject } from '@nestjs/common';
import { HealthCheck, HealthCheckService, HealthIndicatorService } from '@nestjs/terminus';
import { MESSAGE_BUS, type MessageBus } from '../messaging/message-bus.js';
import { ProviderRegistry } from '../messaging/providers/provider-registry.service.js';
import { PackRegistry } from '../packs/pack-registry.service.js';
import { SESSION_STORE, type SessionStore } from '../sessions/session-store.js';

/** `/health`: one indicator per dependency a message needs (bus, session store, packs). */
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly indicators: HealthIndicatorService,
    @Inject(MESSAGE_BUS) private readonly bus: MessageBus,
    @Inject(SESSION_STORE) private readonly sessions: SessionStore,
    private readonly packs: PackRegistry,
    private readonly providers: ProviderRegistry,
  ) {}

  @Get()
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
    ]);
  }

  @Get('live')
  live(): { status: 'ok' } {
    return { status: 'ok' };
  }
}
