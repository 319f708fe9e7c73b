export * from '../core/tenant-ctx.js';
export * from '../core/message-ctx.js';
export * from './bundle.types.js';
export { BundleRegistry, type ResolvedChannel, type TenancyCoordinates } from './bundle-registry.service.js';
export { TenantGuard, RESOLVED_TENANCY } from './tenant.guard.js';
export { CurrentChannel } from './tenancy.decorators.js';
export { TenancyModule } from './tenancy.module.js';
export { loadBundle, parseBundle } from './bundle.loader.js';
