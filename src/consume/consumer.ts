/**
 * `spillway consume`: load a log (a Kafka consumer group, a JetStream durable consumer) into the
 * stores, through the same machinery as `serve` — only the thing that appends to the WAL differs.
 *
 *   log ─fetch─▶ check each message ─append─▶ WAL ─▶ delivery (dedup: cache, Redis L2; sinks;
 *                (messages.ts)                        retries, breaker, dead letters) ─▶ store
 *    ▲                                                                                   │
 *    └────────── commit offsets / acks once every sink's cursor passed the batch ◀───────┘
 *
 * At least once into an idempotent store: a batch's offsets are committed (its messages acked)
 * only after every configured sink confirmed every event of it, or dead-lettered it — never on
 * the WAL's fsync alone, so losing this node's disk loses nothing the log still holds. A crash
 * anywhere before the commit makes the log hand the batch out again; the copies it then appends
 * are dropped by delivery's dedup check (the store's keys, warmed at start, and L2) or merged by
 * the store (ClickHouse ReplacingMergeTree).
 *
 * Backpressure: fetching pauses while the WAL backlog is at `maxWalBacklogBytes` — the log is the
 * buffer, so a slow store makes the consumer lag, never grow. Messages that are not events go to
 * the dead-letter store (and the log's dead-letter topic), and are committed like the rest.
 */
import { join } from 'node:path'
import { maxRecordBytes } from '../config/derived.ts'
import type { Config } from '../config/schema.ts'
import { type OperationsServer, startOperationsServer } from '../dashboard/operations-server.ts'
import { isSpillwayError } from '../errors.ts'
import type { Readiness } from '../http/readiness.ts'
import type { IntakeLimits } from '../intake/types.ts'
import { openPipeline, type Pipeline } from '../pipeline.ts'
import { pipelineReadiness } from '../pipeline-readiness.ts'
import { DeadLetterStore, deadLetterLimits } from '../shared/dead-letter.ts'
import { sleep } from '../shared/timeout.ts'
import type { Logger } from '../telemetry/logger.ts'
import { ServerMetrics } from '../telemetry/metrics.ts'
import { type RefusedMessage, toWalLines } from './messages.ts'
import type { FetchedBatch, LogSource } from './source.ts'

export interface ConsumeStats {
  /** Messages fetched from the log. */
  readonly fetched: number
  /** Events appended to the WAL. */
  readonly appended: number
  /** Messages that were not events (dead-lettered). */
  readonly refused: number
  /** Messages whose offsets were committed / that were acked. */
  readonly committed: number
  /** Fetched batches not committed yet. */
  readonly uncommittedBatches: number
}

export interface RunningConsumer {
  readonly pipeline: Pipeline
  readonly metrics: ServerMetrics
  /** The operations port (Prometheus `GET /metrics`). */
  readonly metricsUrl: string
  stats(): ConsumeStats
  /** Stop fetching, drain delivery (bounded by shutdownTimeoutMs), commit what was stored, leave. */
  close(): Promise<void>
}

/** How long one fetch waits for the first message; also how often delivered batches are committed when the log is idle. */
const FETCH_WAIT_MS = 250
const BACKPRESSURE_PAUSE_MS = 50
const APPEND_RETRY_MS = 1000

interface Uncommitted {
  /** WAL position past this batch's last record: committed once every sink's cursor is there. */
  readonly end: number
  readonly batch: FetchedBatch
}

