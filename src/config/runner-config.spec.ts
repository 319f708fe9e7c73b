import 'reflect-metadata';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../common/errors.js';
import { unknownGreenticVariables, validateRunnerConfig } from './runner-config.js';

function problem(env: Record<string, string>): string {
  try {
    validateRunnerConfig(env);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as ConfigError).message;
  }
  throw new Error('expected a ConfigError');
}

describe('validateRunnerConfig', () => {
  it('names a bad value as given, not as converted', () => {
    const m = problem({ PORT: 'abc' });
    expect(m).toContain('PORT="abc": must be an integer number');
    // NaN fails the range checks too; they say nothing about "abc".
    expect(m).not.toContain('65535');
    expect(m).not.toContain('null');
  });

  it('keeps the range for a number out of range, and lists every bad key on its own line', () => {
    const m = problem({ PORT: '70000', GREENTIC_BUS: 'kafka' });
    expect(
      m
        .split('\n')
        .slice(1)
        .map((l) => l.trim()),
    ).toEqual([
      'PORT="70000": must not be greater than 65535',
      'GREENTIC_BUS="kafka": must be one of the following values: memory, nats',
    ]);
  });

  it('LOG_FORMAT: pretty or json, by default pretty only when stdout is a terminal', () => {
    expect(problem({ LOG_FORMAT: 'yaml' })).toContain(
      'LOG_FORMAT="yaml": must be one of the following values: pretty, json',
    );
    expect(validateRunnerConfig({ LOG_FORMAT: 'json' }).LOG_FORMAT).toBe('json');
    const was = Object.getOwnPropertyDescriptor(process.stdout, 'isTTY');
    try {
      for (const [tty, format] of [
        [true, 'pretty'],
        [false, 'json'],
      ] as const) {
        Object.defineProperty(process.stdout, 'isTTY', { value: tty, configurable: true });
        expect(validateRunnerConfig({}).LOG_FORMAT).toBe(format);
      }
    } finally {
      if (was) Object.defineProperty(process.stdout, 'isTTY', was);
      else delete (process.stdout as { isTTY?: boolean }).isTTY;
    }
  });

  it('GREENTIC_NATS_ACK_INTERVAL_MS: 1 s by default, 0 (every turn) allowed, negative or above 10 s refused', () => {
    expect(validateRunnerConfig({}).GREENTIC_NATS_ACK_INTERVAL_MS).toBe(1_000);
    expect(validateRunnerConfig({ GREENTIC_NATS_ACK_INTERVAL_MS: '0' }).GREENTIC_NATS_ACK_INTERVAL_MS).toBe(
      0,
    );
    expect(problem({ GREENTIC_NATS_ACK_INTERVAL_MS: '-1' })).toContain(
      'GREENTIC_NATS_ACK_INTERVAL_MS="-1": must not be less than 0',
    );
    expect(problem({ GREENTIC_NATS_ACK_INTERVAL_MS: '60000' })).toContain(
      'GREENTIC_NATS_ACK_INTERVAL_MS="60000": must not be greater than 10000',
    );
  });

  it('accepts numbers given as strings', () => {
    expect(validateRunnerConfig({ PORT: '0', GREENTIC_NATS_PARTITIONS: '4' })).toMatchObject({
      PORT: 0,
      GREENTIC_NATS_PARTITIONS: 4,
    });
  });
});

describe('unknownGreenticVariables', () => {
  it('suggests the closest known name for a typo', () => {
    expect(
      unknownGreenticVariables({
        GREENTIC_BUSS: 'nats',
        GREENTIC_SESSION: 'redis',
        GREENTIC_COMPONENT_POOL_MX: '8',
      }),
    ).toEqual([
      { name: 'GREENTIC_BUSS', suggestion: 'GREENTIC_BUS' },
      { name: 'GREENTIC_COMPONENT_POOL_MX', suggestion: 'GREENTIC_COMPONENT_POOL_MAX' },
      { name: 'GREENTIC_SESSION', suggestion: 'GREENTIC_SESSIONS' },
    ]);
  });

  it('reports a name with nothing close without a guess', () => {
    expect(unknownGreenticVariables({ GREENTIC_FROBNICATE_EVERYTHING: '1' })).toEqual([
      { name: 'GREENTIC_FROBNICATE_EVERYTHING' },
    ]);
  });

  it('leaves known variables, env-backend secrets and other prefixes alone', () => {
    expect(
      unknownGreenticVariables({
        GREENTIC_BUS: 'nats',
        GREENTIC_ADMIN_TOKEN: 't',
        GREENTIC_SECRET_DEMO_DEV_API_KEY: 'x',
        GREENTIC_TS_WORKER_CACHE: '/tmp',
        PORT: '1',
        NATS_URL: 'nats://x',
      }),
    ).toEqual([]);
  });
});
