export * from './flow.types.js';
export * from './flow-run.types.js';
export { compileExpression, ExpressionError, truthy, type Evaluator } from './expression.js';
export { DEFAULT_ERROR_REPLY, FlowExecutorService } from './flow-executor.service.js';
export {
  assertValid,
  assertValidSource,
  callTargetOf,
  checkFlow,
  FlowValidationError,
  loadValidFlowFile,
  throwIfInvalid,
  validateFlow,
  validateFlowCalls,
  validatePack,
  type ValidateOptions,
} from './flow-validator.js';
export { FlowsModule } from './flows.module.js';
export { BUILTIN_OPERATIONS, componentTargetOf, resolveOperation } from './operations.js';
export { loadFlowFile, parseFlow, type ParseResult } from './ygtc-loader.js';
export { toMillis } from '../common/duration.js';
export { YGTC_FLOW_SCHEMA } from './ygtc.schema.js';
export { flowGraph, renderFlowGraph, toDot, toMermaid, toSvg, type GraphFormat } from './flow-graph.js';
