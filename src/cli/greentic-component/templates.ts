/**
 * Skeletons written by `greentic-component new`: one JavaScript file per world (componentize-js
 * builds it), using a host import so authors see how they are reached. The 0.6 skeleton carries a
 * small CBOR codec, because a component is one self-contained module.
 */
import type { WorldVersion } from '../../wasm/authoring/wit-project.js';

const CBOR_CODEC = `const encoder = new TextEncoder();
const decoder = new TextDecoder();

function cborEncode(value) {
  const out = [];
  const head = (major, n) => {
    if (n < 24) out.push((major << 5) | n);
    else if (n < 0x100) out.push((major << 5) | 24, n);
    else if (n < 0x10000) out.push((major << 5) | 25, n >> 8, n & 0xff);
    else if (n < 0x100000000)
      out.push((major << 5) | 26, (n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
    else {
      const hi = Math.floor(n / 0x100000000);
      const lo = n >>> 0;
      out.push((major << 5) | 27, (hi >>> 24) & 0xff, (hi >>> 16) & 0xff, (hi >>> 8) & 0xff, hi & 0xff);
      out.push((lo >>> 24) & 0xff, (lo >>> 16) & 0xff, (lo >>> 8) & 0xff, lo & 0xff);
    }
  };
  const enc = (v) => {
    if (v === null) out.push(0xf6);
    else if (v === undefined) out.push(0xf7);
    else if (v === true) out.push(0xf5);
    else if (v === false) out.push(0xf4);
    else if (typeof v === 'number') {
      if (Number.isSafeInteger(v)) head(v >= 0 ? 0 : 1, v >= 0 ? v : -1 - v);
      else {
        const b = new Uint8Array(8);
        new DataView(b.buffer).setFloat64(0, v);
        out.push(0xfb, ...b);
      }
    } else if (typeof v === 'string') {
      const b = encoder.encode(v);
      head(3, b.length);
      for (const x of b) out.push(x);
    } else if (v instanceof Uint8Array) {
      head(2, v.length);
      for (const x of v) out.push(x);
    } else if (Array.isArray(v)) {
      head(4, v.length);
      v.forEach(enc);
    } else {
      const entries = Object.entries(v).filter(([, x]) => x !== undefined);
      head(5, entries.length);
      for (const [k, x] of entries) {
        enc(k);
        enc(x);
      }
    }
  };
  enc(value);
  return new Uint8Array(out);
}

function cborDecode(bytes) {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 0;
  const arg = (info) => {
    if (info < 24) return info;
    if (info === 24) return dv.getUint8(pos++);
    if (info === 25) return ((pos += 2), dv.getUint16(pos - 2));
    if (info === 26) return ((pos += 4), dv.getUint32(pos - 4));
    if (info === 27) return ((pos += 8), dv.getUint32(pos - 8) * 0x100000000 + dv.getUint32(pos - 4));
    throw new Error('unsupported CBOR argument ' + info);
  };
  const half = (h) => {
    const e = (h >> 10) & 0x1f;
    const m = h & 0x3ff;
    const s = h & 0x8000 ? -1 : 1;
    if (e === 0) return s * 2 ** -14 * (m / 1024);
    if (e === 31) return m ? NaN : s * Infinity;
    return s * 2 ** (e - 15) * (1 + m / 1024);
  };
  const dec = () => {
    const ib = dv.getUint8(pos++);
    const major = ib >> 5;
    const info = ib & 31;
    switch (major) {
      case 0:
        return arg(info);
      case 1:
        return -1 - arg(info);
      case 2: {
        const n = arg(info);
        return bytes.slice(pos, (pos += n));
      }
      case 3: {
        const n = arg(info);
        return decoder.decode(bytes.subarray(pos, (pos += n)));
      }
      case 4: {
        const n = arg(info);
        const a = [];
        for (let i = 0; i < n; i++) a.push(dec());
        return a;
      }
      case 5: {
        const n = arg(info);
        const o = {};
        for (let i = 0; i < n; i++) {
          const k = dec();
          o[String(k)] = dec();
        }
        return o;
      }
      case 6:
        arg(info);
        return dec();
      default:
        if (info === 20) return false;
        if (info === 21) return true;
        if (info === 22) return null;
        if (info === 23) return undefined;
        if (info === 25) return ((pos += 2), half(dv.getUint16(pos - 2)));
        if (info === 26) return ((pos += 4), dv.getFloat32(pos - 4));
        if (info === 27) return ((pos += 8), dv.getFloat64(pos - 8));
        throw new Error('unsupported CBOR simple value ' + info);
    }
  };
  return dec();
}
`;

