/**
 * dred's HTTP side: the unix socket (root only) and the optional TLS listener serve one request
 * handler, which reads a bounded JSON body, matches a route of the API document, validates the body
 * against it and answers with the handler's result or `{ error, code, message }`.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { dreError, isDreError } from '../core/errors.js';
import { Api } from './api.js';
import { errorBody, httpStatusOf } from './errors.js';
import type { EventHub } from './events.js';
import { handlers, type Context } from './handlers.js';

/** Bodies are small JSON objects; anything larger is refused before it is read to the end. */
export const MAX_BODY_BYTES = 1 << 20;
/** A slow client gets this long to send its headers, and its whole request. */
const HEADERS_TIMEOUT_MS = 10_000;
const REQUEST_TIMEOUT_MS = 30_000;
const MAX_CONNECTIONS = 1024;
const SSE_KEEPALIVE_MS = 15_000;

export interface ServeOptions {
  api: Api;
  ctx: Context;
  events: EventHub;
  /** Refuses a request before routing (the TLS listener's trust check); returns a reason to refuse. */
  refuse?: (req: IncomingMessage) => string | undefined;
}

function send(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function sendError(res: ServerResponse, e: unknown, status?: number): void {
  const body = errorBody(e);
  send(res, status ?? httpStatusOf(body.error), body);
}

/** The request's JSON body (an object), `{}` when there is none. */
function readBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > MAX_BODY_BYTES) return reject(tooLarge());
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        req.removeAllListeners('data');
        reject(tooLarge());
      } else chunks.push(c);
    });
    req.on('error', reject);
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      if (text.trim() === '') return resolve({});
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch (e) {
        return reject(dreError('DRE_ERR_INVALID_ARGUMENT', `the request body is not JSON: ${(e as Error).message}`, e));
      }
      if (typeof value !== 'object' || value === null || Array.isArray(value))
        return reject(dreError('DRE_ERR_INVALID_ARGUMENT', 'the request body must be a JSON object'));
      resolve(value as Record<string, unknown>);
    });
  });
}

const tooLarge = () => dreError('DRE_ERR_REQUEST_TOO_LONG', `the request body is larger than ${MAX_BODY_BYTES} bytes`);

function streamEvents(req: IncomingMessage, res: ServerResponse, events: EventHub): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
  res.write(': dred events\n\n');
  let id = 0;
  const unsubscribe = events.subscribe((e) => res.write(`id: ${++id}\nevent: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`));
  const keepalive = setInterval(() => res.write(': keepalive\n\n'), SSE_KEEPALIVE_MS);
  const end = () => {
    clearInterval(keepalive);
    unsubscribe();
  };
  req.socket.on('close', end);
  res.on('error', end);
}

/** Handles one request; every failure becomes an error body, and the server goes on serving. */
export async function handle(req: IncomingMessage, res: ServerResponse, opts: ServeOptions): Promise<void> {
  try {
    const refused = opts.refuse?.(req);
    if (refused) return sendError(res, dreError('DRE_ERR_PERMISSION_DENIED', refused));
    // Split by hand: URL would resolve `..` segments, and a `..` name must reach the name check.
    const [pathname, search = ''] = (req.url ?? '/').split(/\?(.*)/s);
    const query = new URLSearchParams(search);
    const method = req.method ?? 'GET';
    const m = opts.api.match(method, pathname);
    if (m === undefined) return sendError(res, dreError('DRE_ERR_INVALID_ARGUMENT', `no route ${method} ${pathname}`), 404);
    if (m === 'method') return sendError(res, dreError('DRE_ERR_INVALID_ARGUMENT', `${method} is not allowed on ${pathname}`), 405);
    if (m.route.operationId === 'getEvents') return streamEvents(req, res, opts.events);
    const body = await readBody(req);
    // A create's config is checked against its kind's schema first: that error names the field.
    if (m.route.operationId === 'createContainer' && body.config !== undefined) {
      const cv = opts.api.schema(m.params.kind === 'sys' ? 'SysConfig' : 'AppConfig');
      if (!cv(body.config)) throw dreError('DRE_ERR_INVALID_ARGUMENT', `createContainer: ${opts.api.errorsText(cv, 'config')}`);
    }
    const v = m.route.validateBody;
    if (v && !v(body)) throw dreError('DRE_ERR_INVALID_ARGUMENT', `${m.route.operationId}: ${opts.api.errorsText(v, 'body')}`);
    const reply = await handlers[m.route.operationId]({ params: m.params, query, body }, opts.ctx);
    if ('operation' in reply) send(res, 202, reply.operation);
    else send(res, 200, reply.body);
  } catch (e) {
    if (!isDreError(e)) process.stderr.write(`dred: ${req.method} ${req.url}: ${(e as Error)?.stack ?? e}\n`);
    const tooLong = isDreError(e) && e.errName === 'DRE_ERR_REQUEST_TOO_LONG' && /request body/.test(e.message);
    sendError(res, e, tooLong ? 413 : undefined);
    if (tooLong) req.socket.end();
  }
}

/** Applies the limits every listener shares: header and request timeouts, a connection cap. */
export function limit<S extends Server>(server: S): S {
  server.headersTimeout = HEADERS_TIMEOUT_MS;
  server.requestTimeout = REQUEST_TIMEOUT_MS;
  server.maxConnections = MAX_CONNECTIONS;
  server.keepAliveTimeout = 5_000;
  return server;
}

export function unixServer(opts: ServeOptions): Server {
  return limit(createServer((req, res) => void handle(req, res, opts)));
}

/** Every operationId of the document has a handler and the reverse (checked at start and in the tests). */
export function checkHandlers(api: Api): void {
  const ids = new Set(api.routes.map((r) => r.operationId));
  const missing = [...ids].filter((id) => id !== 'getEvents' && !(id in handlers));
  const extra = Object.keys(handlers).filter((id) => !ids.has(id));
  if (missing.length || extra.length)
    throw new Error(`api/openapi.json and the handlers disagree: no handler for ${missing.join(', ') || '-'}; not in the document: ${extra.join(', ') || '-'}`);
}
