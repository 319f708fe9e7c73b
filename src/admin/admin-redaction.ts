import { secretRedactor } from '../secrets/secret-redactor.js';

const CREDENTIAL_KEY = /(token|secret|password|passwd|private_key|api_key|credentials?)$/i;

/**
 * What admin routes answer passes through here: every secret value the runner has read is blanked,
 * credentials inside URLs are masked, and keys named like credentials lose their value.
 */
export function redactForAdmin<T>(value: T): T {
  return secretRedactor.redactValue(mask(value, 0) as T);
}

function mask(v: unknown, depth: number): unknown {
  if (depth > 12) return '[truncated]';
  if (typeof v === 'string')
    return v.replace(/^([a-z][a-z0-9+.-]*:\/\/)([^:@/]*):([^@/]+)@/i, '$1$2:[redacted]@');
  if (Array.isArray(v)) return v.map((x) => mask(x, depth + 1));
  if (v instanceof Map) return mask(Object.fromEntries(v), depth);
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>))
      out[k] = typeof x === 'string' && CREDENTIAL_KEY.test(k) ? '[redacted]' : mask(x, depth + 1);
    return out;
  }
  return v;
}
