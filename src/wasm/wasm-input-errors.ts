/**
 * One readable line for the two inputs people get wrong most: a file that is not a WebAssembly
 * component, and component text (WAT) that does not parse. Without these, jco answers with a
 * Rust Debug dump (`Error { kind: Wast(Error { inner: ErrorInner { ... } }) }`).
 */

const MAGIC = [0x00, 0x61, 0x73, 0x6d]; // "\0asm"

function startOf(bytes: Uint8Array): string {
  const head = bytes.subarray(0, 16);
  const text = Buffer.from(head).toString('latin1');
  if (/^[\t\n\r\x20-\x7e]+$/.test(text)) return `text ${JSON.stringify(text.slice(0, 12))}`;
  return `bytes ${Buffer.from(head.subarray(0, 8)).toString('hex')}`;
}

/**
 * Why these bytes cannot be a component ("is not a WebAssembly file ..."), or undefined when the
 * header is a component's. Checks the 8-byte preamble only; the rest is jco's to judge.
 */
export function notAComponent(bytes: Uint8Array): string | undefined {
  if (bytes.length === 0) return 'is empty, not a WebAssembly component';
  if (bytes.length < 8 || MAGIC.some((b, i) => bytes[i] !== b))
    return `is not a WebAssembly file (it starts with ${startOf(bytes)}, not \\0asm)`;
  const layer = bytes[6]! | (bytes[7]! << 8);
  if (layer === 0)
    return 'is a core WebAssembly module, not a component (wrap it as a component: greentic-component build, or jco new)';
  if (layer !== 1) return `has WebAssembly layer ${layer}, neither a core module (0) nor a component (1)`;
  return undefined;
}

/**
 * jco's WAT parser error as `line:col: message` (1-based), or its first line when it has another
 * shape. The parser reports 0-based positions inside a Rust Debug string.
 */
export function readableWatError(message: string): string {
  const pos = /\bline: (\d+), col: (\d+)/.exec(message);
  const kind = /\bkind: Custom\("((?:[^"\\]|\\.)*)"\)/.exec(message);
  if (pos && kind)
    return `${Number(pos[1]) + 1}:${Number(pos[2]) + 1}: ${JSON.parse(`"${kind[1]}"`) as string}`;
  return message.split('\n')[0]!;
}
