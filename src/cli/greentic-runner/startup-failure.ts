import { GreenticError } from '../../common/errors.js';
import type { RunnerConfig } from '../../config/runner-config.js';

/** Exit codes of `greentic-runner start` (docs/operations.md, "Start-up failures"). */
export const EXIT_CONFIG = 1;
export const EXIT_UNREACHABLE = 2;

export interface StartupFailure {
  /** What to print on stderr, one problem a line, each starting `greentic-runner: `. */
  lines: string[];
  exitCode: typeof EXIT_CONFIG | typeof EXIT_UNREACHABLE;
}

/** Errors of a dependency that cannot be reached (it may come back): exit 2, with the setting that chose it. */
const UNREACHABLE_CODES = new Set([
  'bus_unavailable',
  'session_store_unavailable',
  'coordination_unavailable',
]);

/** The setting that made the runner need this dependency, e.g. `GREENTIC_BUS=nats`. */
function settingFor(e: GreenticError, cfg: Partial<RunnerConfig>): string | undefined {
  if (e.code === 'bus_unavailable') return `GREENTIC_BUS=${cfg.GREENTIC_BUS ?? 'nats'}`;
  if (e.code === 'session_store_unavailable') return `GREENTIC_SESSIONS=${cfg.GREENTIC_SESSIONS ?? 'redis'}`;
  if (e.code === 'coordination_unavailable')
    // `auto` follows the session store.
    return cfg.GREENTIC_COORDINATION === 'redis' ? 'GREENTIC_COORDINATION=redis' : 'GREENTIC_SESSIONS=redis';
  return undefined;
}

/** Socket errors in words: `connect ECONNREFUSED 127.0.0.1:6379` says nothing the URL does not. */
const SOCKET_ERRORS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  ETIMEDOUT: 'timed out',
  EHOSTUNREACH: 'host unreachable',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host not found (DNS)',
};

/** `cannot connect to NATS at nats://h:4222: connection refused` → the setting goes after the URL. */
function withSetting(raw: string, setting: string | undefined): string {
  const message = raw.replace(
    /\b(?:connect |getaddrinfo )?(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENOTFOUND|EAI_AGAIN)\b[^\n]*$/,
    (_m, code: string) => SOCKET_ERRORS[code]!,
  );
  if (!setting) return message;
  const m = /^(.*?\bat \S+): (.+)$/s.exec(message);
  return m ? `${m[1]} (${setting}): ${m[2]}` : `${message} (${setting})`;
}

/**
 * Messages like `invalid bundle:\n  file:3:5: key 'x': ...` hold one problem per indented line
 * under a heading; each becomes its own line. A single-line message stays as it is.
 */
function problemLines(message: string): string[] {
  const lines = message.split('\n').map((l) => l.trim());
  const listed = lines.length > 1 && lines[0]!.endsWith(':') ? lines.slice(1) : lines;
  return listed.filter((l) => l.length > 0);
}

/**
 * A start-up error as a tool reports it: the file, key or service and what is wrong, no stack.
 * `cfg` is the configuration as far as it was valid (it names the setting behind a dependency).
 */
export function describeStartupFailure(err: unknown, cfg: Partial<RunnerConfig> = {}): StartupFailure {
  const prefix = (l: string): string => `greentic-runner: ${l}`;
  if (err instanceof GreenticError) {
    if (UNREACHABLE_CODES.has(err.code))
      return { lines: [prefix(withSetting(err.message, settingFor(err, cfg)))], exitCode: EXIT_UNREACHABLE };
    return { lines: problemLines(err.message).map(prefix), exitCode: EXIT_CONFIG };
  }
  const e = err as NodeJS.ErrnoException;
  if (e?.code === 'EADDRINUSE' || e?.code === 'EACCES' || e?.code === 'EADDRNOTAVAIL')
    return {
      lines: [prefix(`cannot listen on ${cfg.HOST ?? '?'}:${cfg.PORT ?? '?'} (HOST, PORT): ${e.code}`)],
      exitCode: EXIT_CONFIG,
    };
  const message = err instanceof Error ? err.message : String(err);
  return { lines: [prefix(`failed to start: ${message.split('\n')[0]}`)], exitCode: EXIT_CONFIG };
}
