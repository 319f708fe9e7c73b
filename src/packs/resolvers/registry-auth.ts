import { PackError } from '../../common/errors.js';
import {
  credentialHelperFor,
  readRegistryCredentials,
  type CredentialLookup,
  type RegistryCredentials,
} from './registry-credentials.js';

/**
 * Registry authentication as the OCI distribution spec and Docker's token spec define it: a
 * request answered 401 carries `WWW-Authenticate`; `Basic` asks for the credentials on the
 * request, `Bearer realm=…,service=…,scope=…` for a token fetched from `realm` (with the
 * credentials as Basic auth when there are any: anonymous pulls get a token too). The header that
 * worked is reused for the repository's next requests; a 401 then starts over.
 */

export class RegistryAuthError extends PackError {}

interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** `Bearer realm="https://a/token",service="reg",scope="repository:x:pull,push"`. */
export function parseChallenge(header: string): Challenge | undefined {
  const m = /^\s*([A-Za-z]+)\s*(.*)$/s.exec(header);
  if (!m) return undefined;
  const params: Record<string, string> = {};
  for (const p of m[2]!.matchAll(/([A-Za-z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))/g))
    params[p[1]!.toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : p[3]!;
  return { scheme: m[1]!.toLowerCase(), params };
}

function basic(c: RegistryCredentials): string {
  return `Basic ${Buffer.from(`${c.username}:${c.password}`, 'utf8').toString('base64')}`;
}

export class RegistryAuth {
  private readonly headers = new Map<string, string>();

  constructor(
    private readonly lookup: CredentialLookup = (registry) => readRegistryCredentials(registry),
    private readonly timeoutMs = 30_000,
    private readonly helperOf: (registry: string) => string | undefined = (registry) =>
      credentialHelperFor(registry),
  ) {}

  /** The Authorization header that last worked for this repository, if any. */
  headerFor(registry: string, repository: string): string | undefined {
    return this.headers.get(`${registry}/${repository}`);
  }

  /** Forgets a header the registry no longer takes. */
  forget(registry: string, repository: string): void {
    this.headers.delete(`${registry}/${repository}`);
  }

  /** The message for a request still refused with the header a challenge led to. */
  refused(registry: string, what: string): RegistryAuthError {
    const c = this.lookup(registry);
    return c
      ? new RegistryAuthError(
          'registry_unauthorized',
          `${what}: registry ${registry} refused user '${c.username}' (credentials from ${c.source}): check them with greentic-pack login ${registry}`,
          { registry },
        )
      : this.missing(registry, what);
  }

  private missing(registry: string, what: string): RegistryAuthError {
    const helper = this.helperOf(registry);
    return new RegistryAuthError(
      'registry_unauthorized',
      `${what}: registry ${registry} requires credentials and none are stored for it${helper ? ` (Docker's config.json leaves them to the credential helper '${helper}', which this tool does not run)` : ''}: run greentic-pack login ${registry} -u <user> --password-stdin`,
      { registry },
    );
  }

  /** Answers a 401: the Authorization header its challenge asks for (throws when it cannot be met). */
  async answer(registry: string, repository: string, res: Response, what: string): Promise<string> {
    await res.body?.cancel();
    const challenge = parseChallenge(res.headers.get('www-authenticate') ?? '');
    const creds = this.lookup(registry);
    let header: string;
    if (challenge?.scheme === 'bearer' && challenge.params['realm']) {
      header = `Bearer ${await this.token(registry, challenge.params, creds, what)}`;
    } else if (challenge?.scheme === 'basic' || challenge === undefined) {
      if (!creds) throw this.missing(registry, what);
      header = basic(creds);
    } else {
      throw new RegistryAuthError(
        'registry_unauthorized',
        `${what}: registry ${registry} asks for '${challenge.scheme}' authentication, which this client does not speak (Basic, Bearer)`,
        { registry },
      );
    }
    this.headers.set(`${registry}/${repository}`, header);
    return header;
  }

  private async token(
    registry: string,
    params: Record<string, string>,
    creds: RegistryCredentials | undefined,
    what: string,
  ): Promise<string> {
    let url: URL;
    try {
      url = new URL(params['realm']!);
    } catch {
      throw new RegistryAuthError(
        'registry_unauthorized',
        `${what}: registry ${registry} names an invalid token realm '${params['realm']}'`,
      );
    }
    if (params['service']) url.searchParams.set('service', params['service']);
    for (const s of (params['scope'] ?? '').split(' ').filter(Boolean)) url.searchParams.append('scope', s);
    let res: Response;
    try {
      res = await fetch(url, {
        headers: creds ? { authorization: basic(creds) } : {},
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (e) {
      throw new PackError(
        'pack_fetch_failed',
        `${what}: token service ${url.origin}: ${(e as Error).message}`,
      );
    }
    if (res.status === 401 || res.status === 403) {
      await res.body?.cancel();
      throw creds ? this.refused(registry, what) : this.missing(registry, what);
    }
    if (res.status !== 200) {
      const body = (await res.text().catch(() => '')).slice(0, 200);
      throw new PackError(
        'pack_fetch_failed',
        `${what}: token service ${url.origin} answered ${res.status}${body ? `: ${body}` : ''}`,
      );
    }
    const json = (await res.json().catch(() => undefined)) as
      { token?: unknown; access_token?: unknown } | undefined;
    const token = json?.token ?? json?.access_token;
    if (typeof token !== 'string' || token === '')
      throw new PackError('pack_fetch_failed', `${what}: token service ${url.origin} gave no token`);
    return token;
  }
}
