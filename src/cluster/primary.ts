/**
 * The primary process of `serve --workers N` (node:cluster). It owns what must exist once per
 * node — the data directory's lock, the node's WAL, delivery and the store (DuckDB allows one
 * writing process), the operations port — and N HTTP workers (worker.ts), each appending to its
 * own WAL shard under `<dataDir>/shards/<n>`. node:cluster shares the API port between them
 * (connections are handed out round-robin).
 *
 * Per shard a merger (shard-merger.ts) moves what the worker made durable into the node's WAL;
 * delivery reads only that, so dedup (the delivery-time check, the Redis layer) and queries work
 * exactly as with one process, across every shard. Shards left by an earlier start with more
 * workers are recovered and merged too.
 *
 * The primary answers the workers' calls (ipc.ts): queries and readiness (the node's store and
 * sinks), rate-limit tokens (one bucket per key for the whole node, shared through Redis when
 * configured), and it adds the workers' metrics to its own when `/metrics` is scraped: counters
 * and histograms summed (prom-client's AggregatorRegistry), the admission gauges as the highest
 * worker's. A worker's last counts are kept when it dies, so the node's counters never go down.
 *
 * A worker that dies (a crash, kill -9, OOM) is started again on the same shard, after a pause
 * that grows while it keeps dying. Whatever it acknowledged is durable in its shard: the new
 * worker recovers the shard and the merger goes on from its cursor, so no acked event is lost.
 */
import cluster, { type Worker } from 'node:cluster'
import { join } from 'node:path'
import type { MetricObjectWithValues, MetricValue } from 'prom-client'
import { AggregatorRegistry } from 'prom-client'
import { maxRecordBytes } from '../config/derived.ts'
import type { Config } from '../config/schema.ts'
import { spillwayError } from '../errors.ts'
import { rateLimiterFor } from '../http/rate-limit-config.ts'
import type { Readiness } from '../http/readiness.ts'
import { openPipeline, walWriter } from '../pipeline.ts'
import type { GroupBy, MetricsQuery, SeriesQuery, TopEventsQuery } from '../query/types.ts'
import { pipelineReadiness } from '../server.ts'
import type { Logger } from '../telemetry/logger.ts'
import { type ClusterReading, ServerMetrics } from '../telemetry/metrics.ts'
import { type OperationsServer, startOperationsServer } from '../telemetry/operations-server.ts'
import { type DirLock, lockDirectory } from '../wal/lock.ts'
import { WalSharedState } from '../wal/shared-state.ts'
import type { WalWriter } from '../wal/writer.ts'
import { guardHandoffs } from './handoff-guard.ts'
import { Rpc } from './ipc.ts'
import { ShardMerger } from './shard-merger.ts'
import { existingShards, type Progress, shardDir } from './worker.ts'

/** The exit code of a worker that could not take its shard (a previous worker still holds it). */
export const EXIT_SHARD_BUSY = 75
/** Env of a worker: its shard, and the primary's resolved configuration (JSON). */
export const SHARD_ENV = 'SPILLWAY_SHARD'
export const CONFIG_ENV = 'SPILLWAY_CLUSTER_CONFIG'

const PROGRESS_EVERY_MS = 100
const METRICS_TIMEOUT_MS = 2000
/** Worker metrics are also read this often, so a worker that dies loses at most this much of its counts. */
const METRICS_REFRESH_MS = 5000
const RESTART_MIN_MS = 100
const RESTART_MAX_MS = 5000
/** A worker up this long is healthy again: its next restart waits the minimum. */
const STABLE_AFTER_MS = 10_000
const START_TIMEOUT_MS = 30_000

type MetricsJson = MetricObjectWithValues<MetricValue<string>>[]

