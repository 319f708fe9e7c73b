import { Injectable } from '@nestjs/common';
import {
  ComponentLoadError,
  ComponentMemoryExceededError,
  ComponentTimeoutError,
  FlowExecutionError,
  GreenticError,
} from '../common/errors.js';
import type { MessageEnvelope, OutboundReply } from '../core/message-envelope.js';
import type { FlowSnapshot } from '../core/session-store.js';
import type { PreparedComponent } from '../core/component-runtime.js';
import { truthy } from './expression.js';
import {
  DEFAULT_CALL_DEPTH_LIMIT,
  type FlowRunInput,
  type FlowRunResult,
  type NodeTrace,
} from './flow-run.types.js';
import type { FlowDefinition, FlowNode } from './flow.types.js';
import {
  planFor,
  type FlowPlan,
  type NodeExec,
  type NodePlan,
  type Render,
  type State,
  v1Scope,
} from './flow-plan.js';
import { checkAnswer, type QaQuestion } from './nodes/qa-process.js';
import { componentTargetOf, OP_MCP, resolveOperation, STATE_ROOTS } from './operations.js';
import {
  cardReply,
  componentErrorOf,
  isCardInvocation,
  prepareCardInvocation,
  renderedCardOf,
  repliesOfEmit,
} from './card-nodes.js';
import type { I18nLookup } from './mapping-template.js';
import { i18nLookupFor, i18nStrings, readJsonAsset } from './pack-i18n.js';
import { promiseOf } from '../common/promise-of.js';

export const DEFAULT_ERROR_REPLY = 'Sorry, something went wrong while handling your message.';

/** Backoff doubles per attempt; capped so that a large `backoff_ms` cannot stall a session. */
const MAX_BACKOFF_MS = 30_000;

type Outcome =
  /** `goto`: the node to continue at, decided by the node itself (a card's navigation). */
  | { kind: 'next'; replied: boolean; payload?: unknown; goto?: string }
  | { kind: 'park'; pending: Record<string, unknown> }
  | { kind: 'fail'; code: string; message: string; nodeId?: string; flowId?: string; via?: string[] };

/** One message's run: shared by the root flow and every sub-flow it calls. */
interface Run {
  input: FlowRunInput;
  message: Record<string, unknown>;
  replies: OutboundReply[];
  trace: NodeTrace[];
  sessionData: Record<string, unknown>;
  steps: number;
  depthLimit: number;
  /** The pack's i18n strings in the message's locale (`{{i18n:key}}`), when it has any. */
  i18n: I18nLookup | undefined;
}

/** One flow being run: the root, or a sub-flow entered by `flow.call`. */
interface Frame {
  flow: FlowDefinition;
  plan: FlowPlan;
  state: State;
  depth: number;
  /** Flow ids from the root to this frame, for depth-limit messages. */
  chain: string[];
  /** Set when the caller gave up on this frame (its `flow.call` timed out): no further steps. */
  abandoned: boolean;
}

type FrameResult =
  | { status: 'completed'; payload: unknown }
  | { status: 'parked'; nodeId: string; pending: Record<string, unknown> }
  | { status: 'failed'; code: string; message: string; nodeId?: string; flowId: string; via?: string[] };

