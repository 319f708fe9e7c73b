import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { WebSocketServer, type WebSocket } from 'ws';
import { BadRequestError, GreenticError } from '../../../common/errors.js';
import type { ResolvedChannel } from '../../../tenancy/bundle-registry.service.js';
import { channelKey, DirectLineService, parseWatermark } from './directline.service.js';
import type { ActivitySet } from './directline.types.js';
import { WebChatChannels } from './webchat-channels.js';

const CHANNEL_STREAM =
  /^\/webchat\/([A-Za-z0-9_-]+)\/([A-Za-z0-9_-]+)\/([A-Za-z0-9_-]+)\/([A-Za-z0-9_-]+)\/v3\/directline\/conversations\/([^/]+)\/stream$/;
const DEFAULT_STREAM = /^\/v3\/directline\/conversations\/([^/]+)\/stream$/;
const HEARTBEAT_MS = 25_000;
const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
};

/** The conversation id of a stream URL, unescaped; a malformed escape is the client's error. */
function decodeConversationId(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new BadRequestError('malformed percent-encoding in the conversation id', { conversationId: raw });
  }
}

/**
 * The Direct Line `streamUrl`: a WebSocket per client pushing `{ activities, watermark }` as
 * activities are appended (user echoes and bot replies), after replaying what the client has not
 * seen. Upgrades on other paths are left to whoever else listens.
 */
@Injectable()
export class DirectLineStream implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(DirectLineStream.name);
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 });
  private server?: Server;
  private heartbeat?: NodeJS.Timeout;
  private readonly alive = new WeakSet<WebSocket>();

  constructor(
    private readonly adapterHost: HttpAdapterHost,
    private readonly dl: DirectLineService,
    private readonly channels: WebChatChannels,
  ) {}

  onApplicationBootstrap(): void {
    const server = this.adapterHost.httpAdapter?.getHttpServer() as Server | undefined;
    if (!server) return;
    this.server = server;
    server.on('upgrade', this.onUpgrade);
    this.heartbeat = setInterval(() => {
      for (const ws of this.wss.clients) {
        if (!this.alive.has(ws)) {
          ws.terminate();
          continue;
        }
        this.alive.delete(ws);
        ws.ping();
      }
    }, HEARTBEAT_MS);
    this.heartbeat.unref();
  }

  onApplicationShutdown(): void {
    this.server?.off('upgrade', this.onUpgrade);
    if (this.heartbeat) clearInterval(this.heartbeat);
    for (const ws of this.wss.clients) ws.close(1001, 'server shutting down');
    this.wss.close();
  }

  get connections(): number {
    return this.wss.clients.size;
  }

  private readonly onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const m = CHANNEL_STREAM.exec(url.pathname);
    const d = m ? undefined : DEFAULT_STREAM.exec(url.pathname);
    if (!m && !d) return;
    void this.accept(req, socket, head, url, m, d);
  };

  private async accept(
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    url: URL,
    m: RegExpExecArray | null,
    d: RegExpExecArray | null | undefined,
  ): Promise<void> {
    let resolved: ResolvedChannel | undefined;
    const rawId = (m ? m[5] : d![1])!;
    let conversationId = rawId;
    try {
      // Inside the try: a malformed escape (`%E0%A4%A`) throws, and this runs detached from the
      // upgrade event, so an escaped throw would be an unhandled rejection ending the process.
      conversationId = decodeConversationId(rawId);
      resolved = m
        ? this.channels.resolve({ tenant: m[1]!, env: m[2]!, team: m[3]!, channel: m[4]! })
        : this.channels.resolveDefault();
      const watermark = parseWatermark(url.searchParams.get('watermark') ?? undefined);
      await this.dl.authorizeStream(
        resolved,
        conversationId,
        url.searchParams.get('t') ?? undefined,
        req.headers.authorization,
      );
      this.wss.handleUpgrade(
        req,
        socket,
        head,
        (ws) => void this.serve(ws, resolved!, conversationId, watermark),
      );
    } catch (e) {
      const status = e instanceof GreenticError ? e.httpStatus : 500;
      const reason = (e as Error).message;
      this.logger.warn(
        {
          tenant: resolved?.tenant.tenantId ?? m?.[1],
          channel: resolved?.channel.id ?? m?.[4],
          conversationId,
          status,
          reason,
        },
        'webchat stream refused',
      );
      socket.end(
        `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`,
      );
    }
  }

  private async serve(
    ws: WebSocket,
    resolved: ResolvedChannel,
    conversationId: string,
    watermark: number | undefined,
  ): Promise<void> {
    this.alive.add(ws);
    ws.on('pong', () => this.alive.add(ws));
    const send = (set: ActivitySet) => {
      if (ws.readyState === ws.OPEN) ws.send(this.dl.json(resolved, conversationId, set));
    };
    // Listen before reading the backlog, so nothing appended in between is lost; dedupe by watermark.
    const pending: ActivitySet[] = [];
    let live = false;
    const key = channelKey(resolved);
    const off = this.dl.store.listen(key, conversationId, (set) => (live ? send(set) : pending.push(set)));
    ws.on('close', off);
    ws.on('error', off);
    try {
      const backlog = await this.dl.store.since(key, conversationId, watermark);
      if (backlog.activities.length > 0) send(backlog);
      for (const set of pending) if (Number(set.watermark) > Number(backlog.watermark)) send(set);
      live = true;
    } catch (e) {
      this.logger.warn(
        { tenant: resolved.tenant.tenantId, conversationId, err: (e as Error).message },
        'webchat stream closed: conversation gone',
      );
      ws.close(1011, 'conversation gone');
    }
  }
}
