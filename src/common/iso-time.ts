let lastMs = Number.NaN;
let lastIso = '';

/**
 * `new Date().toISOString()`, formatted at most once per millisecond: a message stamps several
 * objects (envelope, reply, session) and formatting cost a microsecond each time.
 */
export function isoNow(ms: number = Date.now()): string {
  if (ms !== lastMs) {
    lastIso = new Date(ms).toISOString();
    lastMs = ms;
  }
  return lastIso;
}
