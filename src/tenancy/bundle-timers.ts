import { Cron } from 'croner';
import { ConfigError } from '../common/errors.js';
import { toMillis } from '../common/duration.js';
import type { ChannelBinding, TeamBinding, TimerBinding, TimerSchedule } from './bundle.types.js';

/** A `timers:` entry of a bundle env, as the schema let it through. */
export interface RawTimer {
  pack: string;
  flow: string;
  cron?: string;
  interval?: number | string;
  timezone?: string;
  catch_up?: boolean;
  max_catch_up?: number;
  misfire_grace?: number | string;
  team?: string;
  input?: Record<string, unknown>;
  /** Timer provider settings: `callback_url` receives what the flow replies. */
  settings?: Record<string, unknown>;
  secrets?: string[];
  session_ttl_seconds?: number;
}

export const TIMER_PROVIDER = 'timer';
const MIN_INTERVAL_MS = 1_000;
const DEFAULT_MISFIRE_GRACE_MS = 60_000;
const DEFAULT_MAX_CATCH_UP = 100;
/** The timer's session (its `session.*` data between ticks) outlives any sane gap between ticks. */
const DEFAULT_TIMER_SESSION_TTL_S = 7 * 24 * 3600;

function invalid(file: string, key: string, expected: string): ConfigError {
  return new ConfigError(`invalid bundle:\n  ${file}: key '${key}': expected ${expected}`, { file, key });
}

/** A time zone the runtime's ICU knows (IANA name such as `Europe/Paris`, or `UTC`). */
export function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/**
 * Normalises an env's `timers:` and binds each timer as a channel of provider `timer` in its team
 * (`team:`, default `default`), so a tick resolves through the same BundleRegistry as a message.
 * Cron expressions and time zones are checked here, at load, not at the first tick.
 */
export function normaliseTimers(
  raw: Record<string, RawTimer> | undefined,
  at: {
    file: string;
    tenant: string;
    env: string;
    packIds: ReadonlySet<string>;
    teams: Map<string, TeamBinding>;
  },
): Map<string, TimerBinding> {
  const timers = new Map<string, TimerBinding>();
  for (const [id, t] of Object.entries(raw ?? {})) {
    const key = `tenants.${at.tenant}.envs.${at.env}.timers.${id}`;
    if (!at.packIds.has(t.pack))
      throw invalid(
        at.file,
        `${key}.pack`,
        `one of the tenant's packs ${JSON.stringify([...at.packIds])}, got '${t.pack}'`,
      );
    if ((t.cron === undefined) === (t.interval === undefined))
      throw invalid(at.file, key, "exactly one of 'cron' (with 'timezone') or 'interval'");
    let schedule: TimerSchedule;
    if (t.cron !== undefined) {
      const timezone = t.timezone ?? 'UTC';
      if (!isTimeZone(timezone))
        throw invalid(
          at.file,
          `${key}.timezone`,
          `an IANA time zone such as Europe/Paris, got '${timezone}'`,
        );
      try {
        new Cron(t.cron, { timezone, paused: true });
      } catch (e) {
        throw invalid(at.file, `${key}.cron`, `a cron expression (${(e as Error).message}), got '${t.cron}'`);
      }
      schedule = { kind: 'cron', expression: t.cron, timezone };
    } else {
      if (t.timezone !== undefined)
        throw invalid(
          at.file,
          `${key}.timezone`,
          "no time zone with 'interval' (intervals are aligned to UTC epoch time)",
        );
      const everyMs = toMillis(t.interval);
      if (everyMs === undefined || everyMs < MIN_INTERVAL_MS)
        throw invalid(at.file, `${key}.interval`, `a duration of at least 1s, got '${String(t.interval)}'`);
      schedule = { kind: 'interval', everyMs };
    }
    const teamId = t.team ?? 'default';
    const team = at.teams.get(teamId);
    if (!team)
      throw invalid(
        at.file,
        `${key}.team`,
        `a team of env '${at.env}' ${JSON.stringify([...at.teams.keys()])}, got '${teamId}'`,
      );
    if (team.channels.has(id))
      throw invalid(
        at.file,
        key,
        `a timer id that no channel of team '${teamId}' uses (a timer is bound as a channel of that name)`,
      );
    const channel: ChannelBinding = {
      id,
      provider: TIMER_PROVIDER,
      pack: t.pack,
      flow: t.flow,
      sessionTtlSeconds: t.session_ttl_seconds ?? DEFAULT_TIMER_SESSION_TTL_S,
      settings: { ...t.settings, timer: id },
      secrets: t.secrets ?? [],
      secretRefs: {},
    };
    team.channels.set(id, channel);
    timers.set(id, {
      id,
      tenant: at.tenant,
      env: at.env,
      team: teamId,
      pack: t.pack,
      flow: t.flow,
      schedule,
      catchUp: t.catch_up ?? false,
      maxCatchUp: t.max_catch_up ?? DEFAULT_MAX_CATCH_UP,
      misfireGraceMs: toMillis(t.misfire_grace) ?? DEFAULT_MISFIRE_GRACE_MS,
      input: t.input ?? {},
    });
  }
  return timers;
}
