import type { ConsumerInfo, JetStreamManager } from '@nats-io/jetstream';
import { describe, expect, it } from 'vitest';
import { listConsumers } from './consumer-list.js';

/** A manager whose lister yields the page nats-server 2.9 sends while a consumer is deleted. */
function managerListing(page: (ConsumerInfo | null)[]): Pick<JetStreamManager, 'consumers'> {
  const consumers = {
    list: () => ({
      async *[Symbol.asyncIterator]() {
        for (const ci of page) yield ci;
      },
    }),
  };
  return { consumers } as unknown as Pick<JetStreamManager, 'consumers'>;
}

const info = (name: string): ConsumerInfo =>
  ({ name, stream_name: 'S', config: { durable_name: name }, num_ack_pending: 0 }) as unknown as ConsumerInfo;

describe('listConsumers', () => {
  it('drops the null entry of a consumer deleted while the page was built, keeping the others in order', async () => {
    const got = await listConsumers(managerListing([info('g_p0_e1'), null, info('g_p1_e1')]), 'S');
    expect(got.map((c) => c.name)).toEqual(['g_p0_e1', 'g_p1_e1']);
  });

  it('returns an empty list for a stream without consumers', async () => {
    expect(await listConsumers(managerListing([]), 'S')).toEqual([]);
  });
});
