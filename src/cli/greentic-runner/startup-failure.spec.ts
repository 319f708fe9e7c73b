import { describe, expect, it } from 'vitest';
import { ConfigError, GreenticError } from '../../common/errors.js';
import { describeStartupFailure } from './startup-failure.js';

describe('describeStartupFailure', () => {
  it('one line per listed bundle problem, exit 1', () => {
    const e = new ConfigError(
      "invalid bundle:\n  b.yaml:3:5: key 'a': expected x\n  b.yaml:9:1: key 'b': expected y",
    );
    expect(describeStartupFailure(e)).toEqual({
      lines: [
        "greentic-runner: b.yaml:3:5: key 'a': expected x",
        "greentic-runner: b.yaml:9:1: key 'b': expected y",
      ],
      exitCode: 1,
    });
  });

  it('an unreachable dependency names the setting that needs it, in words, exit 2', () => {
    const nats = new GreenticError(
      'bus_unavailable',
      'cannot connect to NATS at nats://h:4222: connection refused',
      503,
    );
    expect(describeStartupFailure(nats, { GREENTIC_BUS: 'nats' })).toEqual({
      lines: [
        'greentic-runner: cannot connect to NATS at nats://h:4222 (GREENTIC_BUS=nats): connection refused',
      ],
      exitCode: 2,
    });
    const redis = new GreenticError(
      'coordination_unavailable',
      'timers: cannot connect to Redis at redis://h:6379: connect ECONNREFUSED 10.0.0.1:6379',
      503,
    );
    expect(describeStartupFailure(redis, { GREENTIC_COORDINATION: 'redis' }).lines).toEqual([
      'greentic-runner: timers: cannot connect to Redis at redis://h:6379 (GREENTIC_COORDINATION=redis): connection refused',
    ]);
  });

  it('a port in use names HOST and PORT; anything else is one line without its stack', () => {
    const inUse = Object.assign(new Error('listen EADDRINUSE: address already in use'), {
      code: 'EADDRINUSE',
    });
    expect(describeStartupFailure(inUse, { HOST: '127.0.0.1', PORT: 8080 })).toEqual({
      lines: ['greentic-runner: cannot listen on 127.0.0.1:8080 (HOST, PORT): EADDRINUSE'],
      exitCode: 1,
    });
    expect(describeStartupFailure(new Error('boom\nmore')).lines).toEqual([
      'greentic-runner: failed to start: boom',
    ]);
  });
});
