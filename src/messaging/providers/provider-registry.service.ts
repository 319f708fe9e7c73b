import { Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { DiscoveryService, Reflector } from '@nestjs/core';
import { ConfigError, UnknownTenancyError } from '../../common/errors.js';
import { BundleRegistry } from '../../tenancy/bundle-registry.service.js';
import type { ChannelBinding } from '../../tenancy/bundle.types.js';
import { unknownChannelProviders } from './channel-providers.js';
import { GREENTIC_PROVIDER, type MessagingProvider } from './messaging-provider.js';

/** Every `@GreenticProvider` in the application, by id. */
@Injectable()
export class ProviderRegistry implements OnModuleInit {
  private readonly logger = new Logger(ProviderRegistry.name);
  private readonly providers = new Map<string, MessagingProvider>();

  constructor(
    private readonly discovery: DiscoveryService,
    private readonly reflector: Reflector,
    private readonly bundles: BundleRegistry,
  ) {}

  onModuleInit(): void {
    for (const wrapper of this.discovery.getProviders()) {
      const { instance, metatype } = wrapper;
      if (!instance || !metatype) continue;
      const id = this.reflector.get<string | undefined>(GREENTIC_PROVIDER, metatype);
      if (!id) continue;
      if (this.providers.has(id)) throw new Error(`two messaging providers registered as '${id}'`);
      this.providers.set(id, instance as MessagingProvider);
    }
    this.logger.log({ providers: [...this.providers.keys()] }, 'messaging providers registered');
    // Every provider instance exists by now (custom modules included): a channel bound to none of
    // them would start ready and answer every message 404, so it stops the start instead.
    const unknown = unknownChannelProviders(this.bundles.bundle, this.providers.keys());
    if (unknown.length > 0) {
      throw new ConfigError(`invalid bundle:\n  ${unknown.map((u) => u.message).join('\n  ')}`, {
        channels: unknown.map(({ message: _m, ...u }) => u),
      });
    }
  }

  get(id: string): MessagingProvider {
    const p = this.providers.get(id);
    if (!p) throw new UnknownTenancyError('provider', id);
    return p;
  }

  /** Whether the channel's provider has anywhere to send its replies (MessagingProvider.sends). */
  sends(channel: ChannelBinding): boolean {
    const p = this.providers.get(channel.provider);
    return p?.sends ? p.sends(channel) : true;
  }

  ids(): string[] {
    return [...this.providers.keys()];
  }
}