/** What a `flow.call` node keeps in its pending data while its sub-flow waits for the user. */
interface CallPending {
  flowId: string;
  nodeId: string;
  state: Record<string, unknown>;
  pending?: Record<string, unknown>;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function isPromise<T>(v: T | Promise<T>): v is Promise<T> {
  return typeof (v as { then?: unknown } | null)?.then === 'function';
}

/**
 * Node kinds that may be parked on: a question waiting for its answer, a sub-flow waiting for one,
 * a `session.wait`, or a flow-v1 component node that showed a card and waits for its Submit.
 */
function canResumeAt(plan: FlowPlan, nodeId: string): boolean {
  const kind = plan.nodes.get(nodeId)?.exec.kind;
  return kind === 'qa' || kind === 'flow_call' || kind === 'wait' || kind === 'call';
}

/** Card navigation keys in a Submit's data (upstream `card_nav`): a value naming a node continues there. */
const CARD_NAV_KEYS = ['routeToCardId', 'toCardId', 'nextCardId'] as const;

/**
 * Runs one inbound message through a flow: from the start node, or from the node a previous
 * message parked on, until the flow ends, parks for input, fails, or hits the step limit.
 * `flow.call` runs another flow of the pack inside the same run (same message, session, step
 * budget); a sub-flow that asks a question parks the whole stack, and the caller's snapshot holds
 * the sub-flow's position. Component and flow errors come back as `status: 'failed'`; only
 * programming errors throw.
 *
 * Built-in nodes run synchronously (no promise per node), so a flow of templates and conditions
 * costs little more than the same steps written by hand (bench/flows).
 */
@Injectable()
export class FlowExecutorService {
  /**
   * Holds no tenant: every tenant-addressed call of a run goes through `input.components`, the
   * caller's tenant-bound TenantComponents.
   */
  async run(input: FlowRunInput): Promise<FlowRunResult> {
    if (input.components.tenant !== input.tenant || input.ctx.tenant !== input.tenant)
      throw new Error(
        `flow run for tenant '${input.tenant.tenantId}' was given the components or message of tenant '${input.components.tenant.tenantId}' / '${input.ctx.tenant.tenantId}'`,
      );
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
    if (flow.nodes.size === 0) {
      return this.failed(
        {
          input,
          message: {},
          replies: [],
          trace: [],
          sessionData,
          steps: 0,
          depthLimit: 0,
          i18n: undefined,
        },
        flow,
        {
          code: 'flow_empty',
          message: `flow '${flow.id}' of pack '${input.pack.id}@${input.pack.version}' has no nodes: there is nothing to run`,
        },
      );
    }
    const { message } = input;
    const run: Run = {
      input,
      message: messageView(message, i18nStrings(input.pack.assets, message.locale)),
      replies: [],
      trace: [],
      sessionData,
      steps: 0,
      depthLimit: input.callDepthLimit ?? DEFAULT_CALL_DEPTH_LIMIT,
      i18n: i18nLookupFor(input.pack.assets, message.locale),
    };
    const plan = planFor(flow);
    // Upstream's card navigation: a Submit naming a node starts the flow there; one naming a card
    // asset (`assets/cards/<id>.json`) is answered with that card, the session left where it was.
    const nav = flow.dialect === 'flow-v1' ? cardNavigation(message, flow, input.pack.assets) : undefined;
    if (nav?.card) {
      run.replies.push(cardReply(nav.card, run.i18n));
      const snapshot = input.snapshot;
      return snapshot
        ? { status: 'parked', replies: run.replies, snapshot, sessionData, trace: [] }
        : { status: 'completed', replies: run.replies, snapshot: null, sessionData, trace: [] };
    }
    const snap = nav?.node !== undefined ? null : input.snapshot;
    const resumable = snap !== null && snap.flowId === flow.id && canResumeAt(plan, snap.nodeId);
    const frame = this.frame(run, flow, resumable ? snap.state : undefined, {}, 0, [flow.id]);
    const result = await this.runFrame(
      run,
      frame,
      resumable ? snap.nodeId : (nav?.node ?? flow.start),
      resumable ? (snap.pending ?? {}) : undefined,
    );
    switch (result.status) {
      case 'completed': {
        const done: FlowRunResult = {
          status: 'completed',
          replies: run.replies,
          snapshot: null,
          sessionData,
          trace: run.trace,
        };
        if (result.payload !== undefined) done.output = result.payload;
        return done;
      }
      case 'parked': {
        const snapshot: FlowSnapshot = {
          packId: input.pack.id,
          packVersion: input.pack.version,
          flowId: flow.id,
          nodeId: result.nodeId,
          state: persistable(frame.state),
          pending: result.pending,
        };
        return { status: 'parked', replies: run.replies, snapshot, sessionData, trace: run.trace };
      }
      case 'failed': {
        const inner = result.flowId !== flow.id;
        const error: NonNullable<FlowRunResult['error']> = {
          code: result.code,
          message: inner
            ? `${result.message} (in sub-flow '${result.flowId}', called as ${(result.via ?? [flow.id, result.flowId]).join(' -> ')})`
            : result.message,
        };
        if (result.nodeId !== undefined) error.nodeId = result.nodeId;
        if (inner) error.flowId = result.flowId;
        return this.failed(run, flow, error);
      }
    }
  }

  /** A frame's state: a saved one (resuming) or a fresh one whose `in` is `input`. */
  private frame(
    run: Run,
    flow: FlowDefinition,
    saved: Record<string, unknown> | undefined,
    input: Record<string, unknown>,
    depth: number,
    chain: string[],
  ): Frame {
    const state: State = saved
      ? {
          ...saved,
          in: isRecord(saved['in']) ? { ...saved['in'] } : {},
          parameters: flow.parameters,
          session: run.sessionData,
          message: run.message,
        }
      : { in: input, parameters: flow.parameters, session: run.sessionData, message: run.message };
    if (flow.dialect === 'flow-v1') {
      // Each message is a new entry for a flow-v1 flow (a root frame): `in` is this message,
      // `response` its card data and text (upstream's routing context after an Action.Submit).
      // Answers a question node stored in `in` stay (a compiled `.ygtc` built-in).
      if (depth === 0)
        state['in'] = {
          ...(saved ? (state['in'] as Record<string, unknown>) : {}),
          ...v1Entry(run.input.message),
        };
      state['response'] = v1Response(run.input.message);
    }
    return { flow, plan: planFor(flow), state, depth, chain, abandoned: false };
  }

