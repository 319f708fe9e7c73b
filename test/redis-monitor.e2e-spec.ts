import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireRedis, SHARED_REDIS_URL, uniqueRedisPrefix } from './support/nats-redis-servers.js';
import { monitorRedis, parseMonitorLine, type MonitoredCommand } from './support/redis-monitor.js';

/** The MONITOR reader the session tests count round trips with, against the machine's Redis. */

const prefix = uniqueRedisPrefix('monitor');
let redis: Redis;

beforeAll(async () => {
  await requireRedis();
  redis = new Redis(SHARED_REDIS_URL);
});

afterAll(async () => {
  await redis?.del(`${prefix}:k`);
  redis?.disconnect();
});

describe('monitorRedis', () => {
  it("sees a client's commands with their arguments unescaped, and a script's own commands as lua", async () => {
    const seen: MonitoredCommand[] = [];
    const monitor = await monitorRedis(SHARED_REDIS_URL, (c) => {
      if (c.args.some((a) => a.startsWith(prefix))) seen.push(c);
    });
    const value = 'quote " backslash \\ newline \n tab \t byte \u0001 done';
    await redis.set(`${prefix}:k`, value);
    await redis.eval("return redis.call('GET', KEYS[1])", 1, `${prefix}:k`);
    await new Promise((r) => setTimeout(r, 100));
    await monitor.stop();

    const own = /addr=(\S+)/.exec(String(await redis.client('INFO')))![1];
    expect(
      seen.map((c) => [c.source === 'lua' ? 'lua' : c.source === own ? 'client' : c.source, c.args[0]]),
    ).toEqual([
      ['client', 'set'],
      ['client', 'eval'],
      ['lua', 'GET'],
    ]);
    expect(seen[0]!.args).toEqual(['set', `${prefix}:k`, value]);
  });

  it('reads only command lines; anything else is not a command', () => {
    expect(parseMonitorLine('+OK')).toBeUndefined();
    expect(parseMonitorLine('+1796538408.034508 [0 127.0.0.1:43656] "get" "a\\x00b"')).toEqual({
      time: '1796538408.034508',
      source: '127.0.0.1:43656',
      args: ['get', 'a\u0000b'],
    });
  });
});
