// `node --import ./test/support/ts-loader.mjs src/main.ts`: runs the TypeScript sources directly,
// compiled per file by SWC with the same settings as vitest (decorator metadata for Nest DI).
import { register } from 'node:module';

register('./ts-loader-hooks.mjs', import.meta.url);