  private async runFrame(
    run: Run,
    frame: Frame,
    startNode: string,
    resumePending: Record<string, unknown> | undefined,
  ): Promise<FrameResult> {
    const { flow, plan } = frame;
    const fail = (code: string, message: string, nodeId?: string): FrameResult => ({
      status: 'failed',
      code,
      message,
      flowId: flow.id,
      ...(nodeId !== undefined ? { nodeId } : {}),
    });
    let current: string | undefined = startNode;
    let pending = resumePending;
    let last: string | undefined;
    let lastPayload: unknown;
    while (current !== undefined) {
      if (frame.abandoned) return fail('flow_abandoned', `flow '${flow.id}' was abandoned by its caller`);
      const np = plan.nodes.get(current);
      if (!np) {
        const message =
          last === undefined
            ? `flow '${flow.id}' has no node '${current}' to start from`
            : `node '${last}' of flow '${flow.id}' routes to unknown node '${current}'`;
        return fail('flow_invalid', message, last);
      }
      if (run.steps >= run.input.stepLimit) {
        const nodeId = last ?? current;
        return fail(
          'flow_step_limit',
          `flow '${flow.id}' exceeded the step limit of ${run.input.stepLimit} node executions for one message (last node '${nodeId}'); does it loop without asking for input?`,
          nodeId,
        );
      }
      run.steps++;
      const stepped = this.step(np, run, frame, pending);
      const outcome = isPromise(stepped) ? await stepped : stepped;
      pending = undefined;
      last = np.node.id;
      if (outcome.kind === 'park') return { status: 'parked', nodeId: np.node.id, pending: outcome.pending };
      if (outcome.kind === 'fail') {
        return {
          status: 'failed',
          code: outcome.code,
          message: outcome.message,
          nodeId: outcome.nodeId ?? np.node.id,
          flowId: outcome.flowId ?? flow.id,
          ...(outcome.via ? { via: outcome.via } : {}),
        };
      }
      if (outcome.payload !== undefined) lastPayload = outcome.payload;
      current = this.route(np, run, frame, outcome);
    }
    return { status: 'completed', payload: lastPayload };
  }

  private step(
    np: NodePlan,
    run: Run,
    frame: Frame,
    pending: Record<string, unknown> | undefined,
  ): Outcome | Promise<Outcome> {
    const { node } = np;
    const t0 = performance.now();
    const t: NodeTrace = {
      nodeId: node.id,
      operation: node.operation,
      startedAt: performance.timeOrigin + t0,
      durationMs: 0,
      ok: true,
    };
    if (frame.depth > 0) {
      t.flowId = frame.flow.id;
      t.depth = frame.depth;
    }
    let result: Outcome | Promise<Outcome>;
    try {
      // A resumed node was entered on an earlier message; its `when` held then.
      if (pending === undefined && np.when && !truthy(np.when(frame.state))) {
        t.skipped = true;
        if (run.input.traceDetail) t.input = { skipped: true };
        result = { kind: 'next', replied: false };
      } else {
        result = this.execute(np, run, frame, pending, t);
      }
    } catch (e) {
      return this.crashed(e, run, t, t0);
    }
    // Built-in nodes answer synchronously: no promise, no closure on their path.
    if (!isPromise(result)) return this.finished(result, run, t, t0);
    return result.then(
      (o) => this.finished(o, run, t, t0),
      (e: unknown) => this.crashed(e, run, t, t0),
    );
  }

  private finished(outcome: Outcome, run: Run, t: NodeTrace, t0: number): Outcome {
    t.durationMs = performance.now() - t0;
    if (outcome.kind === 'fail') {
      t.ok = false;
      t.error = outcome.code;
    } else if (run.input.traceDetail) {
      t.output = outcome.kind === 'park' ? { parked: outcome.pending } : outcome.payload;
    }
    run.trace.push(t);
    return outcome;
  }

  /** Domain errors fail the node; anything else is a bug and propagates. */
  private crashed(e: unknown, run: Run, t: NodeTrace, t0: number): Outcome {
    if (!(e instanceof GreenticError)) throw e;
    return this.finished({ kind: 'fail', code: e.code, message: e.message }, run, t, t0);
  }

