import { Inject, Injectable } from '@nestjs/common';
import { isSpanContextValid, SpanStatusCode, trace, type Attributes, type Span } from '@opentelemetry/api';
import {
  ComponentLoadError,
  ComponentMemoryExceededError,
  ComponentTimeoutError,
  FlowExecutionError,
  GreenticError,
} from '../common/errors.js';
import type { MessageEnvelope, OutboundReply } from '../messaging/message-envelope.js';
import type { FlowSnapshot } from '../sessions/session-store.js';
import {
  COMPONENT_RUNTIME,
  type ComponentRuntime,
  type PreparedComponent,
} from '../wasm/component-runtime.js';
import { truthy } from './expression.js';
import type { FlowRunInput, FlowRunResult, NodeTrace } from './flow-run.types.js';
import type { FlowDefinition, FlowNode } from './flow.types.js';
import { planFor, type NodeExec, type NodePlan, type Render, type State } from './flow-plan.js';
import { checkAnswer, type QaQuestion } from './nodes/qa-process.js';
import { componentTargetOf, resolveOperation, STATE_ROOTS } from './operations.js';

export const DEFAULT_ERROR_REPLY = 'Sorry, something went wrong while handling your message.';

/** Backoff doubles per attempt; capped so that a large `backoff_ms` cannot stall a session. */
const MAX_BACKOFF_MS = 30_000;

type Outcome =
  | { kind: 'next'; replied: boolean; payload?: unknown }
  | { kind: 'park'; pending: Record<string, unknown> }
  | { kind: 'fail'; code: string; message: string };

interface Run {
  input: FlowRunInput;
  flow: FlowDefinition;
  state: State;
  replies: OutboundReply[];
  trace: NodeTrace[];
  sessionData: Record<string, unknown>;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Runs one inbound message through a flow: from the start node, or from the node a previous
 * message parked on, until the flow ends, parks for input, fails, or hits the step limit.
 * Component and flow errors come back as `status: 'failed'`; only programming errors throw.
 */
@Injectable()
export class FlowExecutorService {
  private readonly tracer = trace.getTracer('greentic-runner');

  constructor(@Inject(COMPONENT_RUNTIME) private readonly runtime: ComponentRuntime) {}

  async run(input: FlowRunInput): Promise<FlowRunResult> {
    const sessionData = { ...input.sessionData };
    const flow = input.pack.flows.get(input.flowId);
    if (!flow) {
      return {
        status: 'failed',
        replies: [{ text: DEFAULT_ERROR_REPLY }],
        snapshot: null,
        sessionData,
        error: { code: 'flow_not_found', message: `pack '${input.pack.id}' has no flow '${input.flowId}'` },
        trace: [],
      };
    }
    const plan = planFor(flow);
    const message = messageView(input.message);
    const snap = input.snapshot;
    const resumable =
      snap !== null && snap.flowId === flow.id && plan.nodes.get(snap.nodeId)?.exec.kind === 'qa';
    const state: State = resumable
      ? {
          ...snap.state,
          in: isRecord(snap.state['in']) ? { ...snap.state['in'] } : {},
          parameters: flow.parameters,
          session: sessionData,
          message,
        }
      : { in: {}, parameters: flow.parameters, session: sessionData, message };
    const run: Run = { input, flow, state, replies: [], trace: [], sessionData };

    let current: string | undefined = resumable ? snap.nodeId : flow.start;
    let pending: Record<string, unknown> | undefined = resumable ? (snap.pending ?? {}) : undefined;
    let last: string | undefined;
    let steps = 0;
    while (current !== undefined) {
      const np = plan.nodes.get(current);
      if (!np) {
        const message =
          last === undefined
            ? `flow '${flow.id}' has no node '${current}' to start from`
            : `node '${last}' of flow '${flow.id}' routes to unknown node '${current}'`;
        return this.failed(run, { code: 'flow_invalid', message, nodeId: last });
      }
      if (steps >= input.stepLimit) {
        const nodeId = last ?? current;
        return this.failed(run, {
          code: 'flow_step_limit',
          message: `flow '${flow.id}' exceeded the step limit of ${input.stepLimit} node executions for one message (last node '${nodeId}'); does it loop without asking for input?`,
          nodeId,
        });
      }
      steps++;
      const outcome = await this.step(np, run, pending);
      pending = undefined;
      last = np.node.id;
      if (outcome.kind === 'park') return this.parked(run, np.node.id, outcome.pending);
      if (outcome.kind === 'fail') {
        return this.failed(run, { code: outcome.code, message: outcome.message, nodeId: np.node.id });
      }
      current = this.route(np, run, outcome);
    }
    return { status: 'completed', replies: run.replies, snapshot: null, sessionData, trace: run.trace };
  }

