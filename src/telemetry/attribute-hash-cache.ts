import { createRequire } from 'node:module';
import type { Attributes } from '@opentelemetry/api';

type HashFn = (attributes: Attributes) => string;

/**
 * The metrics SDK (2.x) identifies a series by hashing its attribute set on every record: the keys
 * sorted and JSON-stringified, about a microsecond each time, ten times a message. The runner
 * records only label sets that LabelGuard memoised and froze, so the hash of one of those never
 * changes: it is computed once per object and remembered. Anything else (a fresh or mutable object)
 * is hashed as before. The output is the SDK's own, so series are exactly the same.
 *
 * The SDK's AttributeHashMap takes `hashAttributes` from its utils module when each instrument's
 * storage is built, so this runs before the meter provider is created (startTelemetry). The spec
 * next to this file fails if an SDK upgrade moves or renames the function.
 */
let installed = false;

export function installAttributeHashCache(): void {
  if (installed) return;
  const require = createRequire(import.meta.url);
  const utils = require('@opentelemetry/sdk-metrics/build/src/utils.js') as { hashAttributes?: HashFn };
  const original = utils.hashAttributes;
  if (typeof original !== 'function')
    throw new Error('@opentelemetry/sdk-metrics changed: build/src/utils.js has no hashAttributes');
  installed = true;
  const hashes = new WeakMap<object, string>();
  utils.hashAttributes = (attributes: Attributes): string => {
    if (!Object.isFrozen(attributes)) return original(attributes);
    let h = hashes.get(attributes);
    if (h === undefined) {
      h = original(attributes);
      hashes.set(attributes, h);
    }
    return h;
  };
}
