/**
 * The access log (`accessLog`): one `HttpRequestServed` line at info per API request, on the
 * ingest handler (ingest-route.ts) and the fastify routes alike, with the same fields. Off, nothing
 * here runs: the ingest handler tests one boolean per answer, and the fastify hook is not added.
 */
import type { IncomingMessage } from 'node:http'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { Logger } from '../telemetry/logger.ts'
import { contentLengthOf } from './admission.ts'

export interface AccessEntry {
  readonly method: string
  /** The path without the query string (a query may carry what a log should not keep). */
  readonly path: string
  readonly status: number
  readonly ms: number
  /** Body bytes answered. */
  readonly bytes: number
  /** Body bytes the request declared (Content-Length); absent for a chunked body. */
  readonly received: number | undefined
  readonly reqId: string
  /** The client as `trustProxy` resolves it (client-ip.ts), else the socket's peer. */
  readonly client: string
}

export function logAccess(logger: Logger, entry: AccessEntry): void {
  logger.info(entry, 'HttpRequestServed')
}

export function pathOf(url: string | undefined): string {
  if (url === undefined) return ''
  const q = url.indexOf('?')
  return q < 0 ? url : url.slice(0, q)
}

export function receivedOf(request: IncomingMessage): number | undefined {
  return contentLengthOf(request.headers['content-length'])
}

/**
 * The fastify routes' access log: an onResponse hook, added only when `accessLog` is on. The
 * ingest routes, hijacked and answered by the ingest handler, log there instead.
 */
export function registerAccessLog(
  app: FastifyInstance,
  logger: Logger,
  isIngest: (request: FastifyRequest) => boolean,
): void {
  app.addHook('onResponse', async (request, reply) => {
    if (isIngest(request)) return
    logAccess(logger, {
      method: request.method,
      path: pathOf(request.url),
      status: reply.statusCode,
      ms: Math.round(reply.elapsedTime * 1000) / 1000,
      bytes: Number(reply.getHeader('content-length') ?? 0),
      received: receivedOf(request.raw),
      reqId: String(request.id),
      client: request.ip,
    })
  })
}
