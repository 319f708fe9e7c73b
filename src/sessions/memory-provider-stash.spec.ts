import { afterEach, describe, expect, it, vi } from 'vitest';
import type { TenantCtx } from '../core/tenant-ctx.js';
import { MemoryProviderStash } from './memory-provider-stash.js';

const acme: TenantCtx = Object.freeze({ tenantId: 'acme', envId: 'dev', teamId: 'default' });
const globex: TenantCtx = Object.freeze({ tenantId: 'globex', envId: 'dev', teamId: 'default' });

afterEach(() => {
  vi.useRealTimers();
});

describe('MemoryProviderStash', () => {
  it("keeps a record for its tenant only: another tenant's same key finds nothing", async () => {
    const stash = new MemoryProviderStash();
    await stash.put(acme, 'telegram/tg/1/tok', { action: 'escalate' }, 60_000);
    expect(await stash.get(acme, 'telegram/tg/1/tok')).toEqual({ action: 'escalate' });
    expect(await stash.get(globex, 'telegram/tg/1/tok')).toBeUndefined();
    expect(stash.durable).toBe(false);
  });

  it('forgets a record once its own TTL has passed', async () => {
    vi.useFakeTimers({ now: 1_000_000 });
    const stash = new MemoryProviderStash();
    await stash.put(acme, 'short', { n: 1 }, 1_000);
    await stash.put(acme, 'long', { n: 2 }, 60_000);
    vi.setSystemTime(1_000_000 + 1_001);
    expect(await stash.get(acme, 'short')).toBeUndefined();
    expect(await stash.get(acme, 'long')).toEqual({ n: 2 });
  });
});