  private step(np: NodePlan, run: Run, pending: Record<string, unknown> | undefined): Promise<Outcome> {
    const { node } = np;
    const { tenant, message } = run.input;
    const attributes: Attributes = {
      'greentic.flow': run.flow.id,
      'greentic.node': node.id,
      'greentic.operation': node.operation,
      'greentic.tenant': tenant.tenantId,
      'greentic.env': tenant.envId,
      'greentic.channel': message.channel,
    };
    if (tenant.teamId !== undefined) attributes['greentic.team'] = tenant.teamId;
    const extra = isRecord(run.flow.raw['nodes']) ? run.flow.raw['nodes'][node.id] : undefined;
    const telemetry =
      isRecord(extra) && isRecord(extra['telemetry']) ? extra['telemetry']['attributes'] : undefined;
    if (isRecord(telemetry)) {
      for (const [k, v] of Object.entries(telemetry)) if (typeof v === 'string') attributes[k] = v;
    }

    return this.tracer.startActiveSpan(`node ${node.id}`, { attributes }, async (span) => {
      const t0 = performance.now();
      let outcome: Outcome;
      try {
        // A resumed node was entered on an earlier message; its `when` held then.
        if (pending === undefined && np.when && !truthy(np.when(run.state))) {
          span.setAttribute('greentic.skipped', true);
          outcome = { kind: 'next', replied: false };
        } else {
          outcome = await this.execute(np, np.exec, run, pending, span);
        }
      } catch (e) {
        if (!(e instanceof GreenticError)) {
          span.recordException(e as Error);
          span.setStatus({ code: SpanStatusCode.ERROR });
          span.end();
          throw e;
        }
        outcome = { kind: 'fail', code: e.code, message: e.message };
      }
      const t: NodeTrace = {
        nodeId: node.id,
        operation: node.operation,
        durationMs: performance.now() - t0,
        ok: outcome.kind !== 'fail',
      };
      if (outcome.kind === 'fail') {
        t.error = outcome.code;
        span.setAttribute('greentic.error.code', outcome.code);
        span.setStatus({ code: SpanStatusCode.ERROR, message: outcome.code });
      }
      run.trace.push(t);
      span.end();
      return outcome;
    });
  }

  private async execute(
    np: NodePlan,
    exec: NodeExec,
    run: Run,
    pending: Record<string, unknown> | undefined,
    span: Span,
  ): Promise<Outcome> {
    const { node } = np;
    switch (exec.kind) {
      case 'qa':
        return this.qa(node, exec, run, pending);
      case 'template': {
        const text = render(exec.text, run.state, node);
        setPayload(run, node, { text });
        if (exec.reply) run.replies.push({ text });
        return { kind: 'next', replied: exec.reply, payload: { text } };
      }
      case 'reply': {
        const reply: OutboundReply = {};
        if (exec.text) reply.text = render(exec.text, run.state, node);
        if (exec.card) reply.card = guarded(() => exec.card!(run.state), node) as Record<string, unknown>;
        if (exec.choices) reply.choices = guarded(() => exec.choices!(run.state), node) as string[];
        setPayload(run, node, reply);
        run.replies.push(reply);
        return { kind: 'next', replied: true, payload: reply };
      }
      case 'component':
        return this.component(node, exec.args, run, span);
      case 'flow_call':
        throw new FlowExecutionError(
          'unsupported_operation',
          `node '${node.id}': flow.call (sub-flows) is not supported by this runner yet`,
          { nodeId: node.id },
        );
      case 'invalid':
        throw new FlowExecutionError('flow_invalid', exec.message, { nodeId: node.id });
    }
  }

