import { createHash, timingSafeEqual } from 'node:crypto';
import { Injectable, Logger, type CanActivate, type ExecutionContext } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { GreenticError } from '../common/errors.js';
import { RunnerConfig } from '../config/runner-config.js';

export class AdminAccessError extends GreenticError {
  constructor(message: string, status: 401 | 403) {
    super(status === 401 ? 'admin_unauthorized' : 'admin_forbidden', message, status);
  }
}

const LOOPBACK = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1']);

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/**
 * Admin routes: `x-admin-token` must equal GREENTIC_ADMIN_TOKEN when one is configured; without
 * a token only loopback callers get in. The socket address is used, never X-Forwarded-For, which
 * any caller can write (behind a proxy, configure a token). Put `@UseGuards(AdminGuard)` on any
 * admin controller.
 */
@Injectable()
export class AdminGuard implements CanActivate {
  private readonly logger = new Logger(AdminGuard.name);

  constructor(private readonly config: RunnerConfig) {}

  canActivate(ctx: ExecutionContext): boolean {
    const req = ctx.switchToHttp().getRequest<FastifyRequest>();
    const remote = req.socket?.remoteAddress ?? 'unknown';
    const token = this.config.GREENTIC_ADMIN_TOKEN;
    if (token) {
      const given = req.headers['x-admin-token'];
      // Compare fixed-length digests so the comparison time says nothing about the token.
      if (typeof given === 'string' && timingSafeEqual(digest(given), digest(token))) return true;
      this.logger.warn(
        { remote, path: req.url.split('?')[0], presented: typeof given === 'string' },
        'admin request refused: bad or missing token',
      );
      throw new AdminAccessError('admin routes need a valid x-admin-token header', 401);
    }
    if (LOOPBACK.has(remote)) return true;
    this.logger.warn(
      { remote, path: req.url.split('?')[0] },
      'admin request refused: not loopback and no admin token configured',
    );
    throw new AdminAccessError(
      'admin routes are open to loopback callers only (set GREENTIC_ADMIN_TOKEN for remote access)',
      403,
    );
  }
}
