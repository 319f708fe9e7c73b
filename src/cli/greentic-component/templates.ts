/**
 * Skeletons written by `greentic-component new`: one TypeScript file per world, holding the
 * component's logic only. The CBOR, the descriptor, the error records and the host-import
 * plumbing come from `@greentic/component-sdk` (sdk/component), which `greentic-component build`
 * bundles in. Each skeleton uses its world's host imports (state, secrets, http, log), so authors
 * see how they are reached and `greentic-runner test` exercises them.
 */
import type { WorldVersion } from '../../wasm/authoring/wit-project.js';

/** The entry file a skeleton is written to. */
export const COMPONENT_SOURCE = 'component.ts';

function v01(name: string): string {
  return `// ${name}: a greentic:component@0.1.0 component (greentic-component new --world 0.1).
// \`execute\` gets one chat message; what it returns is the reply data (a thrown error fails the call).
// Host imports reach session state, secrets, HTTP and logs; the runner checks every call against
// the tenant's bindings.
import { defineExecute, InvalidInputError } from '@greentic/component-sdk';
import { http, log, secrets, state } from '@greentic/component-sdk/host';

export const execute = defineExecute((message) => {
  log.info('message received', { sender: message.sender });
  if (message.content === '') throw new InvalidInputError('empty message');
  // Session state survives between messages of one user.
  const count = Number(state.get('messages') ?? '0') + 1;
  state.set('messages', String(count));
  // "fetch <url>": a request to an allowed host, with the binding's api_token secret.
  const url = /^fetch (\\S+)$/.exec(message.content)?.[1];
  if (url) {
    const res = http.fetch({ url, headers: { authorization: \`Bearer \${secrets.require('api_token')}\` } });
    return \`\${res.status} \${res.text()} (message \${count})\`;
  }
  return message.content;
});
`;
}

function v06(name: string): string {
  return `// ${name}: a greentic:component@0.6.0 node (greentic-component new --world 0.6).
// Each operation takes its input as a plain object and returns its output; the SDK describes the
// operations and does the CBOR. Throw a NodeError for an error the flow can see.
// Host imports reach session state, secrets, HTTP and logs.
import { defineNode } from '@greentic/component-sdk';
import { http, log, secrets, state } from '@greentic/component-sdk/host';

interface GreetInput {
  name?: string;
  /** When set, fetched (an allowed host) with the binding's api_token secret. */
  url?: string;
}

export const { node, componentDescriptor } = defineNode({
  name: '${name}',
  version: '0.1.0',
  operations: {
    greet: {
      summary: 'Greets, counting the greetings of this session',
      input: { type: 'object', properties: { name: { type: 'string' }, url: { type: 'string' } } },
      output: { type: 'object', properties: { text: { type: 'string' } } },
      handler(input: GreetInput) {
        // Session state survives between messages of one user.
        const seen = Number(state.get('greeted') ?? '0') + 1;
        state.set('greeted', String(seen));
        log.info('greeting', { seen });
        const text = \`Hello \${input.name ?? 'there'} (\${seen})\`;
        if (!input.url) return { text };
        const res = http.fetch({
          url: input.url,
          headers: { authorization: \`Bearer \${secrets.require('api_token')}\` },
        });
        return { text, status: res.status, body: res.text() };
      },
    },
  },
});
`;
}

function upstream(name: string): string {
  return `// ${name}: a node of upstream's greentic:component@0.6.0 (greentic-component new --world upstream).
// Each operation takes its input as a plain object and returns its output; the SDK builds
// node.describe() and does the CBOR. Throw a NodeError for an error the flow can see.
// Host imports: greentic:state/state-store (byte blobs of this session), greentic:http/http-client
// (the tenant's allowed hosts) and greentic:secrets-store/secrets-store (the binding's secrets).
import { defineUpstreamNode } from '@greentic/component-sdk';
import { http } from '@greentic/component-sdk/upstream-host/http';
import { secrets } from '@greentic/component-sdk/upstream-host/secrets';
import { state } from '@greentic/component-sdk/upstream-host/state';

interface GreetInput {
  name?: string;
  /** When set, fetched (an allowed host) with the binding's api_token secret. */
  url?: string;
}

export const { node } = defineUpstreamNode({
  name: '${name}',
  version: '0.1.0',
  operations: {
    greet: {
      summary: 'Greets, counting the greetings of this session',
      input: { type: 'object', properties: { name: { type: 'string' }, url: { type: 'string' } } },
      output: { type: 'object', properties: { text: { type: 'string' } } },
      handler(input: GreetInput) {
        const seen = Number(state.getText('greeted') ?? '0') + 1;
        state.setText('greeted', String(seen));
        const text = \`Hello \${input.name ?? 'there'} (\${seen})\`;
        if (!input.url) return { text };
        const res = http.fetch({
          url: input.url,
          headers: { authorization: \`Bearer \${secrets.require('api_token')}\` },
        });
        return { text, status: res.status, body: res.text() };
      },
    },
  },
});
`;
}

export function componentSource(name: string, world: WorldVersion | 'upstream'): string {
  if (world === 'upstream') return upstream(name);
  return world === '0.1' ? v01(name) : v06(name);
}
