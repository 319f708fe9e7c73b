// The demo pack's `weather_api` component (greentic:component@0.6.0, built with componentize-js
// by scripts/build-demo.mjs). Operation `forecast_weather`: { q, days } -> a forecast computed
// deterministically from the location name. No network: the same city always gets the same weather.

const encoder = new TextEncoder();
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
function hash(text) {
  let h = 0x811c9dc5;
  for (const ch of text) {
    h ^= ch.codePointAt(0);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** mulberry32: a small deterministic PRNG seeded by the location hash. */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function titleCase(text) {
  return text
    .split(/\s+/)
    .filter(Boolean)
    .map((w) => w[0].toUpperCase() + w.slice(1).toLowerCase())
    .join(' ');
}

function forecast(q, days) {
  const name = titleCase(q);
  const random = prng(hash(name.toLowerCase()));
  const base = Math.round(random() * 30) - 4; // a city's typical high, -4..26 C
  const forecastDays = [];
  for (let day = 1; day <= days; day++) {
    const high = base + Math.round(random() * 8) - 4;
    const low = high - 4 - Math.round(random() * 6);
    let condition = CONDITIONS[Math.floor(random() * CONDITIONS.length)];
    if (high <= 1 && (condition === 'light rain' || condition === 'showers')) condition = 'snow';
    forecastDays.push({ day, high_c: high, low_c: low, condition });
  }
  const counts = new Map();
  for (const d of forecastDays) counts.set(d.condition, (counts.get(d.condition) ?? 0) + 1);
  const mostly = [...counts].sort((a, b) => b[1] - a[1])[0][0];
  const first = forecastDays[0];
  const today = `${first.condition[0].toUpperCase()}${first.condition.slice(1)}, ${first.high_c}\u00b0C / ${first.low_c}\u00b0C today`;
  const summary = days === 1 ? today : `${today}; mostly ${mostly} over the next ${days} days`;
  return { location: { name }, days, summary, forecast: forecastDays };
}

function nodeError(code, message) {
  // componentize-js: a thrown object with `payload` becomes the `err` case of the result.
  return { payload: { code, message, retryable: false, backoffMs: undefined, details: undefined } };
}

export const node = {
  invoke(op, envelope) {
    if (op !== 'forecast_weather')
      throw nodeError('unknown_operation', `weather_api has no operation '${op}'`);
    const input = cborDecode(envelope.payloadCbor) ?? {};
    const q = typeof input.q === 'string' ? input.q.trim() : '';
    if (!q) throw nodeError('invalid_input', 'forecast_weather needs a location: { q: string }');
    const requested = Number(input.days ?? 3);
    const days = Number.isFinite(requested) ? Math.min(7, Math.max(1, Math.round(requested))) : 3;
    return { ok: true, outputCbor: cborEncode(forecast(q, days)), outputMetadataCbor: undefined };
  },
};

export const componentDescriptor = {
  describe() {
    return cborEncode({
      name: 'weather_api',
      version: '0.1.0',
      operations: [
        {
          name: 'forecast_weather',
          input_schema: {
            type: 'object',
            properties: { q: { type: 'string' }, days: { type: 'integer', minimum: 1, maximum: 7 } },
            required: ['q'],
          },
          output_schema: {
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
        },
      ],
    });
  },
};
