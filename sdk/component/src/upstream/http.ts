import * as client from 'greentic:http/http-client@1.0.0';
import { hostCall } from '../errors.js';
import { wireRequest, wrapResponse, type HttpRequest, type HttpResponse } from '../http-types.js';

export type { HttpRequest, HttpResponse } from '../http-types.js';

const EMPTY = new Uint8Array(0);

export const http = {
  fetch(req: HttpRequest): HttpResponse {
    const res = hostCall('greentic:http/http-client', () => client.send(wireRequest(req), undefined));
    return wrapResponse(req.url, res.status, res.headers, res.body ?? EMPTY);
  },
};
