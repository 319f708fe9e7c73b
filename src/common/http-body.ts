import type { FastifyInstance, FastifyRequest } from 'fastify';

/** Webhook routes get the exact bytes: providers verify signatures over them before parsing. */
const RAW_PREFIX = '/webhooks/';
const JSON_TYPE = /^application\/([\w.+-]+\+)?json\b/i;

/**
 * One body parser for every route, capped at `limitBytes` (Fastify answers 413 past it, before the
 * body is buffered whole): webhooks keep the raw Buffer whatever the content type; elsewhere JSON is
 * parsed (with prototype-poisoning protection) and other types are left unparsed.
 */
export function installBodyParsing(fastify: FastifyInstance, limitBytes: number): void {
  // Fastify's own JSON parser: errors are 400s, `__proto__` and `constructor` keys are refused.
  const json = fastify.getDefaultJsonParser('error', 'error');
  fastify.removeAllContentTypeParsers();
  fastify.addContentTypeParser(
    '*',
    { parseAs: 'buffer', bodyLimit: limitBytes },
    (req: FastifyRequest, body: Buffer | string, done: (err: Error | null, body?: unknown) => void) => {
      if (req.url.startsWith(RAW_PREFIX)) return done(null, body);
      const type = req.headers['content-type'] ?? '';
      if (!JSON_TYPE.test(type) || body.length === 0) return done(null, undefined);
      json(req, body.toString(), done);
    },
  );
}