export async function startConsumer(
  config: Config,
  logger: Logger,
  source: LogSource,
): Promise<RunningConsumer> {
  const log = logger.child({ component: 'consume', log: source.name })
  const pipeline = await openPipeline(config, logger)
  const { wal } = pipeline
  const uncommitted: Uncommitted[] = []
  const counts = { fetched: 0, appended: 0, refused: 0, committed: 0 }
  const metrics = new ServerMetrics({
    ...pipeline.metricSources,
    queuedEvents: () => 0,
    admission: () => [],
    consume: () => ({ log: source.name, ...counts, uncommittedBatches: uncommitted.length }),
  })
  const deadLetters = new DeadLetterStore(join(config.dataDir, 'deadletter'), {
    source: 'consume',
    limits: deadLetterLimits(config),
  })
  const limits: IntakeLimits = Object.freeze({
    maxEventBytes: config.maxEventBytes,
    maxStringLength: config.maxStringLength,
    maxTags: config.maxTags,
    maxDepth: config.maxDepth,
    clockSkewSeconds: config.clockSkewSeconds,
  })
  const recordLimit = maxRecordBytes(config)

  // A log that is down at start does not stop the consumer (it connects when the log is back, like
  // a sink that is down); a configuration the log refuses does.
  let opened = false
  const tryOpen = async (): Promise<void> => {
    try {
      await source.open()
      opened = true
    } catch (error) {
      if (isSpillwayError(error) && error.code === 'SPW_ERR_CONFIG_INVALID') throw error
      log.warn({ err: error }, 'ConsumeSourceUnavailable')
    }
  }
  const stopping = new AbortController()
  let operations: OperationsServer
  try {
    await tryOpen()
    operations = await startOperationsServer({
      host: config.metricsHost,
      port: config.metricsPort,
      metrics,
      logger,
      readiness: () => consumerReadiness(pipeline, config, source, stopping.signal),
      sinkDetails: async () => (await pipeline.delivery.stats()).sinks,
    })
  } catch (error) {
    await source.close().catch(() => {})
    await pipeline.abort()
    throw error
  }

  let lastEnd = Math.max(0, wal.head)

  /**
   * Commits up to the newest batch every sink has passed: one commit covers the batches fetched
   * before it (the LogSource contract), so a burst of delivered batches costs one round trip.
   */
  const commitDelivered = async (): Promise<void> => {
    const delivered = pipeline.deliveredPosition()
    let last = -1
    while (last + 1 < uncommitted.length && uncommitted[last + 1].end <= delivered) last++
    if (last < 0) return
    await source.commit(uncommitted[last].batch)
    for (const { batch } of uncommitted.splice(0, last + 1)) counts.committed += batch.values.length
  }
  /** Commits run beside fetching, one at a time and in order; the loop never waits for the log's answer. */
  let committing: Promise<void> | null = null
  const commitInBackground = (): void => {
    committing ??= commitDelivered()
      .catch((error) => log.warn({ err: error }, 'ConsumeCommitFailed'))
      .finally(() => {
        committing = null
      })
  }

  const refuse = async (batch: FetchedBatch, refused: readonly RefusedMessage[]): Promise<void> => {
    const at = Date.now()
    await deadLetters.append(
      refused.map((m) => ({
        at,
        sink: `consume:${source.name}`,
        reason: m.reason,
        index: m.index,
        event: m.value.toString('utf8'),
      })),
    )
    for (const m of refused) await source.deadLetter?.([m.value], m.reason)
    counts.refused += refused.length
    metrics.rejected('invalid', refused.length)
    metrics.deadLettered(refused.length)
    log.warn(
      { from: batch.describe, refused: refused.length, reason: refused[0].reason },
      'ConsumeMessagesRefused',
    )
  }

  /** Appends until it worked or the consumer stops (a full disk must not drop the batch). */
  const append = async (payload: Buffer): Promise<number | null> => {
    for (;;) {
      try {
        let end = lastEnd
        for (const record of records(payload, recordLimit)) end = await wal.append(record)
        return end
      } catch (error) {
        log.error({ err: error }, 'ConsumeAppendFailed')
        if (stopping.signal.aborted) return null
        await sleep(APPEND_RETRY_MS)
        if (stopping.signal.aborted) return null
      }
    }
  }

  const run = async (): Promise<void> => {
    while (!stopping.signal.aborted) {
      if (!opened) {
        await sleep(APPEND_RETRY_MS)
        await tryOpen()
        continue
      }
      commitInBackground()
      if (pipeline.backlogBytes() >= config.maxWalBacklogBytes) {
        await sleep(BACKPRESSURE_PAUSE_MS)
        continue
      }
      let batch: FetchedBatch | null
      try {
        batch = await source.fetch(config.consumeBatchMessages, FETCH_WAIT_MS, stopping.signal)
      } catch (error) {
        log.warn({ err: error }, 'ConsumeFetchFailed')
        await sleep(APPEND_RETRY_MS)
        continue
      }
      if (!batch || batch.values.length === 0) continue
      counts.fetched += batch.values.length
      metrics.received(batch.values.length)
      const lines = toWalLines(batch.values, limits, Date.now())
      if (lines.refused.length > 0) await refuse(batch, lines.refused)
      if (lines.count > 0) {
        const end = await append(lines.payload)
        // Stopped while the disk refused: the batch is not committed, so the log hands it out again.
        if (end === null) return
        lastEnd = end
        counts.appended += lines.count
        metrics.accepted(lines.count)
      }
      uncommitted.push({ end: lastEnd, batch })
    }
  }

  const running = run().catch((error) => {
    log.fatal({ err: error }, 'ConsumeLoopFailed')
    throw error
  })
  log.info(
    {
      metricsUrl: operations.url,
      metricsAddress: operations.address,
      sinks: config.sinks,
      dataDir: config.dataDir,
      head: lastEnd,
    },
    'ConsumerStarted',
  )

  let closing: Promise<void> | undefined
  return {
    pipeline,
    metrics,
    metricsUrl: operations.url,
    stats: () => ({ ...counts, uncommittedBatches: uncommitted.length }),
    close: () => {
      closing ??= (async () => {
        stopping.abort()
        let failure: unknown
        await running.catch((error) => {
          failure = error
        })
        await pipeline.stop()
        // Whatever the drain stored is committed now; the rest is fetched again next time.
        await committing
        await commitDelivered().catch((error) => log.warn({ err: error }, 'ConsumeCommitFailed'))
        await source.close().catch((error) => log.warn({ err: error }, 'ConsumeSourceCloseFailed'))
        await operations.close()
        pipeline.release()
        log.info({ ...counts, uncommittedBatches: uncommitted.length }, 'ConsumerStopped')
        if (failure) throw failure
      })()
      return closing
    },
  }
}

