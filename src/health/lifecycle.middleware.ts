import { Injectable, type NestMiddleware } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import { LifecycleService } from './lifecycle.service.js';

/** Operator routes: answered while draining, and not work to wait for. */
const OPERATIONS = /^\/(health|metrics|admin|openapi\.json)(\/|$|\?)/;

/** Counts requests in flight, and refuses new ones (but probes and admin) while the runner drains. */
@Injectable()
export class LifecycleMiddleware implements NestMiddleware {
  constructor(private readonly lifecycle: LifecycleService) {}

  use(req: Request, res: Response, next: NextFunction): void {
    if (OPERATIONS.test(req.originalUrl ?? req.url)) {
      next();
      return;
    }
    if (this.lifecycle.draining) {
      res.setHeader('Retry-After', '5');
      res.setHeader('Connection', 'close');
      res.status(503).json({
        error: { code: 'shutting_down', message: 'the runner is shutting down; retry on another replica' },
      });
      return;
    }
    this.lifecycle.httpInFlight++;
    let done = false;
    const leave = (): void => {
      if (done) return;
      done = true;
      this.lifecycle.httpInFlight--;
    };
    res.once('finish', leave);
    res.once('close', leave);
    next();
  }
}
