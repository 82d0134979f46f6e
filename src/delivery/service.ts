/**
 * Everything the delivery thread owns, without the thread: the configured sinks (slot = index in
 * `config.sinks`), one DeliveryLoop per sink, the dead-letter store of delivery, and the query
 * backend of the first store. `worker.ts` puts it behind a message port; tests may use it directly.
 */
import { join } from 'node:path'
import type { Config } from '../config/schema.ts'
import { DeliveryCheck } from '../dedup/delivery-check.ts'
import { loadNodeId } from '../dedup/node-id.ts'
import { type L2State, RedisDedup } from '../dedup/redis.ts'
import { dedupWindow } from '../dedup/window.ts'
import { isSpillwayError, spillwayError } from '../errors.ts'
import type {
  ExploreBackend,
  GroupBy,
  MetricsQuery,
  MetricsRow,
  QueryBackend,
  SeriesQuery,
  SeriesRow,
  TopEventsQuery,
  TopEventsRow,
  Totals,
} from '../query/types.ts'
import type { BackoffOptions } from '../shared/backoff.ts'
import { DeadLetterStore, deadLetterLimits } from '../shared/dead-letter.ts'
import { withTimeout } from '../shared/timeout.ts'
import { openQueryStore, type QueryStore } from '../sinks/query-store.ts'
import { createSink } from '../sinks/registry.ts'
import type { Sink } from '../sinks/sink.ts'
import type { Logger } from '../telemetry/logger.ts'
import { MAX_SINKS, type WalSharedState } from '../wal/shared-state.ts'
import type { BreakerState } from './breaker.ts'
import { CursorFile } from './cursor-file.ts'
import { DeliveryLoop, type DeliveryStats } from './loop.ts'
import { checkStoreLoss } from './store-loss.ts'

export interface DeliveryServiceOptions {
  readonly config: Config
  readonly state: WalSharedState
  readonly logger: Logger
  /** Largest WAL record the reader accepts (the writer's limit). */
  readonly maxRecordBytes: number
  /** Ready-made sinks, one per `config.sinks` entry (tests); default: the registry's. */
  readonly sinks?: readonly Sink[]
  readonly backoff?: BackoffOptions
}

export interface SinkReadiness {
  readonly ok: boolean
  readonly error?: string
  /**
   * Delivery details, present only when something is wrong (the sink does not answer or its
   * breaker is not closed): the breaker, how often it opened, retries so far, bytes behind.
   */
  readonly breaker?: BreakerState
  readonly breakerOpens?: number
  readonly retries?: number
  readonly backlogBytes?: number
  readonly lastError?: string | null
}

export interface ReadyReport {
  readonly ok: boolean
  readonly sinks: Record<string, SinkReadiness>
  /**
   * The shared dedup layer, when Redis is configured. It never makes the node unready: without
   * it delivery goes on and the sinks' own idempotency holds (see src/dedup/redis.ts).
   */
  readonly dedup?: { readonly l2: L2Readiness }
  /** The query store, when it is not one of the sinks (`queryStore`, src/sinks/query-store.ts). */
  readonly query?: { readonly ok: boolean; readonly store: string; readonly error?: string }
}

export interface L2Readiness {
  readonly ok: boolean
  readonly error?: string
  readonly state: L2State['state']
  readonly errors: number
}

export class DeliveryService implements QueryBackend, ExploreBackend {
  readonly #sinks: readonly Sink[]
  readonly #loops: readonly DeliveryLoop[]
  readonly #query: QueryStore
  readonly #deadLetter: DeadLetterStore
  readonly #logger: Logger
  readonly #l2: RedisDedup | undefined
  #stopping: Promise<void> | undefined

  private constructor(
    sinks: readonly Sink[],
    loops: readonly DeliveryLoop[],
    deadLetter: DeadLetterStore,
    logger: Logger,
    l2: RedisDedup | undefined,
    query: QueryStore,
  ) {
    this.#l2 = l2
    this.#sinks = sinks
    this.#loops = loops
    this.#deadLetter = deadLetter
    this.#logger = logger
    this.#query = query
  }

