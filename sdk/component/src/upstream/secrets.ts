import * as store from 'greentic:secrets-store/secrets-store@1.0.0';
import { hostCall, HostError } from '../errors.js';

const IFACE = 'greentic:secrets-store/secrets-store';
const utf8Decoder = new TextDecoder();

export const secrets = {
  /** The secret's bytes; undefined when it is not set. */
  getBytes(key: string): Uint8Array | undefined {
    return hostCall(IFACE, () => store.get(key));
  },
  /** The secret as UTF-8 text; undefined when it is not set. */
  get(key: string): string | undefined {
    const b = secrets.getBytes(key);
    return b === undefined ? undefined : utf8Decoder.decode(b);
  },
  require(key: string): string {
    const v = secrets.get(key);
    if (v === undefined) throw new HostError(IFACE, 'not-found', `secret '${key}' is not set`);
    return v;
  },
};
