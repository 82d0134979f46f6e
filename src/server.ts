/**
 * The composition root of `serve`: recover the WAL and start delivery (pipeline.ts), then open
 * the API — only then, so a 202 is never given before recovery finished. Shutdown runs the same
 * way backwards: stop accepting, flush the WAL, drain delivery, exit.
 */
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import type { Config } from './config/schema.ts'
import { DeadLetterStore, deadLetterLimits } from './delivery/dead-letter.ts'
import type { DeliveryHost } from './delivery/host.ts'
import { Admission } from './http/admission.ts'
import { buildApp, type Readiness } from './http/app.ts'
import { DelayController } from './http/delay.ts'
import { Ingestor } from './http/ingest.ts'
import type { TokenSource } from './http/rate-limit.ts'
import { openPipeline, type Pipeline } from './pipeline.ts'
import type { ExploreBackend, QueryBackend } from './query/types.ts'
import type { Logger } from './telemetry/logger.ts'
import { type MetricSources, ServerMetrics } from './telemetry/metrics.ts'
import { listenAddress, type OperationsServer, startOperationsServer } from './telemetry/operations-server.ts'
import { damageSummary } from './wal/damage.ts'
import type { WalWriter } from './wal/writer.ts'

export interface RunningServer {
  readonly app: FastifyInstance
  readonly wal: WalWriter
  readonly delivery: DeliveryHost
  /** The bound API address, e.g. http://127.0.0.1:8080 */
  readonly url: string
  /** The operations port (Prometheus `GET /metrics`), e.g. http://127.0.0.1:9464 */
  readonly metricsUrl: string
  readonly metrics: ServerMetrics
  readonly admission: Admission
  /** Stop accepting, flush, drain delivery (bounded by shutdownTimeoutMs). */
  close(): Promise<void>
}

export async function startServer(config: Config, logger: Logger): Promise<RunningServer> {
  const pipeline = await openPipeline(config, logger)
  const { delivery, wal } = pipeline
  let api: Api
  try {
    api = await openApi({
      config,
      logger,
      wal,
      walBacklogBytes: pipeline.backlogBytes,
      deliveredPosition: pipeline.deliveredPosition,
      sources: pipeline.metricSources,
      query: delivery,
      dependencies: () => pipelineReadiness(pipeline, config),
    })
  } catch (error) {
    // An option only the API checks (e.g. a bad trustProxy): undo the pipeline, or its delivery
    // thread and lock would keep the process alive after the error.
    await pipeline.abort()
    throw error
  }
  const { app, metrics, admission } = api

  let operations: OperationsServer | undefined
  let address: string
  try {
    operations = await startOperationsServer({
      host: config.metricsHost,
      port: config.metricsPort,
      metrics,
      logger,
      // The dashboard's sources (README "Operations port"): /ready, sink details, event queries.
      readiness: api.readiness,
      sinkDetails: async () => (await delivery.stats()).sinks,
      explore: delivery,
      apiKeys: { inline: config.apiKeys, file: config.apiKeysFile },
    })
    await app.listen({ port: config.httpPort, host: config.host })
    address = listenAddress(app.server.address() as AddressInfo)
  } catch (error) {
    // A port in use: undo the start, so the process can exit with the error.
    await operations?.close()
    await app.close()
    await pipeline.abort()
    throw error
  }
  // `address` and `metricsAddress` are what the kernel bound (0.0.0.0 is every interface); the
  // URLs are for a client on this machine.
  const url = localUrl(`http://${address}`)
  const metricsUrl = operations.url
  logger.info(
    {
      url,
      address,
      metricsUrl,
      metricsAddress: operations.address,
      sinks: config.sinks,
      ack: config.ack,
      dataDir: config.dataDir,
      workers: 1,
    },
    'ServerStarted',
  )

  let closing: Promise<void> | undefined
  const close = () => {
    closing ??= (async () => {
      await api.close()
      await pipeline.stop()
      // Last: the operations port stays up while the drain runs, so it can be watched.
      await operations.close()
      pipeline.release()
      logger.info('ServerStopped')
    })()
    return closing
  }
  return { app, wal, delivery, url, metricsUrl, metrics, admission, close }
}

/** A listen address as a URL a client on this machine can use. */
export function localUrl(address: string): string {
  return address.replace('0.0.0.0', '127.0.0.1').replace('[::]', '127.0.0.1')
}

export interface ApiOptions {
  readonly config: Config
  readonly logger: Logger
  /** The WAL the API appends to: the node's, or a cluster worker's shard. */
  readonly wal: WalWriter
  /** Bytes durable but not yet delivered (admission's `wal_backlog` bound). */
  readonly walBacklogBytes: () => number
  /** A position that grows as delivery drains (admission estimates the drain rate from it). */
  readonly deliveredPosition: () => number
  /** The metric sources beyond the API's own (the pipeline's, or none in a cluster worker). */
  readonly sources: Omit<MetricSources, 'queuedEvents' | 'l1Keys' | 'admission'>
  readonly query: QueryBackend & ExploreBackend
  /** Readiness beyond the API's own (closing, overload): the sinks, the WAL, the workers. */
  readonly dependencies: () => Promise<Readiness>
  readonly limiter?: TokenSource
}

