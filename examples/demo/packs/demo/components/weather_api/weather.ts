// The demo pack's `weather_api` component (greentic:component@0.6.0, built by scripts/build-demo.mjs
// with the component SDK). Operation `forecast_weather`: { q, days } -> a forecast computed
// deterministically from the location name. No network: the same city always gets the same weather.
import { defineNode, InvalidInputError } from '@greentic/component-sdk';

interface ForecastInput {
  q?: unknown;
  days?: unknown;
}

interface ForecastDay {
  day: number;
  high_c: number;
  low_c: number;
  condition: string;
}

const CONDITIONS = [
  'sunny',
  'partly cloudy',
  'cloudy',
  'light rain',
  'showers',
  'thunderstorms',
  'windy',
  'foggy',
];

/** FNV-1a, 32 bits. */
function hash(text: string): number {
  let h = 0x811c9dc5;
  for (const ch of text) {
    h ^= ch.codePointAt(0)!;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** mulberry32: a small deterministic PRNG seeded by the location hash. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function titleCase(text: string): string {
  return text
    .split(/\s+/)
    .filter(Boolean)
    .map((w) => w[0]!.toUpperCase() + w.slice(1).toLowerCase())
    .join(' ');
}

function forecast(q: string, days: number) {
  const name = titleCase(q);
  const random = prng(hash(name.toLowerCase()));
  const base = Math.round(random() * 30) - 4; // a city's typical high, -4..26 C
  const forecastDays: ForecastDay[] = [];
  const counts: Record<string, number> = {};
  for (let day = 1; day <= days; day++) {
    const high = base + Math.round(random() * 8) - 4;
    const low = high - 4 - Math.round(random() * 6);
    let condition = CONDITIONS[Math.floor(random() * CONDITIONS.length)]!;
    if (high <= 1 && (condition === 'light rain' || condition === 'showers')) condition = 'snow';
    forecastDays.push({ day, high_c: high, low_c: low, condition });
    counts[condition] = (counts[condition] ?? 0) + 1;
  }
  // the most frequent condition; on a tie, the one seen first
  let mostly = '';
  for (const c in counts) if (mostly === '' || counts[c]! > counts[mostly]!) mostly = c;
  const first = forecastDays[0]!;
  const today = `${first.condition[0]!.toUpperCase()}${first.condition.slice(1)}, ${first.high_c}\u00b0C / ${first.low_c}\u00b0C today`;
  const summary = days === 1 ? today : `${today}; mostly ${mostly} over the next ${days} days`;
  return { location: { name }, days, summary, forecast: forecastDays };
}

export const { node, componentDescriptor } = defineNode({
  name: 'weather_api',
  version: '0.1.0',
  operations: {
    forecast_weather: {
      input: {
        type: 'object',
        properties: { q: { type: 'string' }, days: { type: 'integer', minimum: 1, maximum: 7 } },
        required: ['q'],
      },
      output: {
        type: 'object',
        properties: {
          location: { type: 'object', properties: { name: { type: 'string' } } },
          days: { type: 'integer' },
          summary: { type: 'string' },
          forecast: {
            type: 'array',
            items: {
              type: 'object',
              properties: {
                day: { type: 'integer' },
                high_c: { type: 'number' },
                low_c: { type: 'number' },
                condition: { type: 'string' },
              },
            },
          },
        },
      },
      handler(input: ForecastInput) {
        const q = typeof input.q === 'string' ? input.q.trim() : '';
        if (!q) throw new InvalidInputError('forecast_weather needs a location: { q: string }');
        const requested = Number(input.days ?? 3);
        const days = Number.isFinite(requested) ? Math.min(7, Math.max(1, Math.round(requested))) : 3;
        return forecast(q, days);
      },
    },
  },
});
