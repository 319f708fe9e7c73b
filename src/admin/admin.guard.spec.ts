import 'reflect-metadata';
import type { ExecutionContext } from '@nestjs/common';
import { describe, expect, it } from 'vitest';
import { RunnerConfig } from '../config/runner-config.js';
import { AdminAccessError, AdminGuard } from './admin.guard.js';

function ctx(remoteAddress: string, headers: Record<string, string> = {}): ExecutionContext {
  // The shape of a FastifyRequest the guard reads.
  const req = { socket: { remoteAddress }, headers, url: '/admin/packs/status' };
  return { switchToHttp: () => ({ getRequest: () => req }) } as unknown as ExecutionContext;
}

function guard(token?: string): AdminGuard {
  const cfg = new RunnerConfig();
  if (token) cfg.GREENTIC_ADMIN_TOKEN = token;
  return new AdminGuard(cfg);
}

describe('AdminGuard', () => {
  it('without a token: loopback callers only (IPv4, IPv6, mapped)', () => {
    for (const a of ['127.0.0.1', '::1', '::ffff:127.0.0.1']) expect(guard().canActivate(ctx(a))).toBe(true);
    expect(() => guard().canActivate(ctx('10.1.2.3'))).toThrow(AdminAccessError);
    // A forwarded-for header claiming loopback changes nothing.
    expect(() => guard().canActivate(ctx('10.1.2.3', { 'x-forwarded-for': '127.0.0.1' }))).toThrow(
      /loopback callers only/,
    );
  });

  it('with a token: the header must match, from anywhere, loopback included', () => {
    const g = guard('t0ken');
    expect(g.canActivate(ctx('10.1.2.3', { 'x-admin-token': 't0ken' }))).toBe(true);
    expect(() => g.canActivate(ctx('127.0.0.1'))).toThrow(/valid x-admin-token/);
    try {
      g.canActivate(ctx('10.1.2.3', { 'x-admin-token': 't0ke' }));
      expect.unreachable();
    } catch (e) {
      expect(e).toMatchObject({ code: 'admin_unauthorized', httpStatus: 401 });
    }
  });
});