  private execute(
    np: NodePlan,
    run: Run,
    frame: Frame,
    pending: Record<string, unknown> | undefined,
    t: NodeTrace,
  ): Outcome | Promise<Outcome> {
    const { node, exec } = np;
    const state = frame.state;
    switch (exec.kind) {
      case 'qa':
        return this.qa(node, exec, run, frame, pending, t);
      case 'template': {
        const text = render(exec.text, state, node);
        setPayload(state, node, { text });
        if (exec.reply) run.replies.push({ text });
        return { kind: 'next', replied: exec.reply, payload: { text } };
      }
      case 'reply': {
        const reply: OutboundReply = {};
        if (exec.text) reply.text = render(exec.text, state, node);
        if (exec.card) reply.card = guarded(() => exec.card!(state), node) as Record<string, unknown>;
        if (exec.choices) reply.choices = guarded(() => exec.choices!(state), node) as string[];
        setPayload(state, node, reply);
        run.replies.push(reply);
        return { kind: 'next', replied: true, payload: reply };
      }
      case 'component':
        return this.component(node, exec, run, frame, t);
      case 'call':
        return this.callV1(node, exec, run, frame, pending, t);
      case 'emit': {
        const payload = guarded(() => exec.payload(v1Scope(state), run.i18n), node);
        const replies = repliesOfEmit(payload, run.i18n);
        run.replies.push(...replies);
        setPayload(state, node, payload);
        state['prev'] = payload;
        return { kind: 'next', replied: replies.length > 0, payload };
      }
      case 'wait':
        if (pending === undefined) return { kind: 'park', pending: { wait: true } };
        return { kind: 'next', replied: false, payload: state['response'] };
      case 'flow_call':
        return this.flowCall(node, exec, run, frame, pending, t);
      case 'invalid':
        throw new FlowExecutionError('flow_invalid', exec.message, { nodeId: node.id });
    }
  }

  private qa(
    node: FlowNode,
    exec: Extract<NodeExec, { kind: 'qa' }>,
    run: Run,
    frame: Frame,
    pending: Record<string, unknown> | undefined,
    t: NodeTrace,
  ): Outcome {
    const { questions } = exec.spec;
    const state = frame.state;
    const answers = state['in'] as Record<string, unknown>;
    const ask = (i: number, problem?: string): Outcome => {
      if (problem) run.replies.push({ text: problem });
      const q = questions[i]!;
      const reply: OutboundReply = { text: render(exec.prompts[i]!, state, node) };
      if (q.answerType === 'choice') reply.choices = q.choices.map((c) => c.label);
      run.replies.push(reply);
      return { kind: 'park', pending: { question: i } };
    };

    const index = typeof pending?.['question'] === 'number' ? pending['question'] : -1;
    const q: QaQuestion | undefined = questions[index];
    if (pending === undefined || !q) {
      if (exec.welcome) run.replies.push({ text: render(exec.welcome, state, node) });
      if (questions.length === 0) {
        // A welcome-only node greets and moves on.
        setPayload(state, node, {});
        return { kind: 'next', replied: exec.welcome !== undefined, payload: {} };
      }
      return ask(0);
    }
    const answer = answerText(run.input.message);
    if (run.input.traceDetail) t.input = { [q.id]: answer };
    const check = checkAnswer(q, answer);
    if (!check.ok) return ask(index, check.problem);
    answers[q.id] = check.value;
    if (index + 1 < questions.length) return ask(index + 1);
    const payload = Object.fromEntries(questions.map((x) => [x.id, answers[x.id] ?? null]));
    setPayload(state, node, payload);
    return { kind: 'next', replied: false, payload };
  }

