/**
 * The seed's greentic:component@0.1.0: one `execute(message) -> outcome`. `defineExecute` takes a
 * handler returning the reply text (or any value, sent as JSON) and builds the outcome record;
 * a thrown error becomes `{ success: false, error }`.
 *
 *   export const execute = defineExecute((message) => `you said ${message.content}`);
 */
import { NodeError } from './errors.js';

export interface Message {
  id: string;
  content: string;
  sender: string;
  timestamp: bigint;
}

export interface Outcome {
  success: boolean;
  data: string | undefined;
  error: string | undefined;
}

export function defineExecute(handler: (message: Message) => unknown): (message: Message) => Outcome {
  return (message) => {
    try {
      const out = handler(message);
      return {
        success: true,
        data: out === undefined ? undefined : typeof out === 'string' ? out : JSON.stringify(out),
        error: undefined,
      };
    } catch (e) {
      const error =
        e instanceof NodeError ? `${e.code}: ${e.message}` : e instanceof Error ? e.message : String(e);
      return { success: false, data: undefined, error };
    }
  };
}
