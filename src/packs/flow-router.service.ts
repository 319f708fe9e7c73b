import { Injectable, Logger } from '@nestjs/common';
import { FlowExecutionError } from '../common/errors.js';
import { PackRegistry, type LoadedPack } from './pack-registry.service.js';
import type { FlowSnapshot } from '../core/session-store.js';
import type { ResolvedChannel } from '../tenancy/bundle-registry.service.js';

export interface FlowRoute {
  pack: LoadedPack;
  flowId: string;
  /** The parked snapshot to resume, or null when the flow starts afresh. */
  snapshot: FlowSnapshot | null;
  /** Set when a parked session could not resume (its pack version is gone). */
  notice?: string;
}

/**
 * Picks the pack version and flow for a message: the channel's binding, or the version a parked
 * session started on while the registry still holds it.
 */
@Injectable()
export class FlowRouter {
  private readonly logger = new Logger(FlowRouter.name);

  constructor(private readonly packs: PackRegistry) {}

  route(resolved: ResolvedChannel, snapshot: FlowSnapshot | null): FlowRoute {
    const { tenant, channel } = resolved;
    const current = this.packs.current(tenant.tenantId, channel.pack);
    if (!current) {
      throw new FlowExecutionError(
        'pack_not_loaded',
        `pack '${channel.pack}' is not loaded for tenant '${tenant.tenantId}'`,
      );
    }
    if (snapshot && snapshot.packId === channel.pack) {
      if (snapshot.packVersion === current.version)
        return { pack: current, flowId: snapshot.flowId, snapshot };
      const held = this.packs.version(tenant.tenantId, channel.pack, snapshot.packVersion);
      if (held) return { pack: held, flowId: snapshot.flowId, snapshot };
      this.logger.warn(
        { tenant: tenant.tenantId, pack: channel.pack, from: snapshot.packVersion, to: current.version },
        'parked session restarted: its pack version is no longer held',
      );
      return {
        pack: current,
        flowId: channel.flow,
        snapshot: null,
        notice: 'This conversation was updated to a new version, so it starts again.',
      };
    }
    return { pack: current, flowId: channel.flow, snapshot: null };
  }
}