  private async component(
    node: FlowNode,
    exec: Extract<NodeExec, { kind: 'component' }>,
    run: Run,
    frame: Frame,
    t: NodeTrace,
  ): Promise<Outcome> {
    const { pack, components, message, ctx: facts } = run.input;
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
    t.component = pc.name;

    const input = guarded(() => exec.args(frame.state), node);
    if (run.input.traceDetail) t.input = input;
    const policy = node.retry ?? run.input.defaultRetry ?? { maxAttempts: 1, backoffMs: 0 };
    const deadlineMs = node.timeoutMs ?? run.input.componentDeadlineMs;
    const traceId = traceIdOf(message.traceparent);
    for (let attempt = 1; ; attempt++) {
      try {
        const call = () =>
          components.invoke({
            component: pc,
            operation: op.operation,
            input,
            ctx: {
              flowId: frame.flow.id,
              nodeId: node.id,
              messageId: facts.messageId,
              userId: facts.userId,
              sessionKey: facts.sessionKey,
              text: message.text,
              ...(traceId ? { traceId } : {}),
              attempt,
              allowedSecrets: run.input.allowedSecrets,
              // greentic:host/state writes here, so it commits with the session (docs/components.md).
              session: run.sessionData,
            },
            deadlineMs,
          });
        // The runtime enforces the deadline on the call itself; a node's own `timeout` also bounds
        // what the flow waits, queueing for a worker included, and refuses a late answer.
        const nodeTimeout = node.timeoutMs;
        const result =
          nodeTimeout === undefined
            ? await call()
            : await withDeadline(call, nodeTimeout, () => timeoutError(node, pc, nodeTimeout));
        if (attempt > 1) t.attempts = attempt;
        const payload = exec.outMap
          ? guarded(() => exec.outMap!({ ...frame.state, out: result }), node)
          : result;
        setPayload(frame.state, node, payload);
        this.mcpOutput(node, frame, payload);
        return { kind: 'next', replied: false, payload };
      } catch (e) {
        const code = e instanceof GreenticError ? e.code : 'component_failed';
        const msg = e instanceof Error ? e.message : String(e);
        if (attempt >= policy.maxAttempts || !retryable(e)) {
          if (attempt > 1) t.attempts = attempt;
          if (exec.errMap) {
            // `err_map`: the node yields this instead of failing, and the flow goes on.
            const payload = guarded(
              () => exec.errMap!({ ...frame.state, error: { code, message: msg } }),
              node,
            );
            setPayload(frame.state, node, payload);
            return { kind: 'next', replied: false, payload };
          }
          return { kind: 'fail', code, message: `node '${node.id}': component '${pc.name}' failed: ${msg}` };
        }
        (t.retries ??= []).push(code);
        await sleep(Math.min(policy.backoffMs * 2 ** (attempt - 1), MAX_BACKOFF_MS));
      }
    }
  }

  /** `mcp` nodes may name where their result also lands: `output: issue` → `issue`. */
  private mcpOutput(node: FlowNode, frame: Frame, payload: unknown): void {
    if (node.operation !== OP_MCP || !isRecord(node.config)) return;
    const out = node.config['output'];
    if (typeof out !== 'string' || out === '' || STATE_ROOTS.has(out) || frame.flow.nodes.has(out)) return;
    frame.state[out] = payload;
  }

  /**
   * A flow-v1 component node: renders `input.mapping` over the v1 scope, calls the operation the node
   * names (the runtime falls back to the component's `default_operation`, then its only operation),
   * and reads the output: `{"error": ...}` fails the node (or yields `err_map`), `output.mapping`
   * reshapes it, and a `renderedCard` goes to the user as a card, after which the session waits at
   * this node for the card's answer (an Action.Submit, or any message) before routing on.
   */
  private async callV1(
    node: FlowNode,
    exec: Extract<NodeExec, { kind: 'call' }>,
    run: Run,
    frame: Frame,
    pending: Record<string, unknown> | undefined,
    t: NodeTrace,
  ): Promise<Outcome> {
    const state = frame.state;
    if (pending?.['card'] === true) {
      const payload = (state[node.id] as { payload?: unknown } | undefined)?.payload;
      const nav = cardNavTarget(run.input.message, frame.flow);
      if (run.input.traceDetail) t.input = { answer: state['response'] };
      return { kind: 'next', replied: false, payload, ...(nav !== undefined ? { goto: nav } : {}) };
    }
    const { pack, components, message, ctx: facts } = run.input;
    const pc = pack.components.get(exec.component);
    if (!pc) {
      return {
        kind: 'fail',
        code: 'component_not_found',
        message: `node '${node.id}' of flow '${frame.flow.id}': component '${exec.component}' is not in pack '${pack.id}@${pack.version}'`,
      };
    }
    const scope = v1Scope(state);
    let input = guarded(() => exec.input(scope, run.i18n), node);
    if (isRecord(input)) {
      // The payload is the rendered mapping without the component reference, with the operation in it.
      const { component: _c, component_ref: _r, ...rest } = input;
      input =
        exec.operation !== undefined && rest['operation'] === undefined
          ? { ...rest, operation: exec.operation }
          : rest;
      if (isCardInvocation(input)) input = prepareCardInvocation(input, pack.assets, message.locale);
    }
    if (run.input.traceDetail) t.input = input;
    const operation =
      exec.operation ??
      pc.defaultOperation ??
      (pc.operations.length === 1 ? pc.operations[0]!.name : undefined);
    t.component = pc.name;
    const traceId = traceIdOf(message.traceparent);
    const policy = run.input.defaultRetry ?? { maxAttempts: 1, backoffMs: 0 };
    let result: unknown;
    for (let attempt = 1; ; attempt++) {
      try {
        result = await components.invoke({
          component: pc,
          ...(operation !== undefined ? { operation } : {}),
          input,
          ctx: {
            flowId: frame.flow.id,
            nodeId: node.id,
            messageId: facts.messageId,
            userId: facts.userId,
            sessionKey: facts.sessionKey,
            text: message.text,
            ...(traceId ? { traceId } : {}),
            ...(facts.locale ? { locale: facts.locale } : {}),
            attempt,
            allowedSecrets: run.input.allowedSecrets,
            session: run.sessionData,
          },
          deadlineMs: run.input.componentDeadlineMs,
        });
        if (attempt > 1) t.attempts = attempt;
        break;
      } catch (e) {
        const code = e instanceof GreenticError ? e.code : 'component_failed';
        const msg = e instanceof Error ? e.message : String(e);
        if (attempt >= policy.maxAttempts || !retryable(e)) {
          if (attempt > 1) t.attempts = attempt;
          return this.v1Failure(node, exec, run, frame, pc.name, code, msg);
        }
        (t.retries ??= []).push(code);
        await sleep(Math.min(policy.backoffMs * 2 ** (attempt - 1), MAX_BACKOFF_MS));
      }
    }
    const error = componentErrorOf(result);
    if (error) return this.v1Failure(node, exec, run, frame, pc.name, error.code, error.message);
    const payload = exec.output
      ? guarded(() => exec.output!({ ...scope, out: result, output: result, prev: result }, run.i18n), node)
      : result;
    setPayload(state, node, payload);
    state['prev'] = payload;
    const card = renderedCardOf(result);
    if (!card) return { kind: 'next', replied: false, payload };
    run.replies.push(cardReply(card, run.i18n));
    // A card that ends the flow needs no answer; any other waits for the user's, one card per turn.
    const ends = endsHere(node);
    if (ends) return { kind: 'next', replied: true, payload };
    return { kind: 'park', pending: { card: true } };
  }