/** `payload` cut at line ends into pieces of at most `limit` bytes (one line longer than that goes alone). */
function* records(payload: Buffer, limit: number): Generator<Buffer> {
  let start = 0
  while (payload.length - start > limit) {
    let cut = payload.lastIndexOf(0x0a, start + limit - 1)
    if (cut < start) cut = payload.indexOf(0x0a, start + limit)
    if (cut === -1) break
    yield payload.subarray(start, cut + 1)
    start = cut + 1
  }
  if (start < payload.length) yield payload.subarray(start)
}

/**
 * `/ready` of the consumer's operations port: the node's pipeline (WAL, sinks) and the log it
 * reads; 503 while it stops.
 */
async function consumerReadiness(
  pipeline: Pipeline,
  config: Config,
  source: LogSource,
  stopping: AbortSignal,
): Promise<Readiness> {
  if (stopping.aborted) return { ok: false, error: 'shutting down' }
  const [node, log] = await Promise.all([
    pipelineReadiness(pipeline, config),
    source.ping().then(
      () => ({ ok: true as const }),
      (error: unknown) => ({ ok: false as const, error: (error as Error)?.message ?? String(error) }),
    ),
  ])
  const details = { ...node.details, source: log }
  if (node.ok && log.ok) return { ok: true, details }
  const failing = [node.error, log.ok ? undefined : `source: ${log.error}`].filter(Boolean)
  return { ok: false, error: failing.join('; '), details }
}
