import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { metrics as sdkMetrics } from '@opentelemetry/sdk-node';
import { installAttributeHashCache } from './attribute-hash-cache.js';

const require = createRequire(import.meta.url);
const utils = require('@opentelemetry/sdk-metrics/build/src/utils.js') as {
  hashAttributes: (a: Record<string, unknown>) => string;
};

describe('installAttributeHashCache', () => {
  it('hashes a frozen label set once and gives the SDK’s own hash for every kind of set', () => {
    const original = utils.hashAttributes;
    installAttributeHashCache();
    expect(utils.hashAttributes).not.toBe(original);
    const frozen = Object.freeze({ tenant: 'a', channel: 'web', outcome: 'completed' });
    const same = utils.hashAttributes(frozen);
    expect(same).toBe(original(frozen));
    expect(utils.hashAttributes(frozen)).toBe(same);
    // Key order never matters, cached or not; a mutable set is hashed afresh each time.
    const loose: Record<string, string> = { outcome: 'completed', channel: 'web', tenant: 'a' };
    expect(utils.hashAttributes(loose)).toBe(same);
    loose['outcome'] = 'failed';
    expect(utils.hashAttributes(loose)).toBe(original(loose));
    expect(utils.hashAttributes(loose)).not.toBe(same);
  });

  it('keeps series apart in a real meter provider: counts per label set are exact', async () => {
    installAttributeHashCache();
    const reader = new sdkMetrics.InMemoryMetricExporter(sdkMetrics.AggregationTemporality.CUMULATIVE);
    const periodic = new sdkMetrics.PeriodicExportingMetricReader({
      exporter: reader,
      exportIntervalMillis: 60_000,
    });
    const provider = new sdkMetrics.MeterProvider({ readers: [periodic] });
    const counter = provider.getMeter('t').createCounter('c');
    const a = Object.freeze({ tenant: 'a' });
    const b = Object.freeze({ tenant: 'b' });
    for (let i = 0; i < 5; i++) counter.add(1, a);
    for (let i = 0; i < 3; i++) counter.add(1, b);
    counter.add(1, { tenant: 'a' });
    await periodic.forceFlush();
    const points = reader.getMetrics()[0]!.scopeMetrics[0]!.metrics[0]!.dataPoints;
    const byTenant = Object.fromEntries(points.map((p) => [p.attributes['tenant'], p.value]));
    expect(byTenant).toEqual({ a: 6, b: 3 });
    await provider.shutdown();
  });
});
