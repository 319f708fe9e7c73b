/**
 * Main-thread side of the `greentic:host` imports. A worker only forwards what the guest asked;
 * every decision is taken here, from the pool's own record of the call (tenant, component,
 * binding allow-lists, session), never from anything the worker sends, so a component cannot
 * claim another tenant or a wider allow-list.
 */
import { Logger } from '@nestjs/common';
import type { Span } from '@opentelemetry/api';
import { GreenticError } from '../../common/errors.js';
import { tenantKey, type TenantCtx } from '../../core/tenant-ctx.js';
import type { ComponentCallContext } from '../../core/component-runtime.js';
import type { HostAnswer, HostCall } from '../pool/protocol.js';
import { DEFAULT_STATE_LIMITS, stateOp, stateStoreOp, type StateLimits } from './component-state.js';
import { DEFAULT_HTTP_POLICY, guestFetch, type GuestHttpRequest, type HttpPolicy } from './http-fetch.js';

/** What the host needs from the rest of the runner (Nest services, or the CLI's stand-ins). */
export interface HostServices {
  /** SecretsService-shaped: refuses names outside `allowed`; undefined for a missing secret. */
  secrets?: {
    get(tenant: TenantCtx, name: string, allowed?: readonly string[]): Promise<string | undefined>;
  };
  /** The tenant's HTTP allow-list and limits (from the bundle); undefined: no outgoing HTTP. */
  httpPolicy?(tenant: TenantCtx): HttpPolicy | undefined;
  stateLimits?: StateLimits;
}

/** The pool's record of one component call, for the host calls it makes. */
export interface HostCallScope {
  tenant: TenantCtx;
  component: string;
  operation: string;
  ctx: ComponentCallContext;
  /** performance.now() at which the call's deadline passes. */
  deadlineAt: number;
  span?: Span;
  logLines: number;
}

const MAX_LOG_LINES_PER_CALL = 200;
const MAX_LOG_MESSAGE = 4096;
const MAX_LOG_FIELDS = 8192;
const MAX_EVENT_ATTRIBUTES = 32;
const MAX_ATTRIBUTE_VALUE = 1024;

const LEVELS = new Set(['trace', 'debug', 'info', 'warn', 'error']);

const err = (code: string, message: string): HostAnswer => ({ tag: 'err', val: { code, message } });

export class HostCalls {
  /** Component log lines: the logger context names the source; tenant and ids are on the line. */
  private readonly componentLog = new Logger('Component');
  private readonly logger = new Logger(HostCalls.name);

  constructor(private readonly services: HostServices = {}) {}

  /** Handles one host call; undefined for fire-and-forget ops (log, telemetry). */
  handle(scope: HostCallScope | undefined, call: HostCall): Promise<HostAnswer> | HostAnswer | undefined {
    if (call.op === 'log') return (this.log(scope, call.args), undefined);
    if (call.op === 'telemetry.event') return (this.event(scope, call.args), undefined);
    if (!scope) return err('unavailable', 'the component call this host call belongs to has ended');
    switch (call.op) {
      case 'secrets.get':
        return this.secret(scope, call.args[0]);
      case 'state.get':
        return stateOp(scope.ctx.session, scope.component, 'get', call.args, this.stateLimits);
      case 'state.set':
        return stateOp(scope.ctx.session, scope.component, 'set', call.args, this.stateLimits);
      case 'state.delete':
        return stateOp(scope.ctx.session, scope.component, 'delete', call.args, this.stateLimits);
      case 'http.fetch':
        return this.fetch(scope, call.args[0]);
      // upstream interfaces: the guest's ctx is ignored (its tenant claim is only logged)
      case 'state-store.read':
      case 'state-store.write':
      case 'state-store.delete': {
        const op = call.op.slice('state-store.'.length) as 'read' | 'write' | 'delete';
        const args = op === 'write' ? call.args.slice(0, 2) : call.args.slice(0, 1);
        this.checkClaim(scope, call.args[op === 'write' ? 2 : 1]);
        return stateStoreOp(scope.ctx.session, scope.component, op, args, this.stateLimits);
      }
      case 'http-client.send':
        this.checkClaim(scope, call.args[1]);
        return this.send(scope, call.args[0]);
      case 'secrets-store.get':
        return this.secretBytes(scope, call.args[0]);
      default:
        return err('invalid', `unknown host function '${String(call.op)}'`);
    }
  }

  private get stateLimits(): StateLimits {
    return this.services.stateLimits ?? DEFAULT_STATE_LIMITS;
  }

  private async secret(scope: HostCallScope, name: unknown): Promise<HostAnswer> {
    if (typeof name !== 'string' || name === '')
      return err('invalid', 'secret name must be a non-empty string');
    const allowed = scope.ctx.allowedSecrets ?? [];
    if (!allowed.includes(name)) {
      this.logger.warn(
        { ...this.who(scope), secret: name },
        'component asked for a secret its binding does not allow',
      );
      return err('denied', `secret '${name}' is not allowed for this binding`);
    }
    if (!this.services.secrets) return err('unavailable', 'no secrets service is configured');
    try {
      const value = await this.services.secrets.get(scope.tenant, name, allowed);
      return { tag: 'ok', val: value };
    } catch (e) {
      const code = e instanceof GreenticError && e.httpStatus === 403 ? 'denied' : 'unavailable';
      this.logger.warn(
        { ...this.who(scope), secret: name, code: (e as GreenticError).code },
        'secret read failed',
      );
      return err(code, e instanceof GreenticError ? e.message : `secret '${name}' could not be read`);
    }
  }

