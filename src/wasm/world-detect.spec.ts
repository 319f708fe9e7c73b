import { describe, expect, it } from 'vitest';
import { ComponentLoadError } from '../common/errors.js';
import { WORLD_V01, WORLD_V06 } from '../core/component-runtime.js';
import { declaredExports, detectWorld, jcoAlias } from './world-detect.js';

describe('world detection', () => {
  it('recognises the 0.1 world by its execute function', () => {
    expect(detectWorld('c', [['execute', 'function']])).toEqual({
      world: WORLD_V01,
      exports: ['execute'],
      hasDescriptor: false,
    });
  });

  it('recognises the 0.6 world by its node interface, dropping jco aliases', () => {
    const info = detectWorld('c', [
      ['componentDescriptor', 'instance'],
      ['node', 'instance'],
      ['greentic:component/component-descriptor@0.6.0', 'instance'],
      ['greentic:component/node@0.6.0', 'instance'],
    ]);
    expect(info.world).toBe(WORLD_V06);
    expect(info.hasDescriptor).toBe(true);
    expect(info.exports).toEqual([
      'greentic:component/component-descriptor@0.6.0',
      'greentic:component/node@0.6.0',
    ]);
  });

  it('prefers 0.6 when a component exports both', () => {
    const info = detectWorld('c', [
      ['execute', 'function'],
      ['greentic:component/node@0.6.0', 'instance'],
    ]);
    expect(info.world).toBe(WORLD_V06);
    expect(info.hasDescriptor).toBe(false);
  });

  it('refuses anything else and says what the component exports', () => {
    const act = () =>
      detectWorld('calc', [
        ['add', 'function'],
        ['foo', 'instance'],
        ['execute', 'instance'],
      ]);
    expect(act).toThrow(ComponentLoadError);
    expect(act).toThrow(
      "component 'calc' implements neither greentic:component@0.1.0 (export execute) nor " +
        'greentic:component@0.6.0 (export node); it exports: add, foo, execute',
    );
  });

  it('names jco aliases and keeps unqualified instance exports', () => {
    expect(jcoAlias('greentic:component/component-descriptor@0.6.0')).toBe('componentDescriptor');
    expect(
      declaredExports([
        ['tools', 'instance'],
        ['node', 'instance'],
        ['greentic:component/node@0.6.0', 'instance'],
      ]),
    ).toEqual(['tools', 'greentic:component/node@0.6.0']);
  });
});
