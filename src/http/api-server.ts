/**
 * The API's node:http server: the ingest routes go to the fast handler (ingest-route.ts), every
 * other request to fastify. It also answers `Expect: 100-continue` itself (an oversized or refused
 * ingest request gets its answer at once, not `100 Continue`), bounds the open connections, and
 * applies the timeouts against slow clients (node answers 408; its check runs on a timer, 30 s by
 * default, so the timer follows the smaller timeout).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { Config } from '../config/schema.ts'
import { type IngestHandler, ingestRouteOf } from './ingest-route.ts'

/** The answer to a connection over `maxConnections`, written before it is closed. */
const CONNECTIONS_FULL = (() => {
  const body = '{"error":"server has too many open connections (maxConnections); retry after 1 s"}'
  return Buffer.from(
    'HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json; charset=utf-8\r\n' +
      `Retry-After: 1\r\nConnection: close\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
  )
})()
const refusedSockets = new WeakSet<Socket>()

export function apiServer(
  config: Config,
  fastifyHandler: (req: IncomingMessage, res: ServerResponse) => void,
  fast: () => IngestHandler | undefined,
): Server {
  const headersTimeout = Math.min(config.headersTimeoutMs, config.requestTimeoutMs)
  const server = createServer(
    {
      requestTimeout: config.requestTimeoutMs,
      headersTimeout,
      keepAliveTimeout: config.keepAliveTimeoutMs,
      connectionsCheckingInterval: Math.max(50, Math.min(30_000, Math.floor(headersTimeout / 4))),
    },
    (req, res) => {
      if (refusedSockets.has(req.socket)) return
      const route = ingestRouteOf(req.method, req.url)
      const handler = route && fast()
      if (handler) handler.handle(req, res, route)
      else fastifyHandler(req, res)
    },
  )
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    if (refusedSockets.has(req.socket)) return
    const route = ingestRouteOf(req.method, req.url)
    const handler = route && fast()
    if (handler) return handler.handle(req, res, route, true)
    res.writeContinue()
    fastifyHandler(req, res)
  })
  let open = 0
  server.on('connection', (socket: Socket) => {
    open++
    socket.once('close', () => open--)
    if (open > config.maxConnections) {
      refusedSockets.add(socket)
      socket.end(CONNECTIONS_FULL)
    }
  })
  server.setTimeout(60_000)
  return server
}
