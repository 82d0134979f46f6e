/**
 * The operations port (docs/ARCHITECTURE.md "The API", `metricsPort`): `GET /metrics` in the
 * Prometheus text format.
 * A bare node:http server apart from the API, so a scrape never queues behind ingest traffic in
 * fastify's hooks and the API's `GET /metrics` (aggregate queries) keeps its meaning.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Logger } from './logger.ts'

export interface OperationsServer {
  /** e.g. http://127.0.0.1:9464 */
  readonly url: string
  /** The address the kernel bound, from server.address(), e.g. 127.0.0.1:9464 or [::]:9464 */
  readonly address: string
  close(): Promise<void>
}

export async function startOperationsServer(options: {
  readonly host: string
  readonly port: number
  /** The exposition (ServerMetrics.render, or a cluster primary's sum over its workers). */
  readonly metrics: { render(): Promise<{ contentType: string; body: string }> }
  readonly logger: Logger
}): Promise<OperationsServer> {
  const { metrics, logger } = options
  const server: Server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0]
    if (path === '/metrics' && (request.method === 'GET' || request.method === 'HEAD')) {
      metrics.render().then(
        ({ contentType, body }) => {
          response.writeHead(200, { 'content-type': contentType })
          response.end(request.method === 'HEAD' ? undefined : body)
        },
        (error) => {
          logger.error({ err: error }, 'MetricsScrapeFailed')
          json(response, 500, { error: `metrics collection failed: ${(error as Error).message}` })
        },
      )
      return
    }
    json(response, 404, {
      error: `no route ${request.method} ${path}; the operations port serves GET /metrics`,
    })
  })
  server.keepAliveTimeout = 75_000
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port, options.host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const address = server.address() as AddressInfo
  const host =
    address.address === '0.0.0.0' || address.address === '::'
      ? '127.0.0.1'
      : address.family === 'IPv6'
        ? `[${address.address}]`
        : address.address
  return {
    url: `http://${host}:${address.port}`,
    address: listenAddress(address),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}

/** `host:port` as bound (IPv6 in brackets), for start logs: what the kernel listens on, not a guess. */
export function listenAddress(address: AddressInfo): string {
  return address.family === 'IPv6'
    ? `[${address.address}]:${address.port}`
    : `${address.address}:${address.port}`
}

function json(response: import('node:http').ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { 'content-type': 'application/json; charset=utf-8' })
  response.end(JSON.stringify(body))
}
