const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };

/** `5000` → 5000; `'5s'` → 5000; `'1m30s'` → 90000; anything else → undefined. */
export function toMillis(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) && v > 0 ? Math.round(v) : undefined;
  if (typeof v !== 'string' || !/^(?:\d+(?:\.\d+)?(?:ms|s|m|h))+$/.test(v)) return undefined;
  let total = 0;
  for (const m of v.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) total += Number(m[1]) * UNIT_MS[m[2]!]!;
  return total > 0 ? Math.round(total) : undefined;
}
