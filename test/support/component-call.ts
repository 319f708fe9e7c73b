import type {
  ComponentCall,
  ComponentCallContext,
  PreparedComponent,
} from '../../src/core/component-runtime.js';

/** Per-call facts for runtime specs, with any field overridden. */
export function callCtx(over: Partial<ComponentCallContext> = {}): ComponentCallContext {
  return {
    flowId: 'flow-1',
    nodeId: 'node-1',
    messageId: 'msg-1',
    userId: 'user-1',
    sessionKey: 'a:webhook:c1:user-1',
    text: 'hello there',
    ...over,
  };
}

export function componentCall(
  component: PreparedComponent,
  operation = 'execute',
  input?: unknown,
  over?: Partial<ComponentCallContext>,
  deadlineMs?: number,
): ComponentCall {
  return { component, operation, input, ctx: callCtx(over), ...(deadlineMs ? { deadlineMs } : {}) };
}

/** The error a promise rejects with; fails the test when it resolves. */
export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}
