/**
 * The composition root of `serve`: recover the WAL and start delivery (pipeline.ts), then open
 * the API — only then, so a 202 is never given before recovery finished. Shutdown runs the same
 * way backwards: stop accepting, flush the WAL, drain delivery, exit.
 */
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import type { Config } from './config/schema.ts'
import { DeadLetterStore } from './delivery/dead-letter.ts'
import type { DeliveryHost } from './delivery/host.ts'
import { Admission } from './http/admission.ts'
import { buildApp } from './http/app.ts'
import { Ingestor } from './http/ingest.ts'
import { openPipeline } from './pipeline.ts'
import type { Logger } from './telemetry/logger.ts'
import { ServerMetrics } from './telemetry/metrics.ts'
import { type OperationsServer, startOperationsServer } from './telemetry/operations-server.ts'
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
  let ingestor: Ingestor | undefined
  const admission = new Admission(
    {
      maxPendingBytes: config.maxPendingBytes,
      maxWalBacklogBytes: config.maxWalBacklogBytes,
      queueSize: config.queueSize,
    },
    {
      queuedEvents: () => ingestor?.pendingEvents ?? 0,
      walBacklogBytes: pipeline.backlogBytes,
      deliveredPosition: pipeline.deliveredPosition,
    },
  )
  const metrics = new ServerMetrics({
    ...pipeline.metricSources,
    queuedEvents: () => ingestor?.pendingEvents ?? 0,
    l1Keys: () => ingestor?.l1Size ?? 0,
    admission: () => admission.state(),
  })

  const deadLetters = new DeadLetterStore(join(config.dataDir, 'deadletter'), { source: 'intake' })
  ingestor = new Ingestor(wal, config, deadLetters, metrics)
  let recovered = true
  const app = await buildApp({
    config,
    ingestor,
    query: delivery,
    logger,
    admission,
    metrics,
    readiness: async () => {
      if (!recovered) return { ok: false, error: 'WAL recovery has not finished' }
      const overload = admission.overload()
      if (overload) {
        const { bound, value, limit, retryAfterSeconds } = overload
        return {
          ok: false,
          error: overload.message,
          details: { admission: { bound, value, limit, retryAfterSeconds } },
        }
      }
      const sinks = await delivery.ready()
      // The shared dedup layer is shown, never required: without it delivery goes on.
      const dedup = sinks.dedup && { dedup: sinks.dedup }
      if (sinks.ok) return dedup ? { ok: true, details: dedup } : { ok: true }
      const failing = Object.entries(sinks.sinks)
        .filter(([, s]) => !s.ok)
        .map(([name, s]) => `sink ${name}: ${s.error ?? 'not answering'}`)
      return { ok: false, error: failing.join('; '), details: { sinks: sinks.sinks, ...dedup } }
    },
  })

  let operations: OperationsServer | undefined
  let address: string
  try {
    operations = await startOperationsServer({ host: config.host, port: config.metricsPort, metrics, logger })
    address = await app.listen({ port: config.httpPort, host: config.host })
  } catch (error) {
    // A port in use: undo the start, so the process can exit with the error.
    await operations?.close()
    await app.close()
    await pipeline.abort()
    throw error
  }
  const url = address.replace('0.0.0.0', '127.0.0.1').replace('[::]', '127.0.0.1')
  const metricsUrl = operations.url
  logger.info(
    { url, metricsUrl, sinks: config.sinks, ack: config.ack, dataDir: config.dataDir },
    'ServerStarted',
  )

  let closing: Promise<void> | undefined
  const close = () => {
    closing ??= (async () => {
      recovered = false
      ingestor.close()
      await app.close()
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