  private qa(
    node: FlowNode,
    exec: Extract<NodeExec, { kind: 'qa' }>,
    run: Run,
    pending: Record<string, unknown> | undefined,
  ): Outcome {
    const { questions } = exec.spec;
    const answers = run.state['in'] as Record<string, unknown>;
    const ask = (i: number, problem?: string): Outcome => {
      if (problem) run.replies.push({ text: problem });
      const q = questions[i]!;
      const reply: OutboundReply = { text: render(exec.prompts[i]!, run.state, node) };
      if (q.answerType === 'choice') reply.choices = q.choices.map((c) => c.label);
      run.replies.push(reply);
      return { kind: 'park', pending: { question: i } };
    };

    const index = typeof pending?.['question'] === 'number' ? pending['question'] : -1;
    const q: QaQuestion | undefined = questions[index];
    if (pending === undefined || !q) {
      if (exec.welcome) run.replies.push({ text: render(exec.welcome, run.state, node) });
      return ask(0);
    }
    const check = checkAnswer(q, answerText(run.input.message));
    if (!check.ok) return ask(index, check.problem);
    answers[q.id] = check.value;
    if (index + 1 < questions.length) return ask(index + 1);
    const payload = Object.fromEntries(questions.map((x) => [x.id, answers[x.id] ?? null]));
    setPayload(run, node, payload);
    return { kind: 'next', replied: false, payload };
  }

  private async component(
    node: FlowNode,
    args: (s: State) => unknown,
    run: Run,
    span: Span,
  ): Promise<Outcome> {
    const { pack, tenant, message } = run.input;
    const target = componentTargetOf(node, (name) => pack.components.has(name));
    const pc: PreparedComponent | undefined = target && pack.components.get(target.component);
    if (!target || !pc) {
      return {
        kind: 'fail',
        code: 'component_not_found',
        message: `node '${node.id}': component '${target?.component ?? node.operation}' is not in pack '${pack.id}@${pack.version}'`,
      };
    }
    const op = resolveOperation(pc, target.operation);
    if (!op.ok)
      return { kind: 'fail', code: 'unknown_operation', message: `node '${node.id}': ${op.message}` };
    span.setAttributes({ 'greentic.component': pc.name, 'greentic.component.operation': op.operation });

    const input = guarded(() => args(run.state), node);
    const policy = node.retry ?? { maxAttempts: 1, backoffMs: 0 };
    const spanCtx = span.spanContext();
    const traceId = isSpanContextValid(spanCtx) ? spanCtx.traceId : traceIdOf(message.traceparent);
    for (let attempt = 1; ; attempt++) {
      try {
        const result = await this.runtime.invoke(tenant, {
          component: pc,
          operation: op.operation,
          input,
          ctx: {
            flowId: run.flow.id,
            nodeId: node.id,
            messageId: message.id,
            userId: message.userId,
            sessionKey: message.sessionKey,
            text: message.text,
            ...(traceId ? { traceId } : {}),
            attempt,
            allowedSecrets: run.input.allowedSecrets,
          },
          deadlineMs: node.timeoutMs ?? run.input.componentDeadlineMs,
        });
        span.setAttribute('greentic.attempts', attempt);
        setPayload(run, node, result);
        return { kind: 'next', replied: false, payload: result };
      } catch (e) {
        const code = e instanceof GreenticError ? e.code : 'component_failed';
        const msg = e instanceof Error ? e.message : String(e);
        if (attempt >= policy.maxAttempts || !retryable(e)) {
          span.setAttribute('greentic.attempts', attempt);
          return { kind: 'fail', code, message: `node '${node.id}': component '${pc.name}' failed: ${msg}` };
        }
        span.addEvent('greentic.retry', { attempt, 'error.code': code });
        await sleep(Math.min(policy.backoffMs * 2 ** (attempt - 1), MAX_BACKOFF_MS));
      }
    }
  }

  /** First rule whose condition holds; `to` continues there, `out`/`reply` (or no rule) ends. */
  private route(np: NodePlan, run: Run, outcome: Extract<Outcome, { kind: 'next' }>): string | undefined {
    for (const r of np.routes) {
      if (r.cond && !truthy(r.cond(run.state))) continue;
      if (r.rule.to !== undefined) return r.rule.to;
      if (r.rule.reply && !outcome.replied) {
        const reply = replyFromPayload(outcome.payload);
        if (reply) run.replies.push(reply);
      }
      return undefined;
    }
    return undefined;
  }

