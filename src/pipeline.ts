/**
 * The durable core both `serve` and `consume` run: the data directory's lock, the delivery thread
 * (every sink, dedup, retries, dead letters) and the WAL it reads. What differs is only what
 * appends to the WAL: the HTTP API (server.ts) or a log consumer (consume/consumer.ts).
 *
 * Start order matters:
 * 1. the delivery thread opens every sink and publishes each sink's committed cursor;
 * 2. the WAL recovers (truncating a torn tail) and starts no lower than the highest cursor, so a
 *    new record can never get a position a sink already counts as delivered.
 * Stop runs backwards: the WAL is flushed and closed, delivery drains what it holds (bounded by
 * `shutdownTimeoutMs`; what is left is durable and delivered after the next start), the lock goes.
 */
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { maxRecordBytes } from './config/derived.ts'
import type { Config } from './config/schema.ts'
import { DeliveryHost } from './delivery/host.ts'
import { SweptSinks } from './delivery/store-loss.ts'
import { deadLetterLimits, deadLetterUsageReader } from './shared/dead-letter.ts'
import { withTimeout } from './shared/timeout.ts'
import type { Logger } from './telemetry/logger.ts'
import type { MetricSources } from './telemetry/metrics.ts'
import { lockDirectory } from './wal/lock.ts'
import { WalSharedState } from './wal/shared-state.ts'
import { WalWriter } from './wal/writer.ts'

export interface Pipeline {
  readonly state: WalSharedState
  readonly delivery: DeliveryHost
  readonly wal: WalWriter
  /** WAL bytes durable but not yet delivered to the slowest sink. */
  backlogBytes(): number
  /** The WAL position every sink has passed (delivered or dead-lettered up to it). */
  deliveredPosition(): number
  /** The metric sources that come from the WAL and delivery (ServerMetrics). */
  readonly metricSources: Omit<MetricSources, 'queuedEvents' | 'l1Keys' | 'admission'>
  /** Closes the WAL, then drains delivery within `shutdownTimeoutMs`; the lock stays held. */
  stop(): Promise<void>
  /** Undoes a start that failed later on: no drain. */
  abort(): Promise<void>
  /** Releases the data directory's lock (last). */
  release(): void
}

export async function openPipeline(config: Config, logger: Logger): Promise<Pipeline> {
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
  const sinkCount = config.sinks.length
  let highestCursor = 0
  for (let slot = 0; slot < sinkCount; slot++) highestCursor = Math.max(highestCursor, state.cursor(slot))

  const wal = walWriter(config, join(config.dataDir, 'wal'), state, logger)
  try {
    const recovery = await wal.open({ minHead: highestCursor })
    logger.info({ recovery }, 'WalRecovered')
  } catch (error) {
    await delivery.stop({ drain: false })
    lock.release()
    throw error
  }

  const backlogBytes = () => state.slowestBacklogBytes(sinkCount)
  const deliveredPosition = () => state.minCursor(sinkCount)

  // Segments every sink has passed are deleted; checked on a timer, off the request path. The
  // sinks they went to are recorded first, so a store that loses them is caught at the next start.
  const swept = new SweptSinks(config.dataDir)
  const sweeper = setInterval(() => {
    const min = deliveredPosition()
    if (min > 0) {
      swept
        .note(config.sinks)
        .then(() => wal.deleteDelivered(min))
        .catch((error) => logger.warn({ err: error }, 'WalSegmentDeleteFailed'))
    }
  }, 1000)
  sweeper.unref()

  const deadLetterUsage = deadLetterUsageReader(join(config.dataDir, 'deadletter'))
  const metricSources: Pipeline['metricSources'] = {
    deadLetter: async () => ({ ...(await deadLetterUsage()), ...deadLetterLimits(config) }),
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
        damagedRanges: state.damagedRanges,
        damagedBytes: state.damagedBytes,
      }
    },
    sinkBacklog: () => config.sinks.map((sink, slot) => ({ sink, bytes: state.backlogBytes(slot) })),
    delivery: async () => {
      // A reading that spans a thread restart mixes two generations: skip it.
      const before = delivery.restarts
      const stats = await delivery.stats()
      if (delivery.restarts !== before) return null
      return { generation: before, running: stats.running, sinks: stats.sinks }
    },
  }

  return {
    state,
    delivery,
    wal,
    backlogBytes,
    deliveredPosition,
    metricSources,
    stop: async () => {
      await wal.close()
      clearInterval(sweeper)
      // Drain what the WAL holds, but not past the shutdown budget: anything left is durable in
      // the WAL and delivered after the next start, so stopping early loses nothing.
      const drained = delivery.stop({ drain: true })
      const outcome = await withTimeout(drained, config.shutdownTimeoutMs, () => 'timeout' as const, {
        unref: true,
      })
      if (outcome === 'timeout') {
        logger.warn({ timeoutMs: config.shutdownTimeoutMs }, 'DeliveryDrainTimedOut')
        await delivery.stop({ drain: false })
      }
    },
    abort: async () => {
      clearInterval(sweeper)
      await wal.close()
      await delivery.stop({ drain: false })
      lock.release()
    },
    release: () => lock.release(),
  }
}

/** A writer of the WAL in `dir` with the configured segment, group commit and record limits. */
export function walWriter(config: Config, dir: string, state: WalSharedState, logger: Logger): WalWriter {
  return new WalWriter(
    {
      dir,
      segmentBytes: config.walSegmentBytes,
      groupCommitBytes: config.walGroupCommitBytes,
      groupCommitDelayMs: config.walGroupCommitDelayMs,
      maxRecordBytes: maxRecordBytes(config),
    },
    state,
    logger.child({ component: 'wal' }),
  )
}