export interface Api {
  readonly app: FastifyInstance
  readonly ingestor: Ingestor
  readonly admission: Admission
  readonly metrics: ServerMetrics
  /** What `/ready` answers (the operations port answers the same). */
  readonly readiness: () => Promise<Readiness>
  /** Refuses new requests (503), then closes the listener once in-flight requests are answered. */
  close(): Promise<void>
}

/**
 * The HTTP API over a WAL: admission, the ingestor, the routes, the request metrics. `serve` runs
 * one over the node's WAL; each worker of `serve --workers N` runs one over its shard.
 */
export async function openApi(options: ApiOptions): Promise<Api> {
  const { config, logger, wal } = options
  let ingestor: Ingestor | undefined
  // Shedding on the event loop's delay (http/delay.ts), one controller per process.
  const delay =
    config.admissionTargetDelayMs > 0
      ? new DelayController({ targetMs: config.admissionTargetDelayMs }).start()
      : undefined
  const admission = new Admission(
    {
      maxPendingBytes: config.maxPendingBytes,
      maxWalBacklogBytes: config.maxWalBacklogBytes,
      queueSize: config.queueSize,
    },
    {
      queuedEvents: () => ingestor?.pendingEvents ?? 0,
      walBacklogBytes: options.walBacklogBytes,
      deliveredPosition: options.deliveredPosition,
      ...(delay && { delay }),
    },
  )
  const metrics = new ServerMetrics({
    ...options.sources,
    queuedEvents: () => ingestor?.pendingEvents ?? 0,
    l1Keys: () => ingestor?.l1Size ?? 0,
    admission: () => admission.state(),
  })
  const deadLetters = new DeadLetterStore(join(config.dataDir, 'deadletter'), {
    source: 'intake',
    limits: deadLetterLimits(config),
  })
  ingestor = new Ingestor(wal, config, deadLetters, metrics)
  let open = true
  const readiness = async (): Promise<Readiness> => {
    if (!open) return { ok: false, error: 'shutting down' }
    const walFailure = await walWriteFailure(wal)
    if (walFailure) return { ok: false, error: walFailure.error, details: { wal: walFailure } }
    const overload = admission.overload()
    if (overload) {
      const { bound, value, limit, retryAfterSeconds } = overload
      return {
        ok: false,
        error: overload.message,
        details: { admission: { bound, value, limit, retryAfterSeconds } },
      }
    }
    return options.dependencies()
  }
  const app = await buildApp({
    config,
    ingestor,
    query: options.query,
    logger,
    admission,
    metrics,
    ...(options.limiter && { limiter: options.limiter }),
    readiness,
  })
  const api = ingestor
  return {
    app,
    ingestor,
    admission,
    metrics,
    readiness,
    close: async () => {
      open = false
      api.close()
      delay?.stop()
      await app.close()
    },
  }
}

/**
 * What a node needs to take events and deliver them, one entry per dependency: the WAL (its
 * backlog against `maxWalBacklogBytes`), each sink (ping and breaker), and the shared dedup layer
 * (shown, never required: without it delivery goes on).
 */
export async function pipelineReadiness(pipeline: Pipeline, config: Config): Promise<Readiness> {
  const sinks = await pipeline.delivery.ready()
  // Skipped WAL damage leaves the node ready (it works); the details say how much and where it is kept.
  const damage = await damageSummary(join(config.dataDir, 'wal'), pipeline.state)
  // The node's WAL: under `--workers N` the merger writes it, so the API's own check misses it.
  const walFailure = await walWriteFailure(pipeline.wal)
  const details: Record<string, unknown> = {
    wal: {
      ok: true,
      backlogBytes: pipeline.backlogBytes(),
      limitBytes: config.maxWalBacklogBytes,
      ...(damage && { damage }),
      ...walFailure,
    },
    sinks: sinks.sinks,
    ...(sinks.dedup && { dedup: sinks.dedup }),
    ...(sinks.query && { query: sinks.query }),
  }
  if (sinks.ok && !walFailure) return { ok: true, details }
  const failing = Object.entries(sinks.sinks)
    .filter(([, s]) => !s.ok)
    .map(([name, s]) => `sink ${name}: ${s.error ?? 'not answering'}`)
  if (sinks.query && !sinks.query.ok) failing.push(sinks.query.error ?? 'the query store does not answer')
  if (walFailure) failing.unshift(walFailure.error)
  return { ok: false, error: failing.join('; '), details }
}

/** A WAL whose writes fail (ENOSPC, EIO…) as /ready shows it; undefined while writes work. */
async function walWriteFailure(
  wal: WalWriter,
): Promise<{ ok: false; error: string; public: true; failingSince: string } | undefined> {
  const failure = await wal.writeFailure()
  if (!failure) return undefined
  return {
    ok: false,
    error: `WAL writes failing: ${failure.reason}`,
    // The reason is the OS's fixed wording of the errno (no path): clients may read it.
    public: true,
    failingSince: new Date(failure.at).toISOString(),
  }
}
