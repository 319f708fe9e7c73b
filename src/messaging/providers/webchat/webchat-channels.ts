import { Injectable } from '@nestjs/common';
import { GreenticError, UnknownTenancyError } from '../../../common/errors.js';
import { RunnerConfig } from '../../../config/runner-config.js';
import { BundleRegistry, type ResolvedChannel } from '../../../tenancy/bundle-registry.service.js';

export interface ChannelCoords {
  tenant: string;
  env: string;
  team: string;
  channel: string;
}

/** Which WebChat channel a Direct Line route or stream URL names; only `provider: webchat` channels serve it. */
@Injectable()
export class WebChatChannels {
  constructor(
    private readonly registry: BundleRegistry,
    private readonly config: RunnerConfig,
  ) {}

  resolve(c: ChannelCoords): ResolvedChannel {
    const resolved = this.registry.resolveChannel(c);
    if (resolved.channel.provider !== 'webchat') throw new UnknownTenancyError('provider', 'webchat');
    return resolved;
  }

  /** The channel of the plain `/v3/directline` routes (GREENTIC_WEBCHAT_DEFAULT_CHANNEL). */
  resolveDefault(): ResolvedChannel {
    const parts = this.config.GREENTIC_WEBCHAT_DEFAULT_CHANNEL.split('/');
    if (parts.length !== 4) {
      throw new GreenticError(
        'NotFound',
        'no default WebChat channel configured (GREENTIC_WEBCHAT_DEFAULT_CHANNEL)',
        404,
      );
    }
    const [tenant, env, team, channel] = parts as [string, string, string, string];
    return this.resolve({ tenant, env, team, channel });
  }
}