  private v1Failure(
    node: FlowNode,
    exec: Extract<NodeExec, { kind: 'call' }>,
    run: Run,
    frame: Frame,
    component: string,
    code: string,
    message: string,
  ): Outcome {
    if (exec.errMap) {
      const scope = { ...v1Scope(frame.state), error: { code, message }, errors: [{ code, message }] };
      const payload = guarded(() => exec.errMap!(scope, run.i18n), node);
      setPayload(frame.state, node, payload);
      frame.state['prev'] = payload;
      return { kind: 'next', replied: false, payload };
    }
    return { kind: 'fail', code, message: `node '${node.id}': component '${component}' failed: ${message}` };
  }

  /**
   * Runs the called flow in a frame of its own: `in` is the mapped input, `parameters` its own,
   * `session` and `message` shared with the caller. Parks with the callee's position in
   * `pending.call` when the callee waits for the user; resumes it from there.
   */
  private async flowCall(
    node: FlowNode,
    exec: Extract<NodeExec, { kind: 'flow_call' }>,
    run: Run,
    frame: Frame,
    pending: Record<string, unknown> | undefined,
    t: NodeTrace,
  ): Promise<Outcome> {
    const fail = (code: string, message: string): Outcome => ({ kind: 'fail', code, message });
    const callee = run.input.pack.flows.get(exec.flowId);
    if (!callee) {
      return fail(
        'flow_not_found',
        `node '${node.id}': flow.call names flow '${exec.flowId}', which pack '${run.input.pack.id}@${run.input.pack.version}' does not have`,
      );
    }
    const depth = frame.depth + 1;
    const chain = [...frame.chain, callee.id];
    if (depth > run.depthLimit) {
      return fail(
        'flow_call_depth',
        `node '${node.id}': flow.call depth limit of ${run.depthLimit} exceeded (${chain.join(' -> ')})`,
      );
    }

    const saved = parseCallPending(pending?.['call']);
    const resume =
      saved !== undefined && saved.flowId === callee.id && canResumeAt(planFor(callee), saved.nodeId);
    let child: Frame;
    if (resume) {
      child = this.frame(run, callee, saved.state, {}, depth, chain);
    } else {
      const input = guarded(() => exec.input(frame.state), node);
      if (run.input.traceDetail) t.input = input;
      child = this.frame(run, callee, undefined, isRecord(input) ? { ...input } : {}, depth, chain);
    }
    const running = this.runFrame(
      run,
      child,
      resume ? saved.nodeId : callee.start,
      resume ? (saved.pending ?? {}) : undefined,
    );
    let result: FrameResult;
    if (node.timeoutMs === undefined) {
      result = await running;
    } else {
      const ms = node.timeoutMs;
      result = await withDeadline(
        () => running,
        ms,
        () => {
          child.abandoned = true;
          return new FlowExecutionError(
            'node_timeout',
            `node '${node.id}': sub-flow '${callee.id}' did not finish within its timeout of ${ms} ms`,
            { nodeId: node.id },
          );
        },
      ).catch((e: unknown) => {
        if (e instanceof GreenticError)
          return { status: 'failed' as const, code: e.code, message: e.message, flowId: frame.flow.id };
        throw e;
      });
    }
    switch (result.status) {
      case 'parked': {
        const call: CallPending = {
          flowId: callee.id,
          nodeId: result.nodeId,
          state: persistable(child.state),
          pending: result.pending,
        };
        return { kind: 'park', pending: { call } };
      }
      case 'failed':
        // A failure inside the callee keeps its own node, flow and message; `via` is the call chain.
        if (result.flowId === frame.flow.id)
          return { kind: 'fail', code: result.code, message: result.message };
        return {
          kind: 'fail',
          code: result.code,
          message: result.message,
          flowId: result.flowId,
          via: result.via ?? child.chain,
          ...(result.nodeId !== undefined ? { nodeId: result.nodeId } : {}),
        };
      case 'completed': {
        const output = exec.output ? guarded(() => exec.output!(child.state), node) : result.payload;
        setPayload(frame.state, node, output);
        return { kind: 'next', replied: false, payload: output };
      }
    }
  }

