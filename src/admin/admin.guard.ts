import { Injectable, Logger, type CanActivate, type ExecutionContext } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { adminAccess } from '../common/admin-access.js';
import { GreenticError } from '../common/errors.js';
import { RunnerConfig } from '../config/runner-config.js';

export class AdminAccessError extends GreenticError {
  constructor(message: string, status: 401 | 403) {
    super(status === 401 ? 'admin_unauthorized' : 'admin_forbidden', message, status);
  }
}

/**
 * Admin routes: `x-admin-token` must equal GREENTIC_ADMIN_TOKEN when one is configured; without
 * a token only loopback callers get in (adminAccess; behind a proxy, configure a token). Put
 * `@UseGuards(AdminGuard)` on any admin controller.
 */
@Injectable()
export class AdminGuard implements CanActivate {
  private readonly logger = new Logger(AdminGuard.name);

  constructor(private readonly config: RunnerConfig) {}

  canActivate(ctx: ExecutionContext): boolean {
    const req = ctx.switchToHttp().getRequest<FastifyRequest>();
    const access = adminAccess(req, this.config.GREENTIC_ADMIN_TOKEN);
    if (access.granted) return true;
    const path = req.url.split('?')[0];
    if (access.status === 401)
      this.logger.warn(
        { remote: access.remote, path, presented: access.presented },
        'admin request refused: bad or missing token',
      );
    else
      this.logger.warn(
        { remote: access.remote, path },
        'admin request refused: not loopback and no admin token configured',
      );
    throw new AdminAccessError(access.reason, access.status);
  }
}
