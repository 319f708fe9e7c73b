import { effectiveComponentId, effectiveOperation, type FlowV1Routing } from '../../flows/flow-v1.js';
import { sha256Hex } from '../../packs/format/hash.js';
import type { VerifiedPackV1 } from '../../packs/verify/pack-v1-verifier.js';

/** Left-aligned columns. */
function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  '));
}

function routingText(r: FlowV1Routing): string {
  switch (r.kind) {
    case 'next':
      return `next → ${r.nodeId}`;
    case 'branch':
      return `branch ${Object.entries(r.onStatus)
        .map(([k, v]) => `${k}→${v}`)
        .join(' ')}${r.default ? ` default→${r.default}` : ''}`;
    case 'custom':
      return `custom ${JSON.stringify(r.value)}`;
    default:
      return r.kind;
  }
}

/** `greentic-pack inspect` of a pack-v1 archive: pack, signatures, entrypoint, flows with their nodes, components, SBOM. */
export function inspectPackV1(
  v: VerifiedPackV1,
  o: { digest: string; size: number; json: boolean },
): string[] {
  const m = v.manifest;
  if (o.json) {
    return [
      JSON.stringify(
        {
          format: 'pack-v1',
          digest: o.digest,
          size: o.size,
          manifest: m,
          defaultEntrypoint: v.defaultEntrypoint ?? null,
          components: [...v.components.values()].map((c) => ({
            id: c.id,
            version: c.version,
            path: c.path,
            sha256: sha256Hex(c.bytes),
          })),
          sbom: v.sbom,
          signatures: m.signatures.map((s) => ({ key_id: s.key_id, algorithm: s.algorithm })),
          signer: v.signature.signer ?? null,
          warnings: v.warnings,
        },
        null,
        2,
      ),
    ];
  }
  const out: string[] = [];
  out.push(`pack        ${m.pack_id}@${m.version} (pack-v1, ${m.kind}${m.name ? `, ${m.name}` : ''})`);
  out.push(`publisher   ${m.publisher || '(none)'}`);
  out.push(`digest      ${o.digest} (${o.size} B)`);
  out.push(
    `entrypoint  ${v.defaultEntrypoint ? `${v.defaultEntrypoint.flow} → ${v.defaultEntrypoint.node}` : '(no messaging flow with nodes)'}`,
  );
  out.push(
    m.signatures.length > 0
      ? `signature   ${m.signatures.map((s) => `${s.algorithm}, key_id ${s.key_id}`).join('; ')}`
      : 'signature   none (unsigned)',
  );
  out.push(`extensions  ${Object.keys(m.extensions ?? {}).join(', ') || '(none)'}`);
  for (const w of v.warnings) out.push(`warning     ${w}`);
  out.push('', 'flows');
  out.push(
    ...table([
      ['  id', 'kind', 'tags', 'entrypoints', 'nodes'],
      ...m.flows.map((f) => [
        `  ${f.id}`,
        f.kind,
        f.tags.join(',') || '-',
        Object.entries(f.flow.entrypoints)
          .map(([k, x]) => `${k}=${typeof x === 'string' ? x : JSON.stringify(x)}`)
          .join(',') || '-',
        String(f.flow.nodes.length),
      ]),
    ]),
  );
  for (const f of m.flows) {
    if (f.flow.nodes.length === 0) continue;
    out.push('', `flow ${f.id}`);
    out.push(
      ...table([
        ['  node', 'component', 'operation', 'routing'],
        ...f.flow.nodes.map((n) => [
          `  ${n.id}`,
          effectiveComponentId(n) ?? n.component.id,
          effectiveOperation(n) ?? '(default)',
          routingText(n.routing),
        ]),
      ]),
    );
  }
  out.push('', 'components');
  if (v.components.size === 0) out.push('  (none)');
  else
    out.push(
      ...table([
        ['  id', 'version', 'file', 'sha256'],
        ...[...v.components.values()].map((c) => [
          `  ${c.id}`,
          c.version,
          c.path,
          sha256Hex(c.bytes).slice(0, 16),
        ]),
      ]),
    );
  out.push('', `sbom (${v.sbomFile})`);
  out.push(
    ...table([
      ['  path', 'size', 'media type', 'blake3'],
      ...v.sbom.map((e) => [`  ${e.path}`, String(e.size), e.media_type, e.hash_blake3.slice(0, 16)]),
    ]),
  );
  return out;
}