  private parked(run: Run, nodeId: string, pending: Record<string, unknown>): FlowRunResult {
    const { pack } = run.input;
    const snapshot: FlowSnapshot = {
      packId: pack.id,
      packVersion: pack.version,
      flowId: run.flow.id,
      nodeId,
      state: persistable(run.state),
      pending,
    };
    return {
      status: 'parked',
      replies: run.replies,
      snapshot,
      sessionData: run.sessionData,
      trace: run.trace,
    };
  }

  private failed(run: Run, error: { code: string; message: string; nodeId?: string }): FlowRunResult {
    const meta = run.flow.raw['meta'];
    const custom = isRecord(meta) ? meta['error_reply'] : undefined;
    const text = typeof custom === 'string' && custom.trim() !== '' ? custom : DEFAULT_ERROR_REPLY;
    const err = error.nodeId === undefined ? { code: error.code, message: error.message } : error;
    return {
      status: 'failed',
      replies: [...run.replies, { text }],
      snapshot: null,
      sessionData: run.sessionData,
      error: err,
      trace: run.trace,
    };
  }
}

function retryable(e: unknown): boolean {
  // Deadline and memory kills would only repeat, and a load failure is not transient.
  return !(
    e instanceof ComponentTimeoutError ||
    e instanceof ComponentMemoryExceededError ||
    e instanceof ComponentLoadError
  );
}

function render(fn: Render, state: State, node: FlowNode): string {
  return guarded(() => fn(state), node);
}

/** Template runtime errors (a missing helper, a bad partial) fail the node, not the process. */
function guarded<T>(fn: () => T, node: FlowNode): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof GreenticError) throw e;
    throw new FlowExecutionError(
      'template_error',
      `node '${node.id}': template failed: ${(e as Error).message}`,
      {
        nodeId: node.id,
      },
    );
  }
}

/** A node named like a state root (`in`, `message`...) keeps no payload: it would overwrite that root. */
function setPayload(run: Run, node: FlowNode, payload: unknown): void {
  if (!STATE_ROOTS.has(node.id)) run.state[node.id] = { payload };
}

function replyFromPayload(payload: unknown): OutboundReply | undefined {
  if (payload === undefined || payload === null) return undefined;
  if (typeof payload === 'string') return { text: payload };
  if (isRecord(payload)) {
    const reply: OutboundReply = {};
    if (typeof payload['text'] === 'string') reply.text = payload['text'];
    if (isRecord(payload['card'])) reply.card = payload['card'];
    if (Array.isArray(payload['choices'])) reply.choices = payload['choices'].map(String);
    if (Object.keys(reply).length > 0) return reply;
  }
  return { text: typeof payload === 'object' ? JSON.stringify(payload) : String(payload) };
}

function messageView(m: MessageEnvelope): Record<string, unknown> {
  return {
    id: m.id,
    text: m.text,
    userId: m.userId,
    conversationId: m.conversationId,
    channel: m.channel,
    provider: m.provider,
    timestamp: m.timestamp,
    action: m.action ?? null,
  };
}

/** A typed answer, or the value of the button the user clicked. */
function answerText(m: MessageEnvelope): string {
  if (m.text.trim() !== '') return m.text;
  const v = m.action?.['value'] ?? m.action?.['choice'];
  return typeof v === 'string' || typeof v === 'number' ? String(v) : '';
}

/** What survives between messages: answers and node payloads, as plain JSON. */
function persistable(state: State): Record<string, unknown> {
  const rest: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(state)) {
    if (k !== 'parameters' && k !== 'session' && k !== 'message') rest[k] = v;
  }
  return JSON.parse(JSON.stringify(rest, jsonSafe)) as Record<string, unknown>;
}

/** CBOR payloads of 0.6 components may hold 64-bit integers as BigInt, which JSON refuses. */
function jsonSafe(_key: string, v: unknown): unknown {
  if (typeof v !== 'bigint') return v;
  const n = Number(v);
  return Number.isSafeInteger(n) ? n : v.toString();
}

function traceIdOf(traceparent: string | undefined): string | undefined {
  const m = traceparent ? /^[\da-f]{2}-([\da-f]{32})-[\da-f]{16}-[\da-f]{2}$/.exec(traceparent) : null;
  return m?.[1];
}