  /**
   * Opens every sink and publishes every cursor; resolves when all are published (delivery then
   * runs in the background). If a sink cannot open or its cursor cannot be read, everything
   * opened is closed again and the error names the sink.
   */
  static async start(options: DeliveryServiceOptions): Promise<DeliveryService> {
    const { config, state, logger } = options
    const names = config.sinks
    if (names.length > MAX_SINKS) {
      throw spillwayError(
        'SPW_ERR_CONFIG_INVALID',
        `at most ${MAX_SINKS} sinks are supported, got ${names.length}`,
      )
    }
    const duplicate = names.find((name, i) => names.indexOf(name) !== i)
    if (duplicate)
      throw spillwayError('SPW_ERR_CONFIG_INVALID', `sink "${duplicate}" is listed twice in sinks`)
    const sinks = options.sinks ?? names.map((name) => createSink(name, config, logger))
    if (sinks.length !== names.length) throw new TypeError('one sink per config.sinks entry is required')

    // The backend borrows a sink's database (or holds a read-only store of its own); it connects
    // on first use, so making it before the sinks open only checks the configuration.
    const query = openQueryStore(
      config,
      sinks,
      { timeoutMs: config.queryTimeoutMs, queueSize: config.queryQueueSize },
      logger,
    )
    const deadLetter = new DeadLetterStore(join(config.dataDir, 'deadletter'), {
      source: 'delivery',
      limits: deadLetterLimits(config),
    })
    const dedup = await startDedup(config, logger)
    const cursorDir = join(config.dataDir, 'cursors')
    const loops = sinks.map(
      (sink, slot) =>
        new DeliveryLoop({
          sink,
          slot,
          state,
          walDir: join(config.dataDir, 'wal'),
          cursorFile: sink.loadCursor ? undefined : new CursorFile(cursorDir, sink.name),
          deadLetter,
          batchRows: sink.batchLimits?.rows || config.deliveryBatchRows,
          batchBytes: sink.batchLimits?.bytes || config.deliveryBatchBytes,
          lingerMs: config.deliveryLingerMs,
          maxRecordBytes: options.maxRecordBytes,
          logger: logger.child({ component: 'delivery' }),
          backoff: options.backoff,
          timeoutMs: config.deliveryTimeoutMs,
          breaker: {
            failures: config.breakerFailures,
            openMs: config.breakerOpenMs,
            maxOpenMs: config.breakerMaxOpenMs,
          },
          dedup: dedup.checks[slot],
        }),
    )

    const opened: Sink[] = []
    try {
      await Promise.all(
        sinks.map(async (sink, slot) => {
          await sink.open().catch((error) => {
            throw sinkError(sink, 'did not open', error)
          })
          opened.push(sink)
          await warmDedup(sink, dedup.checks[slot], config, logger)
        }),
      )
      // Before any loop runs: a loop would commit a new cursor over the evidence.
      await checkStoreLoss(config, sinks, logger)
      for (const loop of loops) {
        await loop.start().catch((error) => {
          throw sinkError(loop.sink, 'has no readable cursor', error)
        })
      }
    } catch (error) {
      await Promise.all(loops.map((loop) => loop.stop({ drain: false })))
      await Promise.all(opened.map((sink) => sink.close().catch(() => {})))
      await deadLetter.close().catch(() => {})
      await dedup.l2?.close()
      await query.close?.().catch(() => {})
      throw error
    }
    return new DeliveryService(sinks, loops, deadLetter, logger, dedup.l2, query)
  }

  /** Each sink's published start cursor (after `start`), by name. */
  cursors(): Record<string, number> {
    return Object.fromEntries(this.#loops.map((loop) => [loop.sink.name, loop.cursor]))
  }

  totals(query: MetricsQuery): Promise<Totals> {
    return this.#query.totals(query)
  }

  groups(query: MetricsQuery & { readonly group_by: GroupBy }): Promise<MetricsRow[]> {
    return this.#query.groups(query)
  }

  topEvents(query: TopEventsQuery): Promise<TopEventsRow[]> {
    return this.#query.topEvents(query)
  }

  series(query: SeriesQuery): Promise<SeriesRow[]> {
    return this.#query.series(query)
  }

  /**
   * Pings every sink, each bounded by `timeoutMs`. A sink whose breaker is open is not ready even
   * if it answers the ping: delivery to it is suspended. A sink in trouble gets its delivery
   * details in the report.
   */
  async ready(timeoutMs = 2000): Promise<ReadyReport> {
    const results = await Promise.all(
      this.#sinks.map(async (sink, slot): Promise<[string, SinkReadiness]> => {
        const ping = await pingWithin(sink, timeoutMs)
        const stats = this.#loops[slot].stats()
        if (ping.ok && stats.breaker === 'closed') return [sink.name, { ok: true }]
        const errors = [
          ...(ping.ok ? [] : [ping.error]),
          ...(stats.breaker === 'open'
            ? [`circuit breaker open (opened ${stats.breakerOpens}×; last error: ${stats.lastError})`]
            : []),
        ]
        return [
          sink.name,
          {
            ok: errors.length === 0,
            ...(errors.length > 0 && { error: errors.join('; ') }),
            breaker: stats.breaker,
            breakerOpens: stats.breakerOpens,
            retries: stats.retries,
            backlogBytes: stats.backlogBytes,
            lastError: stats.lastError,
          },
        ]
      }),
    )
    const own = this.#query.own
    const query = own && { store: own.store, ...(await pingWithin(own, timeoutMs)) }
    return {
      ok: results.every(([, r]) => r.ok) && (query?.ok ?? true),
      sinks: Object.fromEntries(results),
      ...(this.#l2 && { dedup: { l2: await l2Readiness(this.#l2, timeoutMs) } }),
      ...(query && { query }),
    }
  }

