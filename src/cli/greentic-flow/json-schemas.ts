import { BUNDLE_SCHEMA } from '../../tenancy/bundle.schema.js';
import { YGTC_FLOW_SCHEMA } from '../../flows/ygtc.schema.js';

/**
 * The JSON Schemas the CLIs print for editors (`greentic-flow schema [--bundle]`,
 * `greentic-runner schema [--flow]`). The bundle's is the one the bundle loader validates with,
 * wrapped with the ids an editor needs, so the two cannot drift.
 */
export const BUNDLE_JSON_SCHEMA = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: 'urn:greentic-runner:bundle.schema.json',
  title: 'Greentic runner bundle',
  description:
    'Tenants, environments, teams and channels, the packs each tenant serves, limits, trust, timers (docs/operations.md).',
  ...BUNDLE_SCHEMA,
} as const;

export type SchemaKind = 'flow' | 'bundle';

export function jsonSchemaText(kind: SchemaKind): string {
  return JSON.stringify(kind === 'bundle' ? BUNDLE_JSON_SCHEMA : YGTC_FLOW_SCHEMA, null, 2) + '\n';
}
