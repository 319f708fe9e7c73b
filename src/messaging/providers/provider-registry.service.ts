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
  private discovered = false;

  constructor(
    private readonly discovery: DiscoveryService,
    private readonly reflector: Reflector,
    private readonly bundles: BundleRegistry,
  ) {}

  onModuleInit(): void {
    this.discover();
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

  /**
   * Finds the providers once. Also on first use: the bus transport asks which channels send
   * (egress routes) while microservices start, which may come before this module's init hook.
   */
  private discover(): Map<string, MessagingProvider> {
    if (this.discovered) return this.providers;
    for (const wrapper of this.discovery.getProviders()) {
      const { instance, metatype } = wrapper;
      if (!instance || !metatype) continue;
      const id = this.reflector.get<string | undefined>(GREENTIC_PROVIDER, metatype);
      if (!id) continue;
      if (this.providers.has(id)) throw new Error(`two messaging providers registered as '${id}'`);
      this.providers.set(id, instance as MessagingProvider);
    }
    this.discovered = true;
    return this.providers;
  }

  get(id: string): MessagingProvider {
    const p = this.discover().get(id);
    if (!p) throw new UnknownTenancyError('provider', id);
    return p;
  }

  /** Whether the channel's provider has anywhere to send its replies (MessagingProvider.sends). */
  sends(channel: ChannelBinding): boolean {
    const p = this.discover().get(channel.provider);
    return p?.sends ? p.sends(channel) : true;
  }

  ids(): string[] {
    return [...this.discover().keys()];
  }
}
