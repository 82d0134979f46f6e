/**
 * The operations port (docs/ARCHITECTURE.md "The API", `metricsPort`): `GET /metrics` in the
 * Prometheus text format, `/health` and `/ready` (the API port's answers), and the live dashboard
 * at `/` with the feed it reads (`/api/stats`, `/api/stats/stream`) and its event queries
 * (`/api/events/top`, `/api/events/series`) — README "Operations port".
 * A bare node:http server apart from the API, so a scrape never queues behind ingest traffic in
 * fastify's hooks and the API's `GET /metrics` (aggregate queries) keeps its meaning.
 *
 * Protection: the port binds loopback by default. When API keys are configured and it is bound
 * elsewhere, the feed and the event queries need a key (as the API's routes do); the page's files,
 * `/metrics`, `/health` and `/ready` stay open, as before (the page asks for the key itself).
 */
import { readFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { isSpillwayError, spillwayError } from '../errors.ts'
import type { Readiness } from '../http/app.ts'
import { ApiKeys, presentedKey } from '../http/auth.ts'
import { publicMessage, publicReadiness, readinessLogger } from '../http/public-errors.ts'
import type { ExploreBackend } from '../query/types.ts'
import type { Logger } from '../telemetry/logger.ts'
import { isAsset, serveAsset } from './assets.ts'
import { parseSeriesQuery, parseTopQuery } from './explore-query.ts'
import { Feed, type SinkDetail } from './feed.ts'

export interface OperationsServer {
  /** e.g. http://127.0.0.1:9464 */
  readonly url: string
  /** The address the kernel bound, from server.address(), e.g. 127.0.0.1:9464 or [::]:9464 */
  readonly address: string
  /** The dashboard's feed (sampling once a second while the port is open). */
  readonly feed: Feed
  close(): Promise<void>
}

export interface OperationsOptions {
  readonly host: string
  readonly port: number
  /** The exposition (ServerMetrics.render, or a cluster primary's sum over its workers). */
  readonly metrics: { render(): Promise<{ contentType: string; body: string }> }
  readonly logger: Logger
  /** What the API port's `/ready` answers; without it `/ready` is not served here. */
  readonly readiness?: () => Promise<Readiness>
  /** The delivery thread's per-sink details (last error, phase) for the feed. */
  readonly sinkDetails?: () => Promise<readonly SinkDetail[]>
  /**
   * The query backend of the API's `GET /metrics` (the delivery host, a cluster's primary's);
   * its ExploreBackend methods, when it has them, answer the event queries.
   */
  readonly explore?: object
  /** The API keys of the API port (`apiKeys`, `apiKeysFile`): needed here off loopback. */
  readonly apiKeys?: { readonly inline: string; readonly file: string }
  /** Sampling interval of the feed (tests); default 1 s. */
  readonly sampleEveryMs?: number
}

const RETRY_AFTER_SECONDS = '1'
const VERSION = (() => {
  try {
    return String(JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version)
  } catch {
    return 'unknown'
  }
})()
/**
 * Live streams at once. Each holds a socket and is written to every second; a page keeps one open,
 * so a few dozen is plenty, and more (an open port, a loop in a script) is refused, not served.
 */
export const MAX_FEED_STREAMS = 32
/** A stream whose client stopped reading is closed once this much waits unsent in the process. */
const MAX_STREAM_BACKLOG_BYTES = 4 * 1024 * 1024

const ROUTES =
  'GET /metrics, /health, /ready, / (dashboard), /api/stats, /api/stats/stream, /api/events/top, /api/events/series'

export async function startOperationsServer(options: OperationsOptions): Promise<OperationsServer> {
  const { metrics, logger } = options
  const feed = new Feed({
    render: () => metrics.render(),
    ...(options.sinkDetails && { sinkDetails: options.sinkDetails }),
    version: VERSION,
    ...(options.sampleEveryMs !== undefined && { everyMs: options.sampleEveryMs }),
    onError: (error) => logger.debug({ err: error }, 'DashboardSampleFailed'),
  })
  const apiKeys = options.apiKeys ? new ApiKeys({ ...options.apiKeys, logger }) : undefined
  let keyed = false
  const streams = new Set<ServerResponse>()
  const logNotReady = readinessLogger(logger)
  let requestIds = 0

  const handle = async (request: IncomingMessage, response: ServerResponse, url: URL): Promise<void> => {
    const path = url.pathname
    if (path === '/metrics') {
      const { contentType, body } = await metrics.render().catch((error) => {
        logger.error({ err: error }, 'MetricsScrapeFailed')
        throw spillwayError(
          'SPW_ERR_OPS_METRICS_FAILED',
          `metrics collection failed: ${(error as Error).message}`,
        )
      })
      response.writeHead(200, { 'content-type': contentType })
      response.end(request.method === 'HEAD' ? undefined : body)
      return
    }
    if (path === '/health') return json(response, 200, { status: 'healthy' })
    if (path === '/ready' && options.readiness) {
      const state = await options.readiness()
      if (state.ok) return json(response, 200, { status: 'ready', ...publicReadiness(state) })
      logNotReady(`ops-${++requestIds}`, state)
      response.setHeader('retry-after', RETRY_AFTER_SECONDS)
      return json(response, 503, { status: 'not ready', ...publicReadiness(state) })
    }
    if (isAsset(path)) return serveAsset(path, request, response)
    if (!path.startsWith('/api/')) throw notFound(request, path)

    if (keyed) apiKeys!.authenticate(presentedKey(request.headers))
    if (path === '/api/stats') {
      const since = url.searchParams.get('since')
      if (since !== null && !/^\d{1,15}$/.test(since))
        throw spillwayError(
          'SPW_ERR_QUERY_INVALID',
          `since must be Unix milliseconds, got "${since.slice(0, 40)}"`,
        )
      return json(response, 200, feed.stats(since === null ? undefined : Number(since)))
    }
    if (path === '/api/stats/stream') return stream(request, response)
    if (path === '/api/events/top') {
      const query = parseTopQuery(url.searchParams)
      const rows = await explore('topEvents').topEvents!(query)
      return json(response, 200, { ...query, data: rows })
    }
    if (path === '/api/events/series') {
      const query = parseSeriesQuery(url.searchParams)
      const rows = await explore('series').series!(query)
      return json(response, 200, { ...query, data: rows })
    }
    throw notFound(request, path)
  }

  const explore = (method: keyof ExploreBackend): Partial<ExploreBackend> => {
    const backend = options.explore as Partial<ExploreBackend> | undefined
    if (typeof backend?.[method] !== 'function')
      throw spillwayError(
        'SPW_ERR_QUERY_NO_STORE',
        'no store answers event queries on this node (sinks duckdb, clickhouse or memory, or a query store, answer them)',
      )
    return backend
  }

  /** SSE: the whole feed first, then one message a second with the newest sample. */
  const stream = (request: IncomingMessage, response: ServerResponse) => {
    if (streams.size >= MAX_FEED_STREAMS) {
      response.setHeader('retry-after', RETRY_AFTER_SECONDS)
      return json(response, 503, {
        error: `${MAX_FEED_STREAMS} live streams are open already (the most this port serves); retry later, or poll GET /api/stats`,
      })
    }
    response.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      'x-accel-buffering': 'no',
    })
    response.write(`retry: 2000\nevent: stats\ndata: ${JSON.stringify(feed.stats())}\n\n`)
    streams.add(response)
    const unsubscribe = feed.subscribe((sample) => {
      // A client that stopped reading would make the process hold every second's message for it.
      if (response.writableLength > MAX_STREAM_BACKLOG_BYTES) return void response.destroy()
      response.write(`event: stats\ndata: ${JSON.stringify(feed.stats(sample.t - 1))}\n\n`)
    })
    request.socket.setTimeout(0)
    response.once('close', () => {
      unsubscribe()
      streams.delete(response)
    })
  }

  const server: Server = createServer((request, response) => {
    let url: URL
    try {
      url = new URL(request.url ?? '/', 'http://operations')
    } catch {
      return json(response, 400, { error: 'the request URL cannot be parsed' })
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.setHeader('allow', 'GET, HEAD')
      return json(response, 405, {
        error: `method ${request.method} not allowed; the operations port serves ${ROUTES}`,
      })
    }
    handle(request, response, url).catch((error) => answerError(response, error, logger))
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
  keyed = apiKeys?.enabled === true && !isLoopback(address.address)
  feed.start()
  const host =
    address.address === '0.0.0.0' || address.address === '::'
      ? '127.0.0.1'
      : address.family === 'IPv6'
        ? `[${address.address}]`
        : address.address
  return {
    url: `http://${host}:${address.port}`,
    address: listenAddress(address),
    feed,
    close: () =>
      new Promise<void>((resolve) => {
        feed.stop()
        for (const s of streams) s.end()
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

/** Whether a bound address only takes connections from this machine. */
export function isLoopback(address: string): boolean {
  return /^127\./.test(address) || address === '::1' || /^::ffff:127\./.test(address)
}

function notFound(request: IncomingMessage, path: string) {
  return spillwayError(
    'SPW_ERR_OPS_NOT_FOUND',
    `no route ${request.method} ${path}; the operations port serves ${ROUTES}`,
  )
}

function answerError(response: ServerResponse, error: unknown, logger: Logger): void {
  if (response.headersSent) {
    response.destroy()
    return
  }
  const status = isSpillwayError(error) ? error.statusCode : 500
  const generic = publicMessage(error)
  if (generic !== undefined || status >= 500) logger.warn({ err: error }, 'OperationsRequestFailed')
  if (status === 401) response.setHeader('www-authenticate', 'Bearer realm="spillway"')
  if (status === 503) response.setHeader('retry-after', RETRY_AFTER_SECONDS)
  json(response, status, {
    error:
      generic ?? (status >= 500 && !isSpillwayError(error) ? 'internal error' : (error as Error).message),
  })
}

function json(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
  })
  response.end(JSON.stringify(body))
}
