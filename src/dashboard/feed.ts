/**
 * The live feed of the operations port (`GET /api/stats`, its SSE stream, the dashboard page and
 * `spillway top`). Once a second it renders the same Prometheus exposition as `GET /metrics` (in a
 * cluster's primary: the sum over the workers), reads it back, and turns counter deltas into rates
 * and histogram bucket deltas into quantiles. The last 900 samples (15 minutes) stay in a ring, so
 * a page opened now shows the history at once; the ring never holds more.
 *
 * Sampling runs whether anyone watches or not (the history must be there when someone looks);
 * one sample is a render, a parse and some arithmetic, a few milliseconds of CPU a second (README
 * "Operations port"). Figures without a metric (a sink's last error, the delivery phase) come from
 * the optional `sinkDetails` source — the delivery thread's own stats.
 */
import { hostname } from 'node:os'
import { parseExposition } from './prometheus.ts'
import { type Reading, readExposition } from './reading.ts'
import { Ring } from './ring.ts'
import { ageOf, round, type Sample, sampleOf } from './sample.ts'

export { type Reading, readExposition } from './reading.ts'
export { Ring } from './ring.ts'
export { ageOf, type Quantiles, quantileOf, type Sample, sampleOf } from './sample.ts'

export const HISTORY_SAMPLES = 900
export const SAMPLE_EVERY_MS = 1000
/** The shape's version: a tool reading the feed checks it. */
export const FEED_VERSION = 1

/** What one sink's delivery loop says beyond the metrics (DeliveryStats has these fields). */
export interface SinkDetail {
  readonly sink: string
  readonly phase?: string
  readonly deadLettered?: number
  readonly lastError: string | null
  readonly lastErrorAt: number | null
  readonly lastDeliveredAt: number | null
  /** The shared dedup layer as this sink's check sees it; null without Redis. */
  readonly dedupL2?: { readonly state: string } | null
}

/** The body of `GET /api/stats` (README "Operations port"). */
export interface Stats {
  readonly version: typeof FEED_VERSION
  readonly node: {
    readonly hostname: string
    readonly pid: number
    readonly version: string
    readonly startedAt: string
    readonly uptimeSeconds: number
    /** null: one process (no `--workers`). */
    readonly workers: {
      readonly configured: number
      readonly running: number
      readonly restarts: number
    } | null
    readonly shards: readonly {
      readonly shard: number
      readonly headBytes: number
      readonly backlogBytes: number
    }[]
  }
  readonly sampleEveryMs: number
  /** The newest sample (null until two readings were taken). */
  readonly current: Sample | null
  readonly totals: {
    readonly requests: Readonly<Record<string, number>>
    readonly events: {
      readonly received: number
      readonly accepted: number
      readonly duplicate: number
      readonly rejected: number
    }
    readonly rejectedByReason: Readonly<Record<string, number>>
    readonly duplicatesByLayer: Readonly<Record<string, number>>
    readonly deadLetteredBySource: Readonly<Record<string, number>>
  }
  readonly admission: readonly {
    readonly bound: string
    readonly current: number
    readonly limit: number
    readonly fullness: number
    readonly refusedTotal: number
  }[]
  readonly wal: {
    readonly headBytes: number
    readonly backlogBytes: number
    readonly pendingBytes: number
    readonly oldestUndeliveredSeconds: number
    /** true when the oldest undelivered event is older than the history: the age is at least this. */
    readonly oldestIsLowerBound: boolean
  }
  readonly sinks: readonly {
    readonly name: string
    readonly breaker: string
    readonly phase: string | null
    readonly backlogBytes: number
    readonly lagSeconds: number
    readonly rowsPerSecond: number
    readonly deliveredTotal: number
    readonly retriesTotal: number
    readonly timeoutsTotal: number
    readonly breakerOpensTotal: number
    readonly refusedBatchesTotal: number
    readonly deadLettered: number | null
    readonly lastError: string | null
    readonly lastErrorAt: string | null
    readonly lastDeliveredAt: string | null
  }[]
  readonly deadLetters: {
    readonly entries: number
    readonly bytes: number
    readonly limitEntries: number
    readonly limitBytes: number
  }
  readonly dedup: {
    readonly l1Keys: number
    /** `up`, `down` or `connecting`; null without Redis. */
    readonly l2: string | null
  }
  readonly process: {
    readonly rssBytes: number
    readonly eventLoopDelayMs: number
    readonly deliveryThreadUp: boolean | null
  }
  /** Oldest first; with `?since=<t>` only the samples after t. */
  readonly history: readonly Sample[]
}

export interface FeedOptions {
  /** The exposition (`GET /metrics`' body): ServerMetrics.render, or a primary's sum over workers. */
  readonly render: () => Promise<{ body: string }>
  readonly sinkDetails?: () => Promise<readonly SinkDetail[]>
  readonly version: string
  readonly everyMs?: number
  readonly capacity?: number
  readonly clock?: () => number
  readonly onError?: (error: unknown) => void
}

export class Feed {
  readonly #options: FeedOptions
  readonly #history: Ring<Sample>
  readonly #clock: () => number
  readonly #startedAt: number
  readonly #listeners = new Set<(sample: Sample) => void>()
  #last: Reading | undefined
  #details: readonly SinkDetail[] = []
  #timer: NodeJS.Timeout | undefined
  #sampling: Promise<void> | undefined
  /** CPU time of the newest sample's parse and arithmetic (µs; the render is measured apart). */
  lastSampleCpuMicros = 0

