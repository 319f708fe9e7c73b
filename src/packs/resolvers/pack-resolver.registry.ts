import { Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { DiscoveryService, Reflector } from '@nestjs/core';
import { FileResolver } from './file.resolver.js';
import { HttpResolver } from './http.resolver.js';
import { OciResolver } from './oci.resolver.js';
import { GREENTIC_PACK_RESOLVER, type PackResolver } from './pack-resolver.js';

/**
 * The built-in resolvers (file, http(s), oci) plus every provider marked `@GreenticPackResolver()`
 * in the application. A discovered resolver for a built-in scheme replaces the built-in one.
 */
@Injectable()
export class PackResolverRegistry implements OnModuleInit {
  private readonly logger = new Logger(PackResolverRegistry.name);
  private resolvers: PackResolver[] = [new FileResolver(), new HttpResolver(), new OciResolver()];
  private discovered = false;

  constructor(
    private readonly discovery: DiscoveryService,
    private readonly reflector: Reflector,
  ) {}

  onModuleInit(): void {
    this.discover();
  }

  /** Runs on first use too: packs load (configureApp) before Nest's init hooks have run. */
  private discover(): void {
    if (this.discovered) return;
    this.discovered = true;
    const found: PackResolver[] = [];
    for (const w of this.discovery.getProviders()) {
      if (!w.instance || !w.metatype) continue;
      if (this.reflector.get<boolean | undefined>(GREENTIC_PACK_RESOLVER, w.metatype))
        found.push(w.instance as PackResolver);
    }
    if (found.length > 0) {
      const custom = new Set(found.flatMap((r) => r.schemes));
      this.resolvers = [...found, ...this.resolvers.filter((r) => !r.schemes.some((s) => custom.has(s)))];
    }
    this.logger.log({ schemes: this.resolvers.flatMap((r) => r.schemes) }, 'pack resolvers registered');
  }

  all(): readonly PackResolver[] {
    this.discover();
    return this.resolvers;
  }
}
