import type { INestApplication } from '@nestjs/common';
import { DocumentBuilder, SwaggerModule, type OpenAPIObject } from '@nestjs/swagger';

/**
 * `/openapi.json`: the OpenAPI 3 document of the whole HTTP surface (webhooks, health, metrics,
 * admin), built by @nestjs/swagger from the controllers' route metadata, once at start-up.
 */
export function setupOpenApi(app: INestApplication): OpenAPIObject {
  const config = new DocumentBuilder()
    .setTitle('Greentic runner')
    .setDescription(
      'Hosts conversational and event flows whose steps are WebAssembly components. ' +
        'Admin routes need the x-admin-token header (or a loopback caller when no token is configured).',
    )
    .setVersion(process.env['npm_package_version'] ?? '0.1.0')
    .addApiKey(
      { type: 'apiKey', in: 'header', name: 'x-admin-token', description: 'GREENTIC_ADMIN_TOKEN' },
      'admin-token',
    )
    .build();
  const document = SwaggerModule.createDocument(app, config);
  app
    .getHttpAdapter()
    .get(
      '/openapi.json',
      (
        _req: unknown,
        res: { setHeader(k: string, v: string): void; end(body: string): void; statusCode: number },
      ) => {
        res.statusCode = 200;
        res.setHeader('content-type', 'application/json; charset=utf-8');
        res.end(JSON.stringify(document));
      },
    );
  return document;
}
