/**
 * The digests of the components a tenant's packs use, which the worker pool warms a tenant's
 * workers with. PacksModule provides it (packs sit above wasm, so the pool asks rather than
 * imports); without it, workers start cold.
 */
export interface TenantComponentDigests {
  componentDigests(tenantId: string): string[];
}

export const TENANT_COMPONENT_DIGESTS = Symbol('TENANT_COMPONENT_DIGESTS');