  stats(): DeliveryStats[] {
    return this.#loops.map((loop) => loop.stats())
  }

  /**
   * drain: deliver up to the durable head as of now, then close the sinks. A later call without
   * drain cuts a running drain short (retry waits end, nothing more is written).
   */
  stop(options: { drain: boolean }): Promise<void> {
    const stopped = Promise.all(this.#loops.map((loop) => loop.stop(options)))
    this.#stopping ??= (async () => {
      await stopped
      await this.#query
        .close?.()
        .catch((error) => this.#logger.warn({ err: error }, 'QueryBackendCloseFailed'))
      for (const sink of this.#sinks) {
        await sink
          .close()
          .catch((error) => this.#logger.warn({ sink: sink.name, err: error }, 'SinkCloseFailed'))
      }
      await this.#deadLetter.close()
      await this.#l2?.close()
    })()
    return this.#stopping
  }
}

/** `ping()` of a sink or of Redis, bounded by `timeoutMs`. */
async function pingWithin(
  target: { ping(): Promise<void> },
  timeoutMs: number,
): Promise<{ ok: true } | { ok: false; error: string }> {
  try {
    await withTimeout(target.ping(), timeoutMs, () => {
      throw new Error(`no answer within ${timeoutMs} ms`)
    })
    return { ok: true }
  } catch (error) {
    return { ok: false, error: (error as Error)?.message ?? String(error) }
  }
}

function sinkError(sink: Sink, what: string, error: unknown): Error {
  if (isSpillwayError(error)) return error
  const message = error instanceof Error ? error.message : String(error)
  return spillwayError('SPW_ERR_SINK_UNAVAILABLE', `sink ${sink.name} ${what}: ${message}`, { cause: error })
}

/**
 * The delivery-time dedup check of each sink (src/dedup/delivery-check.ts) and the shared L2 they
 * use. No check at all when both the cache and Redis are off.
 */
async function startDedup(
  config: Config,
  logger: Logger,
): Promise<{ checks: (DeliveryCheck | undefined)[]; l2: RedisDedup | undefined }> {
  if (config.dedupCacheEntries === 0 && !config.redisUrl) return { checks: [], l2: undefined }
  // The node id names this node's claims in Redis; without Redis nothing uses it.
  const nodeId = config.redisUrl ? await loadNodeId(config.dataDir) : 'local'
  const window = dedupWindow(config.dedupWindowSeconds)
  let l2: RedisDedup | undefined
  if (config.redisUrl) {
    l2 = new RedisDedup({
      url: config.redisUrl,
      prefix: config.redisKeyPrefix,
      windowSeconds: window.seconds,
      timeoutMs: config.redisTimeoutMs,
      logger: logger.child({ component: 'dedup-l2' }),
    })
    await l2.connect()
  }
  const checks = config.sinks.map(
    (name) =>
      new DeliveryCheck({
        nodeId,
        namespace: name,
        cacheEntries: config.dedupCacheEntries,
        windowMs: window.ms,
        l2,
      }),
  )
  logger.info(
    { nodeId, cacheEntries: config.dedupCacheEntries, l2: l2 ? l2.status.state : 'off' },
    'DedupStarted',
  )
  return { checks, l2 }
}

/** Fills a sink's dedup cache with the keys it stored in the window, where the sink can list them. */
async function warmDedup(
  sink: Sink,
  check: DeliveryCheck | undefined,
  config: Config,
  logger: Logger,
): Promise<void> {
  if (!check || !sink.recentKeys || config.dedupCacheEntries === 0) return
  const started = performance.now()
  const since = dedupWindow(config.dedupWindowSeconds).since()
  try {
    const keys = await sink.recentKeys(since, config.dedupCacheEntries)
    const warmed = check.warm(keys)
    logger.info(
      { sink: sink.name, keys: warmed, ms: Math.round(performance.now() - started) },
      'DedupCacheWarmed',
    )
  } catch (error) {
    // Not fatal: the cache starts cold, and L2 and the store's own idempotency remain.
    logger.warn({ sink: sink.name, err: error }, 'DedupCacheWarmFailed')
  }
}

async function l2Readiness(l2: RedisDedup, timeoutMs: number): Promise<L2Readiness> {
  const ping = await pingWithin(l2, timeoutMs)
  const { state, errors } = l2.status
  if (ping.ok) return { ok: true, state, errors }
  return { ok: false, error: `${ping.error}; delivering without the shared dedup layer`, state, errors }
}
