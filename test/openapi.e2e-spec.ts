import SwaggerParser from '@apidevtools/swagger-parser';
import { validate as readmeValidate } from '@readme/openapi-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApp, type RunnerApp } from '../src/bootstrap.js';
import { writeTempBundle } from './support/temp-bundle.js';

/**
 * `/openapi.json` is a valid OpenAPI 3 document of the whole HTTP surface, and `/docs` serves
 * Swagger UI from local assets. Two maintained validators: swagger-parser checks OpenAPI 3
 * documents against the schema only; @readme/openapi-parser also checks path parameters and
 * operation ids. The error-shape and security rules are the project's, checked here.
 */
interface Parameter {
  name: string;
  in: string;
  required?: boolean;
}
interface Operation {
  parameters?: Parameter[];
  requestBody?: { content: Record<string, { schema: Record<string, unknown> }> };
  responses: Record<string, { content?: Record<string, { schema?: { $ref?: string } }> }>;
  security?: Record<string, string[]>[];
}
interface Document {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, unknown>; securitySchemes: Record<string, unknown> };
}

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

let app: RunnerApp;
let url: string;
let doc: Document;

beforeAll(async () => {
  const bundle = writeTempBundle({
    packs: [
      { id: 'p', flows: { 'ok.ygtc': 'id: ok\ntype: messaging\nnodes:\n  a:\n    reply: { text: hi }\n' } },
    ],
    tenants: { t: { packs: ['p'], channels: { c: { pack: 'p', flow: 'ok' } } } },
  });
  ({ app, url } = await startApp({ config: { GREENTIC_BUNDLE: bundle, LOG_LEVEL: 'silent', PORT: 0 } }));
  const res = await fetch(`${url}/openapi.json`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  doc = (await res.json()) as Document;
});

afterAll(async () => {
  await app?.close();
});

function operations(): { path: string; method: string; op: Operation }[] {
  return Object.entries(doc.paths).flatMap(([path, item]) =>
    Object.entries(item).map(([method, op]) => ({ path, method, op })),
  );
}

describe('/openapi.json', () => {
  it('validates against the OpenAPI 3 schema (swagger-parser)', async () => {
    expect(doc.openapi).toMatch(/^3\.0\./);
    // validate() dereferences in place: give it a copy.
    await expect(SwaggerParser.validate(structuredClone(doc) as never)).resolves.toBeTruthy();
  });

  it('validates with @readme/openapi-parser, without errors or warnings', async () => {
    const r = await readmeValidate(structuredClone(doc) as never, {
      validate: { errors: { colorize: false } },
    });
    expect(r.valid ? [] : r.errors.map((e) => e.message)).toEqual([]);
    expect(r.warnings.map((w) => w.message)).toEqual([]);
  });

  it('holds only OpenAPI methods, and declares every path parameter of every operation', () => {
    const ops = operations();
    expect(ops.length).toBeGreaterThan(25);
    for (const { path, method, op } of ops) {
      expect(METHODS, `${method} ${path}`).toContain(method);
      const names = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
      const declared = (op.parameters ?? []).filter((p) => p.in === 'path');
      expect(declared.map((p) => p.name).sort(), `${method} ${path}`).toEqual([...names].sort());
      for (const p of declared) expect(p.required, `${method} ${path} {${p.name}}`).toBe(true);
    }
  });

  it('describes the webhook door: GET challenge, POST with the providers bodies, errors in the error shape', () => {
    const item = doc.paths['/webhooks/{provider}/{tenant}/{env}/{team}/{channel}']!;
    expect(Object.keys(item).sort()).toEqual(['get', 'head', 'post']);
    expect(item['get']!.requestBody).toBeUndefined();
    const body = item['post']!.requestBody!.content['application/json']!.schema as {
      oneOf: { $ref: string }[];
    };
    expect(body.oneOf.map((s) => s.$ref)).toContain('#/components/schemas/GenericWebhookMessage');
    const generic = doc.components.schemas['GenericWebhookMessage'] as { required: string[] };
    expect(generic.required.sort()).toEqual(['text', 'userId']);
    expect(Object.keys(item['post']!.responses)).toEqual(
      expect.arrayContaining(['200', '202', '400', '404', '413', '429', '503']),
    );
  });

  it('gives every 4xx/5xx JSON answer the project error shape', () => {
    expect(doc.components.schemas['ErrorResponse']).toMatchObject({
      properties: { error: { $ref: '#/components/schemas/ErrorDetail' } },
    });
    let errors = 0;
    for (const { path, method, op } of operations()) {
      expect(Object.keys(op.responses).length, `${method} ${path}`).toBeGreaterThan(0);
      for (const [status, r] of Object.entries(op.responses)) {
        if (Number(status) < 400 || !r.content) continue;
        // Pack reload and readiness answer their own report body with 422/503.
        if (path === '/admin/packs/reload' || path === '/health/ready' || path === '/health') continue;
        errors++;
        expect(r.content['application/json']?.schema?.$ref, `${method} ${path} ${status}`).toBe(
          '#/components/schemas/ErrorResponse',
        );
      }
    }
    expect(errors).toBeGreaterThan(50);
  });

  it('puts every admin route, and only those, behind the admin token', () => {
    expect(doc.components.securitySchemes['admin-token']).toMatchObject({ type: 'apiKey', in: 'header' });
    for (const { path, method, op } of operations()) {
      const admin = (op.security ?? []).some((s) => 'admin-token' in s);
      expect(admin, `${method} ${path}`).toBe(path.startsWith('/admin/'));
      if (admin)
        expect(Object.keys(op.responses), `${method} ${path}`).toEqual(
          expect.arrayContaining(['401', '403']),
        );
    }
  });
});

describe('/docs', () => {
  it('serves Swagger UI with its assets from this process', async () => {
    const page = await fetch(`${url}/docs`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    const html = await page.text();
    const scripts = [...html.matchAll(/<script src="([^"]+)"/g)].map((m) => m[1]!);
    expect(scripts.some((s) => s.endsWith('swagger-ui-bundle.js'))).toBe(true);
    // Nothing from a CDN: every script and stylesheet is a relative URL answered by the runner.
    const links = [...html.matchAll(/<link [^>]*href="([^"]+)"/g)].map((m) => m[1]!);
    for (const u of [...scripts, ...links]) expect(u, u).not.toMatch(/^(https?:)?\/\//);
    for (const s of scripts) {
      const asset = await fetch(new URL(s, `${url}/docs`));
      expect(asset.status, s).toBe(200);
      expect(asset.headers.get('content-type'), s).toMatch(/javascript/);
    }
    const css = await fetch(new URL('./docs/swagger-ui.css', `${url}/docs`));
    expect(css.status).toBe(200);
    const init = await (await fetch(`${url}/docs/swagger-ui-init.js`)).text();
    expect(init).toContain('/webhooks/{provider}/{tenant}/{env}/{team}/{channel}');
  });
});
