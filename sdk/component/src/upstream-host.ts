/**
 * Upstream Greentic's host interfaces, for `--world upstream` projects: session state as bytes
 * (`greentic:state/state-store@1.0.0`), secrets (`greentic:secrets-store/secrets-store@1.0.0`)
 * and HTTP (`greentic:http/http-client@1.0.0`). Import only what the project's world imports:
 * each wrapper lives in its own module so the bundle keeps only the imports used.
 *
 *   import { state } from '@greentic/component-sdk/upstream-host/state';
 */
export { state } from './upstream/state.js';
export { secrets } from './upstream/secrets.js';
export { http } from './upstream/http.js';
