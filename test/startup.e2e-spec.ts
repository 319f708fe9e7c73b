import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createApp } from '../src/bootstrap.js';
import { writeTempBundle } from './support/temp-bundle.js';

describe('start-up refuses bad configuration with a precise message', () => {
  it('names the environment key and what was expected', async () => {
    await expect(createApp({ config: { GREENTIC_BUS: 'kafka', LOG_LEVEL: 'silent' } })).rejects.toThrow(
      /GREENTIC_BUS="kafka": must be one of the following values: memory, nats/,
    );
  });

  it('names the bundle file, line and key', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'greentic-bad-'));
    const file = path.join(dir, 'bundle.yaml');
    writeFileSync(
      file,
      'tenants:\n  demo:\n    envs:\n      dev:\n        teams:\n          default:\n            channels:\n              web: { pack: demo, flow: x }\n',
    );
    await expect(createApp({ config: { GREENTIC_BUNDLE: file, LOG_LEVEL: 'silent' } })).rejects.toThrow(
      `${file}:8:20: key 'tenants.demo.envs.dev.teams.default.channels.web.provider': expected a value (required)`,
    );
  });

  it('names the flow file, line and column of an invalid flow in a pack', async () => {
    const bundle = writeTempBundle({
      packs: [
        {
          id: 'p',
          flows: {
            'bad.ygtc':
              'id: bad\ntype: messaging\nnodes:\n  a:\n    reply: { text: hi }\n    routing:\n      - to: nowhere\n',
          },
        },
      ],
      tenants: { t: { packs: ['p'], channels: { c: { pack: 'p', flow: 'bad' } } } },
    });
    await expect(createApp({ config: { GREENTIC_BUNDLE: bundle, LOG_LEVEL: 'silent' } })).rejects.toThrow(
      /bad\.ygtc:7:\d+: error: .*nowhere/,
    );
  });

  it('refuses a channel bound to a flow its pack does not have', async () => {
    const bundle = writeTempBundle({
      packs: [
        { id: 'p', flows: { 'ok.ygtc': 'id: ok\ntype: messaging\nnodes:\n  a:\n    reply: { text: hi }\n' } },
      ],
      tenants: { t: { packs: ['p'], channels: { c: { pack: 'p', flow: 'missing' } } } },
    });
    await expect(createApp({ config: { GREENTIC_BUNDLE: bundle, LOG_LEVEL: 'silent' } })).rejects.toThrow(
      "channel 't/dev/default/c' is bound to flow 'missing', which pack 'p' does not have (it has: ok)",
    );
  });
});