function v01(name: string): string {
  return `// ${name}: a greentic:component@0.1.0 component (greentic-component new --world 0.1).
// \`execute\` gets one chat message and answers an outcome: { success, data?, error? }.
// Host imports (greentic:host/...) are how a component reaches secrets, session state, HTTP, logs
// and span events; the runner checks every call against the tenant's bindings.
import { log } from 'greentic:host/log@0.1.0';

export function execute(message) {
  log('info', 'message received', JSON.stringify({ sender: message.sender }));
  if (message.content === '') {
    return { success: false, data: undefined, error: 'empty message' };
  }
  return { success: true, data: message.content, error: undefined };
}
`;
}

function v06(name: string): string {
  return `// ${name}: a greentic:component@0.6.0 node (greentic-component new --world 0.6).
// \`describe()\` lists the operations (read once when a pack loads); \`invoke(op, envelope)\` runs
// one, with CBOR payloads. Throw { payload: node-error } for an error the flow can see.
// Host imports (greentic:host/...) reach secrets, session state, HTTP, logs and span events.
import { get as stateGet, set as stateSet } from 'greentic:host/state@0.1.0';
import { log } from 'greentic:host/log@0.1.0';

${CBOR_CODEC}
function ok(output) {
  return { ok: true, outputCbor: cborEncode(output), outputMetadataCbor: undefined };
}

function nodeError(code, message) {
  return { payload: { code, message, retryable: false, backoffMs: undefined, details: undefined } };
}

export const node = {
  invoke(op, envelope) {
    const input = cborDecode(envelope.payloadCbor) ?? {};
    switch (op) {
      case 'greet': {
        // Session state survives between messages of one user (a host error is thrown as { payload }).
        const seen = Number(stateGet('greeted') ?? '0') + 1;
        stateSet('greeted', String(seen));
        log('info', 'greeting', JSON.stringify({ seen }));
        return ok({ text: \`Hello \${input.name ?? 'there'} (\${seen})\` });
      }
      default:
        throw nodeError('unknown_operation', 'no operation ' + op);
    }
  },
};

export const componentDescriptor = {
  describe() {
    return cborEncode({
      name: '${name}',
      version: '0.1.0',
      operations: [
        {
          name: 'greet',
          input_schema: { type: 'object', properties: { name: { type: 'string' } } },
          output_schema: { type: 'object', properties: { text: { type: 'string' } } },
        },
      ],
    });
  },
};
`;
}

function upstream(name: string): string {
  return `// ${name}: a node of upstream's greentic:component@0.6.0 (greentic-component new --world upstream),
// built against wit/upstream/, so it runs on upstream's runner as well as on this one.
// \`describe()\` returns the component-descriptor record; \`invoke(op, envelope)\` runs one operation
// with CBOR payloads. Throw { payload: node-error } for an error the flow can see.
// Host imports: greentic:state/state-store (byte blobs of this session), greentic:http/http-client
// (the tenant's allowed hosts) and greentic:secrets-store/secrets-store (the binding's secrets).
import { read, write } from 'greentic:state/state-store@1.0.0';

${CBOR_CODEC}
function ok(output) {
  return { ok: true, outputCbor: cborEncode(output), outputMetadataCbor: undefined };
}

function nodeError(code, message) {
  return { payload: { code, message, retryable: false, backoffMs: undefined, details: undefined } };
}

const objectSchema = {
  schema: { tag: 'inline-cbor', val: cborEncode({ type: 'object' }) },
  contentType: 'application/cbor',
  schemaVersion: undefined,
};

/** A counter in state-store: a missing key is the host error \`not_found\`. */
function seen(key) {
  try {
    return Number(decoder.decode(read(key, undefined)));
  } catch (e) {
    if (e && e.payload && e.payload.code === 'not_found') return 0;
    throw e;
  }
}

export const node = {
  describe() {
    return {
      name: '${name}',
      version: '0.1.0',
      summary: undefined,
      capabilities: [],
      ops: [
        { name: 'greet', summary: 'Greets, counting the greetings of this session', input: objectSchema, output: objectSchema, examples: [] },
      ],
      schemas: [],
      setup: undefined,
    };
  },

  invoke(op, envelope) {
    const input = envelope.payloadCbor.length ? (cborDecode(envelope.payloadCbor) ?? {}) : {};
    switch (op) {
      case 'greet': {
        const n = seen('greeted') + 1;
        write('greeted', encoder.encode(String(n)), undefined);
        return ok({ text: \`Hello \${input.name ?? 'there'} (\${n})\` });
      }
      default:
        throw nodeError('unknown_operation', 'no operation ' + op);
    }
  },
};
`;
}

export function componentSource(name: string, world: WorldVersion | 'upstream'): string {
  if (world === 'upstream') return upstream(name);
  return world === '0.1' ? v01(name) : v06(name);
}
