import type { INestApplication } from '@nestjs/common';
import { DocumentBuilder, SwaggerModule, type OpenAPIObject } from '@nestjs/swagger';
import {
  ADMIN_TOKEN_SCHEME,
  DIRECTLINE_TOKEN_SCHEME,
  ErrorResponse,
  SERVED_METHODS_EXTENSION,
  TENANCY_PARAMS,
  WEBHOOK_BODY_MODELS,
} from '../common/openapi-schemas.js';

/** The methods an OpenAPI 3.0 path item may hold; @nestjs/swagger expands `@All()` to `search` and `query` too. */
const OPENAPI_METHODS = new Set(['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace']);

type Operation = Record<string, unknown> & { summary?: string; requestBody?: unknown };

/**
 * An `@All()` route is expanded to every method; keep the ones its handler serves (the
 * SERVED_METHODS_EXTENSION marker, with a summary per method), and drop methods OpenAPI 3.0
 * does not know anywhere.
 */
function narrowMethods(document: OpenAPIObject): void {
  for (const item of Object.values(document.paths)) {
    const ops = item as Record<string, Operation | undefined>;
    for (const method of Object.keys(ops)) {
      const op = ops[method];
      if (!op || typeof op !== 'object' || method === 'parameters') continue;
      if (!OPENAPI_METHODS.has(method)) {
        delete ops[method];
        continue;
      }
      const served = op[SERVED_METHODS_EXTENSION] as Record<string, string> | undefined;
      if (!served) continue;
      if (!(method in served)) {
        delete ops[method];
        continue;
      }
      delete op[SERVED_METHODS_EXTENSION];
      op.summary = served[method];
      if (method !== 'post') delete op.requestBody;
    }
  }
}

interface Parameter {
  name: string;
  in: string;
  required?: boolean;
  description?: string;
  schema?: unknown;
}

/**
 * Every `{name}` of a path template declared as a path parameter of each of its operations.
 * Routes that read their parameters off the request (to spare a pipe run per parameter) and
 * routes inherited from a base controller (decorators there would apply to every subclass's
 * prefix) carry no parameter metadata of their own.
 */
function declarePathParams(document: OpenAPIObject): void {
  for (const [template, item] of Object.entries(document.paths)) {
    const names = [...template.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]!);
    for (const [method, op] of Object.entries(item as Record<string, Operation>)) {
      if (!OPENAPI_METHODS.has(method)) continue;
      const params = ((op['parameters'] as Parameter[] | undefined) ?? []).filter(
        (p) => p.in !== 'path' || names.includes(p.name),
      );
      const declared = new Set(params.filter((p) => p.in === 'path').map((p) => p.name));
      const missing = names.filter((n) => !declared.has(n));
      op['parameters'] = [
        ...missing.map((name) => ({
          name,
          in: 'path',
          required: true,
          schema: { type: 'string' },
          ...(TENANCY_PARAMS[name] ?? {}),
        })),
        ...params,
      ];
    }
  }
}

/** The document, built by @nestjs/swagger from the controllers' route and schema decorators. */
export function buildOpenApiDocument(app: INestApplication): OpenAPIObject {
  const config = new DocumentBuilder()
    .setTitle('Greentic runner')
    .setDescription(
      'Hosts conversational and event flows whose steps are WebAssembly components. Errors answer ' +
        '`{"error":{"code":…,"message":…}}` (ErrorResponse). Admin routes need the x-admin-token ' +
        'header (or a loopback caller when no token is configured).',
    )
    .setVersion(process.env['npm_package_version'] ?? '0.1.0')
    .addApiKey(
      { type: 'apiKey', in: 'header', name: 'x-admin-token', description: 'GREENTIC_ADMIN_TOKEN' },
      ADMIN_TOKEN_SCHEME,
    )
    .addBearerAuth(
      { type: 'http', scheme: 'bearer', description: 'Direct Line channel secret or generated token' },
      DIRECTLINE_TOKEN_SCHEME,
    )
    .build();
  const document = SwaggerModule.createDocument(app, config, {
    extraModels: [ErrorResponse, ...WEBHOOK_BODY_MODELS],
  });
  narrowMethods(document);
  declarePathParams(document);
  return document;
}

/**
 * `/openapi.json` (the document) and `/docs` (Swagger UI, its assets served from the installed
 * swagger-ui-dist through @fastify/static: no CDN, works offline). Built once at start-up.
 */
export function setupOpenApi(app: INestApplication): OpenAPIObject {
  const document = buildOpenApiDocument(app);
  SwaggerModule.setup('docs', app, document, {
    jsonDocumentUrl: 'openapi.json',
    yamlDocumentUrl: 'openapi.yaml',
    customSiteTitle: 'Greentic runner API',
  });
  return document;
}