  /** First rule whose condition holds; `to` continues there, `out`/`reply` (or no rule) ends. */
  private route(
    np: NodePlan,
    run: Run,
    frame: Frame,
    outcome: Extract<Outcome, { kind: 'next' }>,
  ): string | undefined {
    if (outcome.goto !== undefined) return outcome.goto;
    const v1 = frame.flow.dialect === 'flow-v1';
    let scope: State | undefined;
    for (const r of np.routes) {
      if (r.rule.status !== undefined && statusOf(outcome.payload) !== r.rule.status) continue;
      if (r.cond) {
        // flow-v1 conditions also read the node's output fields directly (upstream's Custom routing).
        scope ??= v1
          ? { ...(isRecord(outcome.payload) ? outcome.payload : {}), ...v1Scope(frame.state) }
          : frame.state;
        if (!truthy(r.cond(scope))) continue;
      }
      if (r.rule.to !== undefined) return r.rule.to;
      if (r.rule.reply && !outcome.replied) {
        const reply = replyFromPayload(outcome.payload);
        if (reply) run.replies.push(reply);
      }
      return undefined;
    }
    return undefined;
  }

  private failed(run: Run, flow: FlowDefinition, error: NonNullable<FlowRunResult['error']>): FlowRunResult {
    const meta = flow.raw['meta'];
    const custom = isRecord(meta) ? meta['error_reply'] : undefined;
    const text = typeof custom === 'string' && custom.trim() !== '' ? custom : DEFAULT_ERROR_REPLY;
    return {
      status: 'failed',
      replies: [...run.replies, { text }],
      snapshot: null,
      sessionData: run.sessionData,
      error,
      trace: run.trace,
    };
  }
}

/** The `status` a node's output reports (`Branch.on_status` and `status:` routes). */
function statusOf(payload: unknown): string | undefined {
  if (!isRecord(payload)) return undefined;
  const s = payload['status'];
  return typeof s === 'string' ? s : typeof s === 'number' || typeof s === 'boolean' ? String(s) : undefined;
}

/** True when the node's routing ends the flow whatever happens (no rule goes anywhere). */
function endsHere(node: FlowNode): boolean {
  return node.routing.every((r) => r.to === undefined);
}

/** A Submit's `routeToCardId`/`toCardId`/`nextCardId` naming a node of the flow: where to continue. */
function cardNavTarget(message: MessageEnvelope, flow: FlowDefinition): string | undefined {
  const data = message.action;
  if (!data) return undefined;
  for (const key of CARD_NAV_KEYS) {
    const v = data[key];
    if (typeof v === 'string' && flow.nodes.has(v)) return v;
  }
  return undefined;
}

/** A Submit's card navigation: to a node of the flow, or to a card asset of the pack. */
function cardNavigation(
  message: MessageEnvelope,
  flow: FlowDefinition,
  assets: ReadonlyMap<string, Uint8Array> | undefined,
): { node?: string; card?: Record<string, unknown> } | undefined {
  const node = cardNavTarget(message, flow);
  if (node !== undefined) return { node };
  const data = message.action;
  if (!data || !assets) return undefined;
  for (const key of CARD_NAV_KEYS) {
    const v = data[key];
    if (typeof v !== 'string' || !/^[\w.-]+$/.test(v)) continue;
    const card = readJsonAsset(assets, `assets/cards/${v}.json`);
    if (isRecord(card)) return { card };
  }
  return undefined;
}

/**
 * A message as a flow-v1 flow's entry (`in`): upstream templates read `in.input.text`,
 * `in.input.metadata` (the card data after a Submit, and the locale), `in.text`.
 */
function v1Entry(m: MessageEnvelope): Record<string, unknown> {
  const metadata: Record<string, unknown> = { ...(m.action ?? {}) };
  if (m.locale) metadata['locale'] = m.locale;
  const input: Record<string, unknown> = {
    id: m.id,
    text: m.text,
    channel: m.channel,
    provider: m.provider,
    conversation_id: m.conversationId,
    user_id: m.userId,
    session_id: m.sessionKey,
    metadata,
    attachments: m.attachments,
    timestamp: m.timestamp,
  };
  if (m.locale) input['locale'] = m.locale;
  return { ...input, input };
}

/** `response.*` in flow-v1 routing: the Submit's data (without the provider's `type` tag) and the text. */
function v1Response(m: MessageEnvelope): Record<string, unknown> {
  const { type: _type, ...data } = m.action ?? {};
  return { ...data, text: m.text };
}

function retryable(e: unknown): boolean {
  // Deadline and memory kills would only repeat, and a load failure is not transient.
  return !(
    e instanceof ComponentTimeoutError ||
    e instanceof ComponentMemoryExceededError ||
    e instanceof ComponentLoadError
  );
}

function timeoutError(node: FlowNode, pc: PreparedComponent, ms: number): ComponentTimeoutError {
  return new ComponentTimeoutError(
    `component '${pc.name}' did not answer within the node's timeout of ${ms} ms`,
    {
      nodeId: node.id,
      timeoutMs: ms,
    },
  );
}

/**
 * Settles with `p`, or rejects with `onTimeout()` once `ms` have passed. An answer that arrives
 * after the deadline is refused too: a runtime that runs calls on this thread can only answer
 * late, never be interrupted, and a late answer must not count as a timely one.
 */
function withDeadline<T>(start: () => Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  const started = performance.now();
  const p = promiseOf(start);
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms);
  });
  return Promise.race([p, expired])
    .then((v) => {
      if (performance.now() - started > ms) throw onTimeout();
      return v;
    })
    .finally(() => clearTimeout(timer));
}

