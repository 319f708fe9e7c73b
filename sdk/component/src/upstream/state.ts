import * as store from 'greentic:state/state-store@1.0.0';
import { hostCall, HostError } from '../errors.js';

const IFACE = 'greentic:state/state-store';
const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder();

/** Byte blobs of the current session; a missing key reads as undefined. */
export const state = {
  read(key: string): Uint8Array | undefined {
    try {
      return hostCall(IFACE, () => store.read(key, undefined));
    } catch (e) {
      if (e instanceof HostError && e.hostCode.replace(/-/g, '_') === 'not_found') return undefined;
      throw e;
    }
  },
  write(key: string, bytes: Uint8Array): void {
    hostCall(IFACE, () => store.write(key, bytes, undefined));
  },
  delete(key: string): void {
    hostCall(IFACE, () => store.delete(key, undefined));
  },
  getText(key: string): string | undefined {
    const b = state.read(key);
    return b === undefined ? undefined : utf8Decoder.decode(b);
  },
  setText(key: string, value: string): void {
    state.write(key, utf8Encoder.encode(value));
  },
  getJson<T = unknown>(key: string): T | undefined {
    const s = state.getText(key);
    return s === undefined ? undefined : (JSON.parse(s) as T);
  },
  setJson(key: string, value: unknown): void {
    state.setText(key, JSON.stringify(value));
  },
};
