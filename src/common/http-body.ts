import type { FastifyInstance, FastifyRequest } from 'fastify';
import { checkJsonShape, type JsonLimits } from './bounded-json.js';

/** Webhook routes get the exact bytes: providers verify signatures over them before parsing. */
const RAW_PREFIX = '/webhooks/';
const JSON_TYPE = /^application\/([\w.+-]+\+)?json\b/i;

export interface BodyLimits extends JsonLimits {
  maxBodyBytes: number;
}

/**
 * One body parser for every route, capped at `maxBodyBytes` (Fastify answers 413 past it, before
 * the body is buffered whole): webhooks keep the raw Buffer whatever the content type (their
 * providers parse it within the tenant's JSON limits); elsewhere JSON is checked against the JSON
 * limits, then parsed (with prototype-poisoning protection), and other types are left unparsed.
 */
export function installBodyParsing(fastify: FastifyInstance, limits: BodyLimits): void {
  // Fastify's own JSON parser: errors are 400s, `__proto__` and `constructor` keys are refused.
  const json = fastify.getDefaultJsonParser('error', 'error');
  fastify.removeAllContentTypeParsers();
  fastify.addContentTypeParser(
    '*',
    { parseAs: 'buffer', bodyLimit: limits.maxBodyBytes },
    (req: FastifyRequest, body: Buffer | string, done: (err: Error | null, body?: unknown) => void) => {
      if (req.url.startsWith(RAW_PREFIX)) return done(null, body);
      const type = req.headers['content-type'] ?? '';
      if (!JSON_TYPE.test(type) || body.length === 0) return done(null, undefined);
      const text = body.toString();
      try {
        // Before the parse: a body too deep for the rest of the request is never built.
        checkJsonShape(text, limits);
      } catch (e) {
        return done(e as Error);
      }
      json(req, text, done);
    },
  );
}