  constructor(options: FeedOptions) {
    this.#options = options
    this.#clock = options.clock ?? Date.now
    this.#history = new Ring(options.capacity ?? HISTORY_SAMPLES)
    this.#startedAt = this.#clock()
  }

  get history(): Ring<Sample> {
    return this.#history
  }

  /** Samples now, then every `everyMs`; the timer never keeps the process alive. */
  start(): this {
    void this.sample()
    this.#timer = setInterval(() => void this.sample(), this.#options.everyMs ?? SAMPLE_EVERY_MS)
    this.#timer.unref()
    return this
  }

  stop(): void {
    clearInterval(this.#timer)
    this.#listeners.clear()
  }

  /** Called with every new sample; returns the unsubscribe. */
  subscribe(listener: (sample: Sample) => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  /** One reading; a sample when there was a reading before. Overlapping calls share one. */
  sample(): Promise<void> {
    this.#sampling ??= this.#take().finally(() => {
      this.#sampling = undefined
    })
    return this.#sampling
  }

  async #take(): Promise<void> {
    try {
      const [{ body }, details] = await Promise.all([
        this.#options.render(),
        this.#options.sinkDetails?.().catch(() => this.#details) ?? Promise.resolve([]),
      ])
      const cpu = process.cpuUsage()
      const reading = readExposition(parseExposition(body), this.#clock())
      this.#details = details
      const before = this.#last
      this.#last = reading
      if (!before) return
      const sample = sampleOf(before, reading, this.#history)
      this.#history.push(sample)
      const used = process.cpuUsage(cpu)
      this.lastSampleCpuMicros = used.user + used.system
      for (const listener of this.#listeners) listener(sample)
    } catch (error) {
      this.#options.onError?.(error)
    }
  }

  /** The body of `GET /api/stats`; `since` (Unix ms) keeps only newer history samples. */
  stats(since?: number): Stats {
    const now = this.#last
    const current = this.#history.last() ?? null
    const history = this.#history.toArray()
    const newer = since === undefined ? history : history.filter((s) => s.t > since)
    const details = new Map(this.#details.map((d) => [d.sink, d]))
    const iso = (ms: number | null | undefined) => (ms ? new Date(ms).toISOString() : null)
    const walAge = now
      ? ageOf(now.walHead - now.walBacklog, now.walHead, now.t, this.#history)
      : { seconds: 0, lowerBound: false }
    const clock = this.#clock()
    return {
      version: FEED_VERSION,
      node: {
        hostname: hostname(),
        pid: process.pid,
        version: this.#options.version,
        startedAt: new Date(this.#startedAt).toISOString(),
        uptimeSeconds: Math.round((clock - this.#startedAt) / 1000),
        workers: now?.cluster ?? null,
        shards: now?.shards ?? [],
      },
      sampleEveryMs: this.#options.everyMs ?? SAMPLE_EVERY_MS,
      current,
      totals: {
        requests: now?.requests ?? {},
        events: now?.events ?? { received: 0, accepted: 0, duplicate: 0, rejected: 0 },
        rejectedByReason: now?.rejectedByReason ?? {},
        duplicatesByLayer: now?.duplicatesByLayer ?? {},
        deadLetteredBySource: now?.deadLetteredBySource ?? {},
      },
      admission: Object.entries(now?.admission ?? {}).map(([bound, a]) => ({
        bound,
        current: a.current,
        limit: a.limit,
        fullness: a.limit > 0 ? round(Math.min(1, a.current / a.limit)) : 0,
        refusedTotal: a.refused,
      })),
      wal: {
        headBytes: now?.walHead ?? 0,
        backlogBytes: now?.walBacklog ?? 0,
        pendingBytes: now?.walPending ?? 0,
        oldestUndeliveredSeconds: walAge.seconds,
        oldestIsLowerBound: walAge.lowerBound,
      },
      sinks: Object.entries(now?.sinks ?? {}).map(([name, s]) => {
        const d = details.get(name)
        return {
          name,
          breaker: s.breaker,
          phase: d?.phase ?? null,
          backlogBytes: s.backlogBytes,
          lagSeconds: current?.sinks[name]?.lagSeconds ?? 0,
          rowsPerSecond: current?.sinks[name]?.rowsPerSecond ?? 0,
          deliveredTotal: s.published,
          retriesTotal: s.retries,
          timeoutsTotal: s.timeouts,
          breakerOpensTotal: s.breakerOpens,
          refusedBatchesTotal: s.refused,
          deadLettered: d?.deadLettered ?? null,
          lastError: d?.lastError ?? null,
          lastErrorAt: iso(d?.lastErrorAt),
          lastDeliveredAt: iso(d?.lastDeliveredAt),
        }
      }),
      deadLetters: now?.deadLetterStore ?? { entries: 0, bytes: 0, limitEntries: 0, limitBytes: 0 },
      // The metric reads 0 both without Redis and with it down: the delivery thread tells them apart.
      dedup: {
        l1Keys: now?.l1Keys ?? 0,
        l2: this.#details[0]?.dedupL2?.state ?? (now?.l2Up ? 'up' : null),
      },
      process: {
        rssBytes: now?.rssBytes ?? 0,
        eventLoopDelayMs: round(now?.eventLoopDelayMs ?? 0),
        deliveryThreadUp: now?.deliveryUp ?? null,
      },
      history: newer,
    }
  }
}
