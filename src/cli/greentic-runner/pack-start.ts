import { randomBytes } from 'node:crypto';
import { Logger } from '@nestjs/common';
import { envVarName } from '../../secrets/backends/env-secrets.backend.js';
import { mapSecretName } from '../../secrets/secrets.service.js';
import {
  PACK_ENV,
  PACK_TEAM,
  PACK_TENANT,
  PACK_WEBCHAT_CHANNEL,
  packOnlyBundle,
  packUrls,
  readPackEntrypoint,
} from './pack-bundle.js';

export interface PackStartIO {
  out(line: string): void;
  err(line: string): void;
}

/** `0.0.0.0` and `::` listen everywhere; a browser reaches them as localhost. */
function reachable(url: string): string {
  return url.replace(/^http:\/\/(0\.0\.0\.0|::|\[::\])(?=:)/, 'http://127.0.0.1');
}

/**
 * `greentic-runner start --pack FILE`: reads the pack, builds the pack-only bundle in memory, starts the
 * runner on it, and prints where to talk to it. The Direct Line secret of the `webchat` channel comes from
 * the env secrets backend (GREENTIC_SECRET_LOCAL_DEV_DIRECTLINE_SECRET); unset, a random one is made for
 * this process: the chat page gets its tokens from the runner, so nobody needs to know it.
 */
export async function startPackRunner(
  packPath: string,
  config: Record<string, string | undefined>,
  io: PackStartIO,
): Promise<void> {
  const pack = await readPackEntrypoint(packPath);
  const secretVar = envVarName(
    mapSecretName({ tenantId: PACK_TENANT, envId: PACK_ENV }, 'directline_secret'),
  );
  process.env[secretVar] ||= randomBytes(32).toString('base64url');
  io.err(
    'greentic-runner: warning: dev trust policy in use: unsigned packs and packs signed by untrusted keys run (start --pack is for development)',
  );
  const [{ startApp }, { installGracefulShutdown }] = await Promise.all([
    import('../../bootstrap.js'),
    import('../../health/graceful-shutdown.js'),
  ]);
  const { app, url } = await startApp({
    config: {
      // Direct Line clients that use the plain `/v3/directline` base reach this pack's chat too.
      ...(process.env['GREENTIC_WEBCHAT_DEFAULT_CHANNEL']
        ? {}
        : {
            GREENTIC_WEBCHAT_DEFAULT_CHANNEL: `${PACK_TENANT}/${PACK_ENV}/${PACK_TEAM}/${PACK_WEBCHAT_CHANNEL}`,
          }),
      ...config,
    },
    bundle: packOnlyBundle(pack),
  });
  installGracefulShutdown(app);
  const urls = packUrls(reachable(url));
  new Logger('Main').log(
    { url, pack: pack.id, version: pack.version, flow: pack.flow },
    `greentic runner listening on ${url}`,
  );
  io.out(
    `serving pack ${pack.id}@${pack.version} (flow ${pack.flow}): chat page ${urls.page} | webhook POST ${urls.webhook}`,
  );
}