interface Shard {
  readonly index: number
  readonly state: WalSharedState
  readonly merger: ShardMerger
  /** Only shards of an earlier start with more workers: recovered and merged, no worker. */
  orphan?: { wal: WalWriter; lock: DirLock }
  worker?: Worker
  rpc?: Rpc
  listening: boolean
  startedAt: number
  failures: number
  /** The worker's metrics as last read. */
  lastMetrics?: MetricsJson
  restartTimer?: NodeJS.Timeout
}

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
  const maxRecord = maxRecordBytes(config)
  const count = Math.max(workers, ...existingShards(config.dataDir).map((n) => n + 1))
  const shards: Shard[] = []
  let restarts = 0
  let stopping = false
  let retired: MetricsJson = []

  try {
    for (let index = 0; index < count; index++) {
      const state = new WalSharedState()
      const merger = new ShardMerger({
        shard: index,
        dir: shardDir(config.dataDir, index),
        state,
        target: pipeline.wal,
        maxRecordBytes: maxRecord,
        logger: logger.child({ component: 'merge', shard: index }),
      })
      const shard: Shard = { index, state, merger, listening: false, startedAt: 0, failures: 0 }
      await merger.start()
      if (index >= workers) {
        shard.orphan = await recoverShard(config, index, state, merger.cursor, logger)
        logger.info({ shard: index, head: state.durableHead, merged: merger.cursor }, 'ShardWithoutWorker')
      }
      shards.push(shard)
    }
  } catch (error) {
    await Promise.all(shards.map((s) => s.merger.stop({ drain: false })))
    for (const s of shards) {
      await s.orphan?.wal.close()
      s.orphan?.lock.release()
    }
    await pipeline.abort()
    throw error
  }

  const limiter = config.rateLimitPerSecond > 0 ? rateLimiterFor(config, logger) : undefined
  const live = () => shards.filter((s) => s.worker && s.listening)
  const reading = (): ClusterReading => ({
    workers,
    running: live().length,
    restarts,
    shards: shards.map((s) => ({
      shard: s.index,
      head: Math.max(0, s.state.durableHead),
      backlogBytes: s.merger.backlogBytes,
    })),
  })
  const metrics = new ServerMetrics({
    ...pipeline.metricSources,
    queuedEvents: () => 0,
    admission: () => [],
    cluster: reading,
  })
  const readiness = async (): Promise<Readiness> => {
    const node = await pipelineReadiness(pipeline, config)
    const cluster = reading()
    return {
      ...node,
      details: {
        ...node.details,
        workers: { ok: cluster.running === workers, running: cluster.running, workers, restarts },
        shards: cluster.shards,
      },
    }
  }

  const workerMetrics = async (s: Shard): Promise<MetricsJson | undefined> => {
    try {
      s.lastMetrics = (await s.rpc!.call('metrics', null, METRICS_TIMEOUT_MS)) as MetricsJson
    } catch (error) {
      logger.debug({ err: error, shard: s.index }, 'WorkerMetricsUnanswered')
    }
    return s.lastMetrics
  }
  const others = async (): Promise<MetricsJson[]> => {
    const theirs = await Promise.all(live().map(workerMetrics))
    return [...theirs.filter((m): m is MetricsJson => m !== undefined), retired]
  }
  /** A dead worker's last counters and histograms stay in the sums; its gauges go. */
  const retire = async (s: Shard) => {
    const last = s.lastMetrics?.filter((m) => ['counter', 'histogram'].includes(String(m.type)))
    s.lastMetrics = undefined
    if (!last?.length) return
    retired = (await AggregatorRegistry.aggregate([retired, last]).getMetricsAsJSON()) as MetricsJson
  }

  // --- workers -----------------------------------------------------------------------------------
  const firstListen = Promise.withResolvers<string>()
  const started = new Set<number>()
  let url = ''
  /** What the kernel bound for the API, e.g. 0.0.0.0:8080 (the URL is for a local client). */
  let apiAddress = ''

  const fork = (s: Shard) => {
    s.listening = false
    s.startedAt = Date.now()
    const worker = cluster.fork({ [SHARD_ENV]: String(s.index), [CONFIG_ENV]: JSON.stringify(config) })
    guardHandoffs(worker, (connections) =>
      logger.warn({ shard: s.index, workerPid: worker.process.pid, connections }, 'WorkerHandoffsClosed'),
    )
    const rpc = new Rpc(worker)
      .handle('totals', (query) => pipeline.delivery.totals(query as MetricsQuery))
      .handle('groups', (query) => pipeline.delivery.groups(query as MetricsQuery & { group_by: GroupBy }))
      .handle('topEvents', (query) => pipeline.delivery.topEvents(query as TopEventsQuery))
      .handle('series', (query) => pipeline.delivery.series(query as SeriesQuery))
      .handle('ready', readiness)
      .handle('token', (client) => {
        if (!limiter) throw new Error('rate limits are off')
        return limiter.take(String(client))
      })
      .onNote('head', (head) => {
        if (typeof head === 'number' && head > s.state.durableHead) s.state.durableHead = head
      })
    s.worker = worker
    s.rpc = rpc
    worker.on('listening', (address) => {
      s.listening = true
      const host =
        !address.address || address.address === '0.0.0.0' || address.address === '::'
          ? '127.0.0.1'
          : address.address
      url ||= `http://${host.includes(':') ? `[${host}]` : host}:${address.port}`
      const bound = address.address ?? ''
      apiAddress ||= `${bound.includes(':') ? `[${bound}]` : bound}:${address.port}`
      logger.info({ shard: s.index, workerPid: worker.process.pid }, 'WorkerStarted')
      started.add(s.index)
      if (started.size === workers) firstListen.resolve(url)
    })
    worker.on('exit', (code, signal) => {
      rpc.close()
      s.worker = undefined
      s.rpc = undefined
      const wasListening = s.listening
      s.listening = false
      if (stopping) return
      void retire(s)
      const busy = code === EXIT_SHARD_BUSY
      if (!started.has(s.index) && !busy) {
        firstListen.reject(
          spillwayError(
            'SPW_ERR_CONFIG_INVALID',
            `HTTP worker ${s.index} exited (code ${code}, signal ${signal}) before it listened; its error is in the log above`,
          ),
        )
        return
      }
      if (wasListening) restarts++
      s.failures = Date.now() - s.startedAt > STABLE_AFTER_MS ? 0 : s.failures + 1
      const delay = Math.min(RESTART_MAX_MS, RESTART_MIN_MS * 2 ** Math.max(0, s.failures - 1))
      logger[busy ? 'info' : 'error'](
        { shard: s.index, workerPid: worker.process.pid, code, signal, restartInMs: delay },
        busy ? 'WorkerShardBusy' : 'WorkerExited',
      )
      s.restartTimer = setTimeout(() => {
        s.restartTimer = undefined
        if (!stopping) fork(s)
      }, delay)
    })
  }

  const progress = setInterval(() => {
    const node = { backlogBytes: pipeline.backlogBytes(), deliveredPosition: pipeline.deliveredPosition() }
    for (const s of shards) {
      if (s.rpc) void s.rpc.note('progress', { merged: s.merger.savedCursor, ...node } satisfies Progress)
      if (s.orphan && s.merger.savedCursor > 0)
        s.orphan.wal.deleteDelivered(s.merger.savedCursor).catch(() => {})
    }
  }, PROGRESS_EVERY_MS)
  const refresh = setInterval(() => void Promise.all(live().map(workerMetrics)), METRICS_REFRESH_MS)
  refresh.unref()

  let operations: OperationsServer | undefined
  const stopWorkers = async () => {
    stopping = true
    clearInterval(refresh)
    await Promise.all(
      shards.map(async (s) => {
        clearTimeout(s.restartTimer)
        const worker = s.worker
        if (!worker) return
        const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()))
        void s.rpc?.note('shutdown', null)
        const timer = setTimeout(() => {
          logger.warn({ shard: s.index, timeoutMs: config.shutdownTimeoutMs }, 'WorkerStopTimedOut')
          worker.process.kill('SIGKILL')
        }, config.shutdownTimeoutMs)
        await exited
        clearTimeout(timer)
      }),
    )
  }
  const stopMergers = async () => {
    // The workers are gone. Their last head reports may be too (a worker killed after the stop
    // timeout): each shard is recovered here, as a restart would, which publishes its true head.
    for (const s of shards) {
      if (s.orphan) continue
      try {
        s.orphan = await recoverShard(config, s.index, s.state, s.merger.cursor, logger)
      } catch (error) {
        logger.warn({ err: error, shard: s.index }, 'ShardRecoveryAtStopFailed')
      }
    }
    // Everything the workers made durable goes into the node's WAL before delivery drains it,
    // within the shutdown budget; what is left stays in the shards for the next start.
    const drained = Promise.all(shards.map((s) => s.merger.stop({ drain: true })))
    const timer = new Promise<'timeout'>((resolve) =>
      setTimeout(resolve, config.shutdownTimeoutMs, 'timeout').unref(),
    )
    if ((await Promise.race([drained, timer])) === 'timeout') {
      logger.warn({ timeoutMs: config.shutdownTimeoutMs }, 'ShardMergeDrainTimedOut')
      await Promise.all(shards.map((s) => s.merger.stop({ drain: false })))
    }
    clearInterval(progress)
    for (const s of shards) {
      await s.orphan?.wal.close()
      s.orphan?.lock.release()
    }
  }

  try {
    operations = await startOperationsServer({
      host: config.metricsHost,
      port: config.metricsPort,
      metrics: { render: () => metrics.render(others) },
      logger,
      // The dashboard's sources (README "Operations port"): the node's /ready, sinks, queries.
      readiness: async () => (stopping ? { ok: false, error: 'shutting down' } : readiness()),
      sinkDetails: async () => (await pipeline.delivery.stats()).sinks,
      explore: pipeline.delivery,
      apiKeys: { inline: config.apiKeys, file: config.apiKeysFile },
    })
    for (const s of shards) if (s.index < workers) fork(s)
    const timeout = setTimeout(
      () =>
        firstListen.reject(
          spillwayError(
            'SPW_ERR_SERVER_NOT_READY',
            `the HTTP workers did not listen within ${START_TIMEOUT_MS} ms`,
          ),
        ),
      START_TIMEOUT_MS,
    )
    try {
      await firstListen.promise
    } finally {
      clearTimeout(timeout)
    }
  } catch (error) {
    await stopWorkers()
    await stopMergers()
    await operations?.close()
    await limiter?.close()
    await pipeline.abort()
    throw error
  }
  const metricsUrl = operations.url
  logger.info(
    {
      url,
      address: apiAddress,
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
      await stopMergers()
      await pipeline.stop()
      await operations.close()
      await limiter?.close()
      pipeline.release()
      logger.info('ServerStopped')
    })()
    return closing
  }
  return {
    url,
    metricsUrl,
    workers,
    workerPids: () => shards.flatMap((s) => (s.worker?.process.pid ? [s.worker.process.pid] : [])),
    close,
  }
}

/**
 * Takes a shard no worker runs and recovers its WAL, as a worker's start would: `state` gets
 * its true durable head, so the merger can drain it. The caller closes the writer and releases
 * the lock once it is merged.
 */
async function recoverShard(
  config: Config,
  index: number,
  state: WalSharedState,
  merged: number,
  logger: Logger,
): Promise<{ wal: WalWriter; lock: DirLock }> {
  const dir = shardDir(config.dataDir, index)
  const lock = lockDirectory(dir)
  const wal = walWriter(config, join(dir, 'wal'), state, logger)
  try {
    await wal.open({ minHead: merged })
  } catch (error) {
    lock.release()
    throw error
  }
  return { wal, lock }
}
