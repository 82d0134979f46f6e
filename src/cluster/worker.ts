/**
 * One HTTP worker of `serve --workers N` (a node:cluster worker, started by primary.ts with its
 * shard number). It runs the whole API — auth, rate limits (buckets kept by the primary),
 * admission, validation, L1 dedup — over a WAL of its own, `<dataDir>/shards/<n>/wal`, and answers
 * 202 once an event is durable there. It never delivers: the primary merges the shard into the
 * node's WAL (shard-merger.ts) and runs delivery.
 *
 * What crosses the IPC channel (ipc.ts):
 * - to the primary: the shard's durable head after every group commit (coalesced per tick), so the
 *   merger never reads past what is fdatasync'd; queries, readiness and rate-limit tokens, which
 *   the primary answers; its metrics when the primary is scraped;
 * - from the primary, every 100 ms: the merge cursor (segments below it are deleted), the node's
 *   WAL backlog and delivered position, so admission's `wal_backlog` bound counts both the
 *   shard's unmerged bytes and the node's undelivered ones.
 *
 * The worker stops when the primary says so (`shutdown`), on SIGTERM/SIGINT, or when the channel
 * to the primary closes (the primary died: nothing can merge its shard until the next start, and
 * the data is safe on disk). Stopping refuses new requests, answers those in flight, closes the
 * shard (flushing what was queued) and reports the final head.
 */
import { mkdirSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import type { Config } from '../config/schema.ts'
import { openApi } from '../http/api.ts'
import type { RateDecision } from '../http/rate-limit.ts'
import type { Readiness } from '../http/readiness.ts'
import { walWriter } from '../pipeline.ts'
import type {
  GroupBy,
  MetricsQuery,
  MetricsRow,
  SeriesQuery,
  SeriesRow,
  TopEventsQuery,
  TopEventsRow,
  Totals,
} from '../query/types.ts'
import type { Logger } from '../telemetry/logger.ts'
import { lockDirectory } from '../wal/lock.ts'
import { WalSharedState } from '../wal/shared-state.ts'
import type { RecoveryReport } from '../wal/types.ts'
import { type Channel, Rpc } from './ipc.ts'
import { loadMergeCursor } from './shard-merger.ts'

/** How long a call to the primary may take (queries run on the node's store). */
const QUERY_TIMEOUT_MS = 30_000
const READY_TIMEOUT_MS = 5000
const TOKEN_TIMEOUT_MS = 2000
const HEAD_REPORT_MS = 5

/** What the primary sends every 100 ms. */
export interface Progress {
  /** The shard position merged into the node's WAL. */
  readonly merged: number
  /** Node WAL bytes not yet delivered to the slowest sink. */
  readonly backlogBytes: number
  /** The node WAL position every sink has passed. */
  readonly deliveredPosition: number
}

export function shardDir(dataDir: string, shard: number): string {
  return join(dataDir, 'shards', String(shard))
}

/** Shard numbers that have a directory under `<dataDir>/shards`, in order. */
export function existingShards(dataDir: string): number[] {
  try {
    return readdirSync(join(dataDir, 'shards'))
      .filter((name) => /^\d+$/.test(name))
      .map(Number)
      .sort((a, b) => a - b)
  } catch {
    return []
  }
}

/**
 * The shared WAL state of a shard, which also tells the primary each new durable head: at most
 * every HEAD_REPORT_MS, however many group commits happened meanwhile (the merger lingers longer
 * than that between rounds anyway, and a message per commit costs the worker CPU it needs for
 * requests).
 */
class ReportingState extends WalSharedState {
  readonly #report: (head: number) => void
  #scheduled = false

  constructor(report: (head: number) => void) {
    super()
    this.#report = report
  }

  override get durableHead(): number {
    return super.durableHead
  }

  override set durableHead(position: number) {
    super.durableHead = position
    if (this.#scheduled) return
    this.#scheduled = true
    setTimeout(() => {
      this.#scheduled = false
      this.#report(this.durableHead)
    }, HEAD_REPORT_MS)
  }
}

export interface RunningWorker {
  readonly url: string
  /** Resolves once the worker has stopped (by `close`, the primary or a signal). */
  readonly stopped: Promise<void>
  close(): Promise<void>
}

export async function startWorker(
  config: Config,
  logger: Logger,
  shard: number,
  channel: Channel,
): Promise<RunningWorker> {
  const dir = shardDir(config.dataDir, shard)
  mkdirSync(dir, { recursive: true })
  // A worker of a primary that was killed may still be finishing: its shard is not ours yet.
  const lock = lockDirectory(dir)
  const rpc = new Rpc(channel)
  // The primary may ask us to stop before we are up (it was stopped while we started): a note with
  // no listener is dropped, and the primary would wait shutdownTimeoutMs, then kill us.
  let stopAsked = false
  let stop = () => {
    stopAsked = true
  }
  rpc.onNote('shutdown', () => stop())
  const state = new ReportingState((head) => void rpc.note('head', head))
  const merged = (await loadMergeCursor(dir)) ?? 0
  const wal = walWriter(config, join(dir, 'wal'), state, logger)
  let recovery: RecoveryReport
  try {
    recovery = await wal.open({ minHead: merged })
  } catch (error) {
    lock.release()
    rpc.close()
    throw error
  }
  state.setCursor(0, merged)
  logger.info({ recovery, merged }, 'WalRecovered')

  let progress: Progress = { merged, backlogBytes: 0, deliveredPosition: 0 }
  rpc.onNote('progress', (body) => {
    progress = body as Progress
    if (progress.merged > state.cursor(0)) state.setCursor(0, progress.merged)
  })
  const sweeper = setInterval(() => {
    const cursor = state.cursor(0)
    if (cursor > 0)
      wal.deleteDelivered(cursor).catch((error) => logger.warn({ err: error }, 'WalSegmentDeleteFailed'))
  }, 1000)
  sweeper.unref()

  const api = await openApi({
    config,
    logger,
    wal,
    walBacklogBytes: () => state.slowestBacklogBytes(1) + progress.backlogBytes,
    deliveredPosition: () => progress.deliveredPosition,
    sources: {},
    query: {
      totals: (query: MetricsQuery) => rpc.call('totals', query, QUERY_TIMEOUT_MS) as Promise<Totals>,
      groups: (query: MetricsQuery & { readonly group_by: GroupBy }) =>
        rpc.call('groups', query, QUERY_TIMEOUT_MS) as Promise<MetricsRow[]>,
      topEvents: (query: TopEventsQuery) =>
        rpc.call('topEvents', query, QUERY_TIMEOUT_MS) as Promise<TopEventsRow[]>,
      series: (query: SeriesQuery) => rpc.call('series', query, QUERY_TIMEOUT_MS) as Promise<SeriesRow[]>,
    },
    dependencies: () => rpc.call('ready', null, READY_TIMEOUT_MS) as Promise<Readiness>,
    ...(config.rateLimitPerSecond > 0 && {
      limiter: {
        take: (client: string) => rpc.call('token', client, TOKEN_TIMEOUT_MS) as Promise<RateDecision>,
        close: async () => {},
      },
    }),
  })
  rpc.handle('metrics', () => api.metrics.registry.getMetricsAsJSON())

  let address: string
  try {
    address = await api.app.listen({ port: config.httpPort, host: config.host })
  } catch (error) {
    clearInterval(sweeper)
    await api.close()
    await wal.close()
    lock.release()
    rpc.close()
    throw error
  }
  void rpc.note('head', state.durableHead)

  const stopped = Promise.withResolvers<void>()
  let closing: Promise<void> | undefined
  const close = () => {
    closing ??= (async () => {
      try {
        await api.close()
        await wal.close()
      } finally {
        clearInterval(sweeper)
        // The last head, then `closed`: the primary merges up to it before it stops.
        await rpc.note('head', state.durableHead)
        await rpc.note('closed', state.durableHead)
        rpc.close()
        lock.release()
        logger.info({ head: state.durableHead }, 'WorkerStopped')
        stopped.resolve()
      }
    })()
    return closing
  }
  stop = () => void close()
  if (stopAsked) stop()
  return { url: address, stopped: stopped.promise, close }
}
