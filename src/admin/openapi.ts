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
  const json = JSON.stringify(document);
  app
    .getHttpAdapter()
    .get('/openapi.json', (_req: unknown, reply: { type(t: string): { send(body: string): unknown } }) => {
      reply.type('application/json; charset=utf-8').send(json);
    });
  return document;
}
