/**
 * The primary process of `serve --workers N` (node:cluster). It owns what must exist once per
 * node — the data directory's lock, the node's WAL, delivery and the store (DuckDB allows one
 * writing process), the operations port — and N HTTP workers (worker.ts), each appending to its
 * own WAL shard under `<dataDir>/shards/<n>`. node:cluster shares the API port between them
 * (connections are handed out round-robin).
 *
 * The parts, each in its own file: the workers' lives (supervisor.ts: fork, restart with a growing
 * pause, stop), the shards (shards.ts: a merger per shard moving what its worker made durable into
 * the node's WAL, which delivery reads — so dedup and queries work exactly as with one process),
 * what the primary answers the workers (services.ts: queries, readiness, rate-limit tokens) and
 * the workers' metrics summed with the primary's (worker-metrics.ts). This file puts them together
 * and keeps their order: up, pipeline → shards → operations port → workers; down, workers → shard
 * drain → pipeline (delivery drains) → operations port → rate limiter → lock.
 */
import type { Config } from '../config/schema.ts'
import { type OperationsServer, startOperationsServer } from '../dashboard/operations-server.ts'
import { rateLimiterFor } from '../http/rate-limit-config.ts'
import type { Readiness } from '../http/readiness.ts'
import { openPipeline } from '../pipeline.ts'
import { pipelineReadiness } from '../pipeline-readiness.ts'
import type { Logger } from '../telemetry/logger.ts'
import { type ClusterReading, ServerMetrics } from '../telemetry/metrics.ts'
import { clusterReadiness, serveWorker } from './services.ts'
import { ShardSet } from './shards.ts'
import { WorkerSupervisor } from './supervisor.ts'
import { WorkerMetrics } from './worker-metrics.ts'

export { EXIT_SHARD_BUSY } from './supervisor.ts'
/** Env of a worker: its shard, and the primary's resolved configuration (JSON). */
export const SHARD_ENV = 'SPILLWAY_SHARD'
export const CONFIG_ENV = 'SPILLWAY_CLUSTER_CONFIG'

export interface RunningCluster {
  readonly url: string
  readonly metricsUrl: string
  readonly workers: number
  /** The PID of each shard's worker now (tests use it to kill one). */
  workerPids(): number[]
  close(): Promise<void>
}

export async function startCluster(config: Config, logger: Logger, workers: number): Promise<RunningCluster> {
  const pipeline = await openPipeline(config, logger)
  let shards: ShardSet
  try {
    shards = await ShardSet.open(config, pipeline, logger, workers)
  } catch (error) {
    await pipeline.abort()
    throw error
  }
  const limiter = config.rateLimitPerSecond > 0 ? rateLimiterFor(config, logger) : undefined
  const workerMetrics = new WorkerMetrics(logger)
  const reading = (): ClusterReading => ({
    workers,
    running: supervisor.live().length,
    restarts: supervisor.restarts,
    shards: shards.reading(),
  })
  const readiness = async (): Promise<Readiness> =>
    clusterReadiness(await pipelineReadiness(pipeline, config), reading())
  const supervisor = new WorkerSupervisor({
    workers,
    env: (shard) => ({ [SHARD_ENV]: String(shard), [CONFIG_ENV]: JSON.stringify(config) }),
    attach: (shard, rpc) =>
      serveWorker(rpc, shard, {
        query: pipeline.delivery,
        readiness,
        limiter,
        reportHead: (n, head) => shards.reportHead(n, head),
      }),
    onExit: (shard) => void workerMetrics.retire(shard),
    stopTimeoutMs: config.shutdownTimeoutMs,
    logger,
  })
  const metrics = new ServerMetrics({
    ...pipeline.metricSources,
    queuedEvents: () => 0,
    admission: () => [],
    cluster: reading,
  })
  shards.startProgress((shard) => supervisor.rpcOf(shard))
  workerMetrics.startRefresh(() => supervisor.live())

  const stopWorkers = async () => {
    workerMetrics.stop()
    await supervisor.stop()
    // Everything the workers made durable goes into the node's WAL before delivery drains it.
    await shards.drain(config.shutdownTimeoutMs)
  }
  let operations: OperationsServer | undefined
  try {
    operations = await startOperationsServer({
      host: config.metricsHost,
      port: config.metricsPort,
      metrics: { render: () => metrics.render(() => workerMetrics.collect(supervisor.live())) },
      logger,
      // The dashboard's sources (README "Operations port"): the node's /ready, sinks, queries.
      readiness: async () => (supervisor.stopping ? { ok: false, error: 'shutting down' } : readiness()),
      sinkDetails: async () => (await pipeline.delivery.stats()).sinks,
      explore: pipeline.delivery,
      apiKeys: { inline: config.apiKeys, file: config.apiKeysFile },
    })
    await supervisor.start()
  } catch (error) {
    await stopWorkers()
    await operations?.close()
    await limiter?.close()
    await pipeline.abort()
    throw error
  }
  const { url } = supervisor
  const metricsUrl = operations.url
  logger.info(
    {
      url,
      address: supervisor.address,
      metricsUrl,
      metricsAddress: operations.address,
      sinks: config.sinks,
      ack: config.ack,
      dataDir: config.dataDir,
      workers,
    },
    'ServerStarted',
  )

  let closing: Promise<void> | undefined
  const close = () => {
    closing ??= (async () => {
      await stopWorkers()
      await pipeline.stop()
      await operations.close()
      await limiter?.close()
      pipeline.release()
      logger.info('ServerStopped')
    })()
    return closing
  }
  return { url, metricsUrl, workers, workerPids: () => supervisor.pids(), close }
}