  private async fetch(scope: HostCallScope, request: unknown): Promise<HostAnswer> {
    const policy = this.services.httpPolicy?.(scope.tenant) ?? DEFAULT_HTTP_POLICY;
    const answer = await guestFetch(request, policy, { remainingMs: scope.deadlineAt - performance.now() });
    if (answer.tag === 'err' && answer.val.code === 'denied') {
      this.logger.warn({ ...this.who(scope), reason: answer.val.message }, 'component HTTP request refused');
    }
    return answer;
  }

  /** greentic:http/http-client `send`: today's http policy; the response body is `option<list<u8>>`. */
  private async send(scope: HostCallScope, request: unknown): Promise<HostAnswer> {
    const req = request as Partial<GuestHttpRequest> | null;
    // Upstream's request has no timeout field: the tenant's timeout and the call's deadline apply.
    const answer = await this.fetch(
      scope,
      req && typeof req === 'object' ? { ...req, timeoutMs: undefined } : req,
    );
    if (answer.tag === 'err') {
      // Upstream's code for a transport failure.
      return answer.val.code === 'failed' ? err('unavailable', answer.val.message) : answer;
    }
    return answer;
  }

  /** greentic:secrets-store `get`: the binding's allow-list, value as bytes, errors as its enum's cases. */
  private async secretBytes(scope: HostCallScope, key: unknown): Promise<HostAnswer> {
    const answer = await this.secret(scope, key);
    if (answer.tag === 'ok') {
      return {
        tag: 'ok',
        val: typeof answer.val === 'string' ? new Uint8Array(Buffer.from(answer.val, 'utf8')) : undefined,
      };
    }
    const code = { denied: 'denied', invalid: 'invalid-key' }[answer.val.code] ?? 'internal';
    return err(code, answer.val.message);
  }

  /** A guest-supplied tenant-ctx never widens the scope; naming another tenant is worth a warning. */
  private checkClaim(scope: HostCallScope, claimed: unknown): void {
    if (typeof claimed === 'string' && claimed !== scope.tenant.tenantId) {
      this.logger.warn(
        { ...this.who(scope), claimedTenant: claimed },
        "component passed another tenant's ctx to a host call; it was ignored",
      );
    }
  }

  private log(scope: HostCallScope | undefined, args: unknown[]): void {
    if (!scope) return;
    if (++scope.logLines > MAX_LOG_LINES_PER_CALL) {
      if (scope.logLines === MAX_LOG_LINES_PER_CALL + 1) {
        this.logger.warn(
          { ...this.who(scope) },
          `component logged more than ${MAX_LOG_LINES_PER_CALL} lines in one call; the rest are dropped`,
        );
      }
      return;
    }
    const [rawLevel, rawMessage, rawFields] = args;
    const level = typeof rawLevel === 'string' && LEVELS.has(rawLevel) ? rawLevel : 'info';
    const message = String(rawMessage ?? '').slice(0, MAX_LOG_MESSAGE);
    const line: Record<string, unknown> = { ...this.who(scope) };
    if (typeof rawFields === 'string' && rawFields !== '') {
      try {
        const parsed = rawFields.length <= MAX_LOG_FIELDS ? (JSON.parse(rawFields) as unknown) : undefined;
        line['fields'] = parsed ?? { truncated: true };
      } catch {
        line['fields'] = { invalid: true };
      }
    }
    switch (level) {
      case 'trace':
        this.componentLog.verbose(line, message);
        break;
      case 'debug':
        this.componentLog.debug(line, message);
        break;
      case 'warn':
        this.componentLog.warn(line, message);
        break;
      case 'error':
        this.componentLog.error(line, message);
        break;
      default:
        this.componentLog.log(line, message);
    }
  }

  private event(scope: HostCallScope | undefined, args: unknown[]): void {
    const span = scope?.span;
    if (!span) return;
    const [name, attributes] = args;
    if (typeof name !== 'string' || name === '') return;
    const attrs: Record<string, string> = {};
    if (Array.isArray(attributes)) {
      for (const pair of attributes.slice(0, MAX_EVENT_ATTRIBUTES)) {
        if (Array.isArray(pair) && typeof pair[0] === 'string') {
          attrs[pair[0]] = String(pair[1] ?? '').slice(0, MAX_ATTRIBUTE_VALUE);
        }
      }
    }
    span.addEvent(name.slice(0, 128), { ...attrs, 'greentic.component': scope.component });
  }

  private who(scope: HostCallScope): Record<string, unknown> {
    const sc = scope.span?.spanContext();
    return {
      tenant: scope.tenant.tenantId,
      env: scope.tenant.envId,
      ...(scope.tenant.teamId !== undefined ? { team: scope.tenant.teamId } : {}),
      tenantKey: tenantKey(scope.tenant),
      component: scope.component,
      operation: scope.operation,
      flow: scope.ctx.flowId,
      node: scope.ctx.nodeId,
      ...(scope.ctx.traceId ? { traceId: scope.ctx.traceId } : {}),
      ...(sc && sc.traceId !== '00000000000000000000000000000000'
        ? { traceId: sc.traceId, spanId: sc.spanId }
        : {}),
    };
  }
}