function parseCallPending(v: unknown): CallPending | undefined {
  if (!isRecord(v)) return undefined;
  const { flowId, nodeId, state, pending } = v;
  if (typeof flowId !== 'string' || typeof nodeId !== 'string' || !isRecord(state)) return undefined;
  return { flowId, nodeId, state, ...(isRecord(pending) ? { pending } : {}) };
}

const TELEMETRY = new WeakMap<FlowDefinition, Map<string, Record<string, string> | null>>();

/**
 * A node's `telemetry.attributes` (string values only), read once per flow definition: what the
 * flow author wants on the node's span or event.
 */
export function nodeTelemetry(flow: FlowDefinition, nodeId: string): Record<string, string> | null {
  let byNode = TELEMETRY.get(flow);
  if (!byNode) TELEMETRY.set(flow, (byNode = new Map()));
  let attrs = byNode.get(nodeId);
  if (attrs === undefined) {
    attrs = null;
    const extra = isRecord(flow.raw['nodes']) ? flow.raw['nodes'][nodeId] : undefined;
    const telemetry =
      isRecord(extra) && isRecord(extra['telemetry']) ? extra['telemetry']['attributes'] : undefined;
    if (isRecord(telemetry)) {
      const out: Record<string, string> = {};
      for (const [k, v] of Object.entries(telemetry)) if (typeof v === 'string') out[k] = v;
      attrs = out;
    }
    byNode.set(nodeId, attrs);
  }
  return attrs;
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
function setPayload(state: State, node: FlowNode, payload: unknown): void {
  if (!STATE_ROOTS.has(node.id)) state[node.id] = { payload };
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

function messageView(m: MessageEnvelope, i18n: Readonly<Record<string, string>>): Record<string, unknown> {
  return {
    locale: m.locale ?? null,
    /** The pack's strings in the message's locale: `{{i18n:key}}` in `.ygtc` templates. */
    i18n,
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
    if (k !== 'parameters' && k !== 'session' && k !== 'message' && k !== 'response') rest[k] = v;
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
