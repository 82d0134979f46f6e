/**
 * The composition root: recover the WAL, start delivery, open the API. Start order matters:
 * 1. the delivery thread opens every sink and publishes each sink's committed cursor;
 * 2. the WAL recovers (truncating a torn tail) and starts no lower than the highest cursor, so a
 *    new record can never get a position a sink already counts as delivered;
 * 3. only then does the API listen, so a 202 is never given before recovery finished.
 * Shutdown runs the same way backwards: stop accepting, flush the WAL, drain delivery, exit.
 */
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { maxRecordBytes } from './config/derived.ts'
import type { Config } from './config/schema.ts'
import { DeadLetterStore } from './delivery/dead-letter.ts'
import { DeliveryHost } from './delivery/host.ts'
import { Admission } from './http/admission.ts'
import { buildApp } from './http/app.ts'
import { Ingestor } from './http/ingest.ts'
import type { Logger } from './telemetry/logger.ts'
import { ServerMetrics } from './telemetry/metrics.ts'
import { type OperationsServer, startOperationsServer } from './telemetry/operations-server.ts'
import { lockDirectory } from './wal/lock.ts'
import { WalSharedState } from './wal/shared-state.ts'
import { WalWriter } from './wal/writer.ts'

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
  mkdirSync(config.dataDir, { recursive: true })
  const lock = lockDirectory(config.dataDir)
  const state = new WalSharedState()
  let delivery: DeliveryHost
  try {
    delivery = await DeliveryHost.start({ config, state, logger })
  } catch (error) {
    lock.release()
    throw error
  }
  let highestCursor = 0
  for (let slot = 0; slot < config.sinks.length; slot++)
    highestCursor = Math.max(highestCursor, state.cursor(slot))

  const wal = new WalWriter(
    {
      dir: join(config.dataDir, 'wal'),
      segmentBytes: config.walSegmentBytes,
      groupCommitBytes: config.walGroupCommitBytes,
      groupCommitDelayMs: config.walGroupCommitDelayMs,
      maxRecordBytes: maxRecordBytes(config),
    },
    state,
    logger.child({ component: 'wal' }),
  )
  const recovery = await wal.open({ minHead: highestCursor })
  logger.info({ recovery }, 'WalRecovered')

  const backlogBytes = () => state.slowestBacklogBytes(config.sinks.length)
  let ingestor: Ingestor | undefined
  const admission = new Admission(
    {
      maxPendingBytes: config.maxPendingBytes,
      maxWalBacklogBytes: config.maxWalBacklogBytes,
      queueSize: config.queueSize,
    },
    {
      queuedEvents: () => ingestor?.pendingEvents ?? 0,
      walBacklogBytes: backlogBytes,
      deliveredPosition: () => state.minCursor(config.sinks.length),
    },
  )
  const metrics = new ServerMetrics({
    queuedEvents: () => ingestor?.pendingEvents ?? 0,
    l1Keys: () => ingestor?.l1Size ?? 0,
    wal: () => {
      const stats = wal.stats
      return {
        head: Math.max(0, state.durableHead),
        backlogBytes: backlogBytes(),
        pendingBytes: wal.pendingBytes,
        fsyncs: stats.fsyncs,
        records: stats.records,
        bytes: stats.bytes,
        failedGroups: stats.failedGroups,
      }
    },
    sinkBacklog: () => config.sinks.map((sink, slot) => ({ sink, bytes: state.backlogBytes(slot) })),
    admission: () => admission.state(),
    delivery: async () => {
      // A reading that spans a thread restart mixes two generations: skip it.
      const before = delivery.restarts
      const stats = await delivery.stats()
      if (delivery.restarts !== before) return null
      return { generation: before, running: stats.running, sinks: stats.sinks }
    },
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

  // Segments every sink has passed are deleted; checked on a timer, off the request path.
  const sweeper = setInterval(() => {
    const min = state.minCursor(config.sinks.length)
    if (min > 0) {
      wal.deleteDelivered(min).catch((error) => logger.warn({ err: error }, 'WalSegmentDeleteFailed'))
    }
  }, 1000)
  sweeper.unref()

  let operations: OperationsServer | undefined
  let address: string
  try {
    operations = await startOperationsServer({ host: config.host, port: config.metricsPort, metrics, logger })
    address = await app.listen({ port: config.httpPort, host: config.host })
  } catch (error) {
    // A port in use: undo the start, so the process can exit with the error.
    clearInterval(sweeper)
    await operations?.close()
    await app.close()
    await wal.close()
    await delivery.stop({ drain: false })
    lock.release()
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
      await wal.close()
      clearInterval(sweeper)
      // Drain what the WAL holds, but not past the shutdown budget: anything left is durable in
      // the WAL and delivered after the next start, so stopping early loses nothing.
      const drained = delivery.stop({ drain: true })
      const timer = new Promise<'timeout'>((resolve) =>
        setTimeout(resolve, config.shutdownTimeoutMs, 'timeout').unref(),
      )
      if ((await Promise.race([drained, timer])) === 'timeout') {
        logger.warn({ timeoutMs: config.shutdownTimeoutMs }, 'DeliveryDrainTimedOut')
        await delivery.stop({ drain: false })
      }
      // Last: the operations port stays up while the drain runs, so it can be watched.
      await operations.close()
      lock.release()
      logger.info('ServerStopped')
    })()
    return closing
  }
  return { app, wal, delivery, url, metricsUrl, metrics, admission, close }
}
