import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { applyCliConventions, closest } from './cli-conventions.js';

describe('closest', () => {
  it('suggests a name at most two edits away, and nothing for a far one', () => {
    const names = ['validate', 'test', 'start', 'schema'];
    expect(closest('valdiate', names)).toBe('validate');
    expect(closest('tset', names)).toBe('test');
    expect(closest('strat', names)).toBe('start');
    expect(closest('frobnicate', names)).toBeUndefined();
  });
});

describe('applyCliConventions', () => {
  it('refuses a command without examples, naming it', () => {
    const program = new Command('tool');
    program.command('a').action(() => undefined);
    program.command('b').action(() => undefined);
    expect(() => applyCliConventions(program, { '': ['tool a'], a: ['tool a'] }, () => undefined)).toThrow(
      "tool: no help examples for 'b'",
    );
  });
});
