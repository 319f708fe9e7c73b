import { describe, expect, it } from 'vitest';
import { purgesUnackedOnRestart } from './server-version.js';

describe('purgesUnackedOnRestart', () => {
  it('is true before nats-server 2.9.16, where start-up purges what a consumer with no ack yet holds', () => {
    expect(purgesUnackedOnRestart('2.9.10')).toBe(true);
    expect(purgesUnackedOnRestart('2.9.15')).toBe(true);
    expect(purgesUnackedOnRestart('2.8.4')).toBe(true);
  });

  it('is false from 2.9.16 on, and for a version it cannot read', () => {
    expect(purgesUnackedOnRestart('2.9.16')).toBe(false);
    expect(purgesUnackedOnRestart('2.10.22')).toBe(false);
    expect(purgesUnackedOnRestart('2.11.0-RC.1')).toBe(false);
    expect(purgesUnackedOnRestart('3.0.0')).toBe(false);
    expect(purgesUnackedOnRestart(undefined)).toBe(false);
    expect(purgesUnackedOnRestart('dev')).toBe(false);
  });
});
