/**
 * Component loading at application start: the transpile cache makes a second start transpile
 * nothing (counted, not timed), and a component of neither Greentic world stops the start with
 * the exports it has.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../src/bootstrap.js';
import { COMPONENT_RUNTIME, type ComponentRuntime } from '../src/core/component-runtime.js';
import { fixturePath } from './fixtures/fixture-paths.js';
import { writeTempBundle } from './support/temp-bundle.js';

const ECHO_FLOW = `id: echo
type: messaging
nodes:
  call:
    component.exec:
      component: echo
      operation: execute
    routing:
      - to: answer
  answer:
    reply: { text: "{{call.payload}}" }
`;

let cacheDir: string;

beforeAll(async () => {
  cacheDir = await mkdtemp(join(tmpdir(), 'greentic-cache-'));
});

afterAll(() => rm(cacheDir, { recursive: true, force: true }));

describe('transpile cache across starts', () => {
  it('a second start loads the same pack without transpiling', async () => {
    const bundle = writeTempBundle({
      packs: [
        {
          id: 'p',
          flows: { 'echo.ygtc': ECHO_FLOW },
          components: {
            echo: fixturePath('echo'),
            counter: fixturePath('counter'),
            'js-v06': fixturePath('js-v06'),
          },
        },
      ],
      tenants: { t: { packs: ['p'], channels: { c: { pack: 'p', flow: 'echo' } } } },
    });
    const config = { GREENTIC_BUNDLE: bundle, GREENTIC_CACHE_DIR: cacheDir, LOG_LEVEL: 'silent', PORT: 0 };

    const first = await createApp({ config });
    const s1 = first.get<ComponentRuntime>(COMPONENT_RUNTIME).stats?.() as {
      transpiles: number;
      cache: { diskHits: number };
    };
    await first.close();
    expect(s1).toMatchObject({ transpiles: 3, cache: { diskHits: 0 } });

    const second = await createApp({ config });
    const s2 = second.get<ComponentRuntime>(COMPONENT_RUNTIME).stats?.() as {
      transpiles: number;
      cache: { diskHits: number };
    };
    await second.close();
    expect(s2).toMatchObject({ transpiles: 0, cache: { diskHits: 3 } });
  });
});

describe('world detection at load', () => {
  it('refuses a component that exports neither world, naming the exports it has', async () => {
    const bundle = writeTempBundle({
      packs: [{ id: 'p', flows: { 'echo.ygtc': ECHO_FLOW }, components: { echo: fixturePath('neither') } }],
      tenants: { t: { packs: ['p'], channels: { c: { pack: 'p', flow: 'echo' } } } },
    });
    await expect(createApp({ config: { GREENTIC_BUNDLE: bundle, LOG_LEVEL: 'silent' } })).rejects.toThrow(
      "component 'echo' implements neither greentic:component@0.1.0 (export execute) nor greentic:component@0.6.0 (export node); it exports: add, answer",
    );
  });
});
