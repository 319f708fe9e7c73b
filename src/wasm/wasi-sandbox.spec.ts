import { describe, expect, it } from 'vitest';
import { ComponentExitError, createWasiSandbox, missingImports, SandboxDeniedError } from './wasi-sandbox.js';

type Fn = (...args: unknown[]) => unknown;
const ns = (imports: Record<string, object>, name: string) => imports[name] as Record<string, Fn>;

describe('WASI sandbox', () => {
  const wasi = createWasiSandbox();

  it('gives no environment, arguments or cwd', () => {
    const env = ns(wasi, 'wasi:cli/environment');
    expect(env.getEnvironment!()).toEqual([]);
    expect(env.getArguments!()).toEqual([]);
    expect(env.initialCwd!()).toBeUndefined();
  });

  it('preopens no directory', () => {
    expect(ns(wasi, 'wasi:filesystem/preopens').getDirectories!()).toEqual([]);
  });

  it('turns exit into an error and refuses stdin', () => {
    expect(() => ns(wasi, 'wasi:cli/exit').exit!({ tag: 'err' })).toThrow(ComponentExitError);
    expect(() => ns(wasi, 'wasi:cli/stdin').getStdin!()).toThrow(SandboxDeniedError);
  });

  it('denies outgoing HTTP', () => {
    expect(() => ns(wasi, 'wasi:http/outgoing-handler').handle!()).toThrow();
  });

  it('lists the imports it cannot satisfy', () => {
    expect(missingImports(['wasi:cli/stderr', 'greentic:host/secrets', 'wasi:io/streams'], wasi)).toEqual([
      'greentic:host/secrets',
    ]);
  });
});
