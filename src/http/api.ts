/**
 * The HTTP API over a WAL, assembled: admission, the delay controller, the ingestor and its
 * dead-letter store, the fastify app (app.ts), the request metrics, and `/ready`'s own part
 * (closing, WAL writes, overload). `serve` (server.ts) opens one over the node's WAL; each worker
 * of `serve --workers N` (cluster/worker.ts) one over its shard.
 */
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import type { Config } from '../config/schema.ts'
import { Ingestor } from '../ingest/ingestor.ts'
import type { ExploreBackend, QueryBackend } from '../query/types.ts'
import { DeadLetterStore, deadLetterLimits } from '../shared/dead-letter.ts'
import type { Logger } from '../telemetry/logger.ts'
import { type MetricSources, ServerMetrics } from '../telemetry/metrics.ts'
import type { WalWriter } from '../wal/writer.ts'
import { Admission } from './admission.ts'
import { buildApp } from './app.ts'
import { DelayController } from './delay.ts'
import type { TokenSource } from './rate-limit.ts'
import { type Readiness, walWriteFailure } from './readiness.ts'

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
